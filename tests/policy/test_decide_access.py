"""decide() on ledger reads and clinicians' cross-hospital lookups."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from medspace.identity import User
from medspace.policy import Consent, Context, LookupRequest, MemoryRecorder, Purpose, decide

from ._data import ALICE, AUDREY, DR_CHEN, H1_POLICY, H2_POLICY, LI, ROOT

Ctx = Callable[..., Context]
WHY = "unconscious in ED, suspected anticoagulant overdose"
PSEUDONYM = "ps_7f3a9c2e51d04b6e"


@pytest.mark.parametrize(
    ("user", "scope"),
    [(AUDREY, "all"), (ROOT, "all"), (LI, "node:h1")],
)
def test_auditors_admins_and_stewards_read_the_ledger(ctx: Ctx, user: User, scope: str) -> None:
    decision = decide(user, "ledger.read", None, ctx())
    assert decision.allow
    assert decision.obligation("scope") == scope


@pytest.mark.parametrize("user", [ALICE, DR_CHEN])
def test_researchers_and_clinicians_do_not_read_the_ledger(ctx: Ctx, user: User) -> None:
    assert decide(user, "ledger.read", None, ctx()).code == "ledger.read/role"


def test_emergency_lookup_with_justification_is_allowed(ctx: Ctx) -> None:
    decision = decide(
        DR_CHEN, "lookup", LookupRequest(Purpose.ETREAT, WHY), ctx(node_policy=H2_POLICY)
    )
    assert decision.allow, decision.reason
    assert decision.obligation("seal-to") == "h1"
    assert decision.obligation("minimum-necessary") == "summary"
    assert decision.obligation("review") is None


@pytest.mark.parametrize("justification", ["", "   ", "urgent"])
def test_lookup_without_a_real_justification_is_denied(ctx: Ctx, justification: str) -> None:
    decision = decide(
        DR_CHEN, "lookup", LookupRequest(Purpose.ETREAT, justification), ctx(node_policy=H2_POLICY)
    )
    assert decision.code == "lookup/justification"


@pytest.mark.parametrize("user", [ALICE, LI, AUDREY, ROOT])
def test_only_clinicians_look_up_patients(ctx: Ctx, user: User) -> None:
    decision = decide(
        user, "lookup", LookupRequest(Purpose.ETREAT, WHY), ctx(node_policy=H2_POLICY)
    )
    assert decision.code == "lookup/role"


@pytest.mark.parametrize("purpose", [Purpose.TREAT, Purpose.HRESCH, Purpose.PUBHLTH])
def test_lookup_for_other_purposes_is_denied(ctx: Ctx, purpose: Purpose) -> None:
    decision = decide(DR_CHEN, "lookup", LookupRequest(purpose, WHY), ctx(node_policy=H2_POLICY))
    assert decision.code == "lookup/purpose"


def test_break_glass_only_where_the_node_allows_it_and_always_reviewed(ctx: Ctx) -> None:
    request = LookupRequest(Purpose.BTG, WHY)
    refused = decide(DR_CHEN, "lookup", request, ctx(node_policy=H1_POLICY))
    assert refused.code == "lookup/break-glass-disabled"
    allowed = decide(DR_CHEN, "lookup", request, ctx(node_policy=H2_POLICY))
    assert allowed.allow
    assert allowed.obligation("review") == "steward"


def test_node_that_does_not_answer_emergencies_denies(ctx: Ctx) -> None:
    closed = H2_POLICY.model_copy(update={"allowed_purposes": frozenset({Purpose.HRESCH})})
    decision = decide(
        DR_CHEN, "lookup", LookupRequest(Purpose.ETREAT, WHY), ctx(node_policy=closed)
    )
    assert decision.code == "lookup/purpose"


def test_lookup_needs_the_answering_nodes_policy(ctx: Ctx) -> None:
    decision = decide(DR_CHEN, "lookup", LookupRequest(Purpose.ETREAT, WHY), ctx())
    assert decision.code == "lookup/no-policy"


def test_patient_opt_out_is_respected_but_break_glass_overrides_it(ctx: Ctx) -> None:
    consent = Consent({PSEUDONYM: [Purpose.ETREAT, Purpose.HRESCH]})
    etreat = LookupRequest(Purpose.ETREAT, WHY, pseudonym=PSEUDONYM)
    decision = decide(DR_CHEN, "lookup", etreat, ctx(node_policy=H2_POLICY, consent=consent))
    assert decision.code == "lookup/opted-out"
    other = LookupRequest(Purpose.ETREAT, WHY, pseudonym="ps_someone_else_0001")
    assert decide(DR_CHEN, "lookup", other, ctx(node_policy=H2_POLICY, consent=consent)).allow
    btg = LookupRequest(Purpose.BTG, WHY, pseudonym=PSEUDONYM)
    overridden = decide(DR_CHEN, "lookup", btg, ctx(node_policy=H2_POLICY, consent=consent))
    assert overridden.allow and overridden.obligation("review") == "steward"


def test_lookup_decisions_and_records_hold_no_patient_data(
    ctx: Ctx, recorder: MemoryRecorder
) -> None:
    consent = Consent({PSEUDONYM: [Purpose.ETREAT]})
    for purpose in (Purpose.ETREAT, Purpose.BTG):
        request = LookupRequest(purpose, WHY, pseudonym=PSEUDONYM)
        for policy in (H1_POLICY, H2_POLICY):
            decision = decide(DR_CHEN, "lookup", request, ctx(node_policy=policy, consent=consent))
            assert PSEUDONYM not in decision.reason and WHY not in decision.reason
    text = repr(recorder.records) + repr(LookupRequest(Purpose.ETREAT, WHY, PSEUDONYM))
    assert PSEUDONYM not in text
    assert "anticoagulant" not in text
    assert all(dict(r.artefacts).get("justification") for r in recorder.records)
