"""The status book: the operator's running copy of one policy's status, and what to patch.

Owns the status fields (conditions, job counts, totals, recent actions, kind statistics) and
the rule that a status is patched only when it changed.

Conditions follow the Kubernetes API conventions: set on first sight (Unknown until known), a
CamelCase reason, a sentence for humans, lastTransitionTime moving only when the status does.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from lifeguard.model.conditions import (
    CIRCUIT_OPEN,
    DATABASE_CONNECTED,
    READY,
    Condition,
    ConditionStatus,
    set_condition,
)
from lifeguard.model.enums import Cause
from lifeguard.model.status import (
    ActionTotals,
    JobCounts,
    JobPolicyStatus,
    KindStat,
    RecentAction,
    with_recent_action,
)


@dataclass
class StatusBook:
    """The operator's running copy of one policy's status.

    Its methods reassign fields and never change a list in place, so `copy()` (a shallow copy)
    is enough for `reconcile` to leave the book it was given untouched.
    """

    generation: int | None
    conditions: list[Condition] = field(default_factory=list)
    # None while the database cannot be scanned (the patch then removes status.jobs).
    jobs: JobCounts | None = field(default_factory=JobCounts)
    totals: ActionTotals = field(default_factory=ActionTotals)
    recent_actions: list[RecentAction] = field(default_factory=list)
    kind_stats: list[KindStat] = field(default_factory=list)
    last_scan_time: datetime | None = None
    _last_patched: dict[str, Any] | None = None

    @classmethod
    def resume(cls, status: dict[str, Any] | None, generation: int | None) -> "StatusBook":
        """Continues from the status on the object (totals survive operator restarts)."""
        book = cls(generation=generation)
        if status:
            try:
                previous = JobPolicyStatus.model_validate(status)
            except ValueError:
                return book
            book.conditions = list(previous.conditions)
            book.totals = previous.totals
            book.recent_actions = list(previous.recent_actions)
            book.kind_stats = list(previous.kind_stats)
            book.jobs = previous.jobs
            book.last_scan_time = previous.last_scan_time
        return book

    def condition(
        self, type_: str, status: ConditionStatus, reason: str, message: str, now: datetime
    ) -> bool:
        """Sets a condition; True when its status changed (worth an Event)."""
        before = next((c.status for c in self.conditions if c.type == type_), None)
        self.conditions = set_condition(
            self.conditions,
            type=type_,
            status=status,
            reason=reason,
            message=message,
            now=now,
            observed_generation=self.generation,
        )
        return before is not None and before != status

    def ensure_conditions(self, now: datetime) -> None:
        """Every condition is present from the first status on, Unknown until known."""
        for type_ in (READY, DATABASE_CONNECTED, CIRCUIT_OPEN):
            if not any(c.type == type_ for c in self.conditions):
                self.condition(type_, ConditionStatus.UNKNOWN, "Pending", "Not checked yet.", now)

    def scanned(self, causes: Sequence[Cause], at: datetime) -> None:
        self.jobs = JobCounts.of(causes)
        self.last_scan_time = at

    def unscanned(self) -> None:
        """The database cannot be scanned: no counts rather than the last ones."""
        self.jobs = None

    def record(self, action: RecentAction) -> None:
        self.recent_actions = with_recent_action(self.recent_actions, action)
        self.totals = self.totals.add(action.action, action.applied)

    def render(self) -> dict[str, Any]:
        status = JobPolicyStatus(
            observed_generation=self.generation,
            conditions=self.conditions,
            last_scan_time=self.last_scan_time,
            jobs=self.jobs,
            totals=self.totals,
            recent_actions=self.recent_actions,
            kind_stats=self.kind_stats,
        )
        rendered: dict[str, Any] = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        if self.jobs is None:
            rendered["jobs"] = None  # a merge patch's null removes the stale counts
        return rendered

    def changes(self) -> dict[str, Any] | None:
        """The status to patch, or None when nothing but the scan time moved.

        lastScanTime alone does not justify a write every few seconds per policy; it is
        refreshed whenever anything else changes, and at least once a minute by the caller.
        """
        rendered = self.render()
        comparable = {k: v for k, v in rendered.items() if k != "lastScanTime"}
        previous = self._last_patched
        if (
            previous is not None
            and {k: v for k, v in previous.items() if k != "lastScanTime"} == comparable
        ):
            return None
        return rendered

    def patched(self, rendered: dict[str, Any]) -> None:
        self._last_patched = rendered

    def copy(self) -> "StatusBook":
        return replace(self)
