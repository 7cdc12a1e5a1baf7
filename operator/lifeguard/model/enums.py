"""The vocabulary shared by every layer: causes, actions and modes."""

from enum import StrEnum


class Cause(StrEnum):
    """Why a running job is (or is not) moving; one per row of the verdict table."""

    HEALTHY = "Healthy"
    STARTING = "Starting"
    INFRASTRUCTURE_DEATH = "InfrastructureDeath"
    RESOURCE_EXHAUSTED = "ResourceExhausted"
    APPLICATION_CRASH = "ApplicationCrash"
    UNRESPONSIVE = "Unresponsive"
    STUCK = "Stuck"
    OVERDUE = "Overdue"
    STALE = "Stale"


class Action(StrEnum):
    """What Lifeguard may do about a job."""

    RETRY = "Retry"
    CANCEL = "Cancel"
    RESTART_POD = "RestartPod"
    DISCARD = "Discard"
    NONE = "None"


class HeartbeatStore(StrEnum):
    """Where workers write their beats."""

    TABLE = "Table"
    METADATA = "Metadata"
    # The workers write no beats: jobs are judged by pod evidence and run time only.
    NONE = "None"


class Mode(StrEnum):
    """Enforce acts; DryRun decides and reports but never writes."""

    ENFORCE = "Enforce"
    DRY_RUN = "DryRun"


class Backoff(StrEnum):
    """When a retried job becomes available again."""

    IMMEDIATE = "Immediate"
    RIVER = "River"


class Unattributed(StrEnum):
    """Whether a policy judges jobs whose client maps to no pod in any watched namespace."""

    JUDGE = "Judge"
    IGNORE = "Ignore"
