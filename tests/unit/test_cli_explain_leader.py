"""The header of `lifeguard explain`: who acts, from the operator Leases as the apiserver lists
them."""

from typing import Any

import pytest

from lifeguard.cli.explain_leader import Leader, leader_line, leaders


def lease(namespace: str, name: str, holder: str | None, renewed: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"leaseTransitions": 2}
    if holder is not None:
        spec["holderIdentity"] = holder
    if renewed:
        spec["renewTime"] = renewed
    return {"metadata": {"namespace": namespace, "name": name}, "spec": spec}


@pytest.mark.parametrize(
    ("listed", "line"),
    [
        pytest.param(
            [lease("lg", "lg-river-lifeguard", "pod-a_1", "2026-11-30T23:00:00.000000Z")],
            "Operator leader: pod-a_1 (Lease lg/lg-river-lifeguard,"
            " renewed 2026-11-30T23:00:00.000000Z).",
            id="one_release_with_a_leader",
        ),
        pytest.param(
            [lease("lg", "lg-river-lifeguard", None)],
            "Operator leader: none (Lease lg/lg-river-lifeguard released; a standby takes it"
            " next).",
            id="released_lease_says_no_one_acts",
        ),
        pytest.param(
            [
                lease("b", "b-river-lifeguard", "pod-b_2"),
                lease("a", "a-river-lifeguard", "pod-a_1"),
            ],
            "Operator leaders: pod-a_1 (Lease a/a-river-lifeguard); pod-b_2 (Lease"
            " b/b-river-lifeguard).",
            id="two_releases_each_named",
        ),
        pytest.param(
            [],
            "Operator leader: unknown (no operator Lease found; is the operator running?).",
            id="no_lease",
        ),
        pytest.param(
            None, "Operator leader: unknown (not allowed to list Leases).", id="forbidden"
        ),
    ],
)
def test_the_header_names_who_acts_or_why_that_is_unknown(
    listed: list[dict[str, Any]] | None, line: str
) -> None:
    assert leader_line(None if listed is None else leaders(listed)) == line


def test_the_json_names_holder_renewal_and_transitions() -> None:
    (found,) = leaders([lease("lg", "l", "pod-a_1", "2026-11-30T23:00:00.000000Z")])

    assert found == Leader("lg/l", "pod-a_1", "2026-11-30T23:00:00.000000Z", 2)
    assert found.json() == {
        "lease": "lg/l",
        "holder": "pod-a_1",
        "renewTime": "2026-11-30T23:00:00.000000Z",
        "leaseTransitions": 2,
    }
