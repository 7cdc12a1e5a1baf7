"""The header of `lifeguard explain`: which operator replica acts, read from the leader Leases.

The operator's Leases carry the chart's labels (and the operator sets them when it creates one
itself), so they are found without knowing the release: usually one, one per release otherwise.
"""

from dataclasses import dataclass
from typing import Any

from lifeguard.cluster.election import OPERATOR_LEASE_LABELS

OPERATOR_LEASE_SELECTOR = ",".join(f"{k}={v}" for k, v in OPERATOR_LEASE_LABELS.items())


@dataclass(frozen=True, slots=True)
class Leader:
    lease: str
    holder: str
    renewed: str
    transitions: int

    def json(self) -> dict[str, Any]:
        return {
            "lease": self.lease,
            "holder": self.holder or None,
            "renewTime": self.renewed or None,
            "leaseTransitions": self.transitions,
        }


def leaders(leases: list[dict[str, Any]]) -> list[Leader]:
    found = []
    for lease in leases:
        metadata, spec = lease.get("metadata") or {}, lease.get("spec") or {}
        found.append(
            Leader(
                lease=f"{metadata.get('namespace', '')}/{metadata.get('name', '')}",
                holder=str(spec.get("holderIdentity") or ""),
                renewed=str(spec.get("renewTime") or ""),
                transitions=int(spec.get("leaseTransitions") or 0),
            )
        )
    return sorted(found, key=lambda leader: leader.lease)


def leader_line(found: list[Leader] | None) -> str:
    """One line for a person: who acts now, or why that is not known."""
    if found is None:
        return "Operator leader: unknown (not allowed to list Leases)."
    if not found:
        return "Operator leader: unknown (no operator Lease found; is the operator running?)."
    parts = []
    for leader in found:
        if leader.holder:
            renewed = f", renewed {leader.renewed}" if leader.renewed else ""
            parts.append(f"{leader.holder} (Lease {leader.lease}{renewed})")
        else:
            parts.append(f"none (Lease {leader.lease} released; a standby takes it next)")
    label = "Operator leader" if len(parts) == 1 else "Operator leaders"
    return f"{label}: {'; '.join(parts)}."
