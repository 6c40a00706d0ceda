"""Patient consent (opt-outs by pseudonym) and node standing policy."""

from __future__ import annotations

import pytest

from medspace.policy import Consent, NodePolicy, ProjectError, Purpose

A, B = "ps_a1b2c3d4e5", "ps_f6a7b8c9d0"


def test_opt_outs_are_per_purpose() -> None:
    consent = Consent({A: [Purpose.HRESCH], B: ["HRESCH", "ETREAT"]})
    assert consent.opted_out(A, Purpose.HRESCH)
    assert not consent.opted_out(A, Purpose.ETREAT)
    assert consent.excluded(Purpose.HRESCH) == {A, B}
    assert consent.excluded(Purpose.ETREAT) == {B}
    assert consent.excluded(Purpose.PUBHLTH) == frozenset()


def test_consent_changes_make_new_values() -> None:
    empty = Consent()
    one = empty.with_opt_out(A, [Purpose.PUBHLTH])
    assert len(empty) == 0 and len(one) == 1
    assert one.opted_out(A, Purpose.PUBHLTH)
    back = one.without_opt_out(A, ["PUBHLTH"])
    assert back == empty
    assert not back.opted_out(A, Purpose.PUBHLTH)


def test_consent_repr_holds_no_pseudonyms() -> None:
    assert repr(Consent({A: [Purpose.HRESCH]})) == "Consent(<1 patients with opt-outs>)"


@pytest.mark.parametrize(
    ("pseudonym", "purposes", "message"),
    [
        ("Zhang San", [Purpose.HRESCH], "without spaces"),  # a name, not a pseudonym
        ("", [Purpose.HRESCH], "without spaces"),  # empty
        ("张三", [Purpose.HRESCH], "printable ASCII"),  # not ASCII
        (A, ["MARKETING"], "unknown purpose"),  # not an ActReason code we know
    ],
)
def test_malformed_consent_is_refused_without_echoing_it(
    pseudonym: str, purposes: list[str], message: str
) -> None:
    with pytest.raises(ProjectError, match=message) as caught:
        Consent({pseudonym: purposes})
    if pseudonym:
        assert pseudonym not in str(caught.value)


def test_standing_policy_allows_nothing_by_default() -> None:
    policy = NodePolicy(node="h1")
    assert policy.allowed_purposes == frozenset()
    assert policy.allowed_computations == frozenset()
    assert policy.break_glass_allowed is False
    assert policy.min_cell_floor == 10


@pytest.mark.parametrize(
    ("project_k", "floor", "effective"), [(5, 10, 10), (20, 10, 20), (10, 10, 10)]
)
def test_effective_cell_size_is_the_larger(project_k: int, floor: int, effective: int) -> None:
    assert (
        NodePolicy(node="h1", min_cell_floor=floor).effective_min_cell_size(project_k) == effective
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"node": "H1"}, "invalid node name"),  # malformed node
        ({"node": "h1", "min_cell_floor": 0}, "greater than or equal to 1"),  # floor 0
        ({"node": "h1", "allowed_purposes": ["XYZ"]}, "allowed_purposes"),  # unknown purpose
        ({"node": "h1", "allowed_computations": ["DROP TABLE"]}, "String should match"),
        ({"node": "h1", "k": 3}, "Extra inputs are not permitted"),  # typo'd field
    ],
)
def test_malformed_standing_policy_is_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(ProjectError, match=message):
        NodePolicy.parse(data)
