"""River's PostgreSQL: one-query scans, fenced actions, heartbeat DDL and duration history.

The supervisor maps a JobPolicy onto plain values (`ScanQuery`, requests) so this layer does not
depend on the API types.
"""

from lifeguard.river.actions import (
    CANCELS_KEY,
    DISCARDS_KEY,
    INFRA_RETRIES_KEY,
    RETRIES_KEY,
    ActionRecord,
    Applied,
    CancelRequest,
    DiscardRequest,
    RetryRequest,
    cancel,
    cancel_many,
    discard,
    discard_many,
    lifeguard_error,
    record_actions_many,
    retry_many,
    withdraw_actions_many,
)
from lifeguard.river.database import RiverDatabase
from lifeguard.river.durations import KindDurations, kind_durations
from lifeguard.river.errors import (
    AuthenticationFailed,
    DatabaseError,
    DatabaseNotFound,
    DatabaseTimeout,
    DatabaseUnavailable,
    HeartbeatTableMissing,
    SchemaNotFound,
)
from lifeguard.river.heartbeats import (
    HeartbeatLocation,
    heartbeat_table_ddl,
    migrate_heartbeat_table,
    prune_heartbeats,
)
from lifeguard.river.resume import RESUME_KEY
from lifeguard.river.scan import Scan, ScanQuery, scan

__all__ = [
    "CANCELS_KEY",
    "DISCARDS_KEY",
    "INFRA_RETRIES_KEY",
    "RESUME_KEY",
    "RETRIES_KEY",
    "ActionRecord",
    "Applied",
    "AuthenticationFailed",
    "CancelRequest",
    "DatabaseError",
    "DatabaseNotFound",
    "DatabaseTimeout",
    "DatabaseUnavailable",
    "DiscardRequest",
    "HeartbeatLocation",
    "HeartbeatTableMissing",
    "KindDurations",
    "RetryRequest",
    "RiverDatabase",
    "Scan",
    "ScanQuery",
    "SchemaNotFound",
    "cancel",
    "cancel_many",
    "discard",
    "discard_many",
    "heartbeat_table_ddl",
    "kind_durations",
    "lifeguard_error",
    "migrate_heartbeat_table",
    "prune_heartbeats",
    "record_actions_many",
    "retry_many",
    "scan",
    "withdraw_actions_many",
]
