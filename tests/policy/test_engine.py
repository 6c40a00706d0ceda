"""The decision point itself: deny by default, every decision recorded, immutable answers."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from medspace.ledger.entry import Entry
from medspace.policy import (
    DEFAULT_RULES,
    Context,
    Decision,
    LookupRequest,
    MemoryRecorder,
    PolicyDenied,
    PolicyEngine,
    ProjectError,
    ProjectState,
    Purpose,
    RecordError,
    RuleRegistry,
    TaskRequest,
    UnsafeAllowAllForTests,
    contract_hash,
    decide,
)

from ._data import ALICE, DR_CHEN, EVERYONE, H1_POLICY, H2_POLICY, LI, ROOT

Ctx = Callable[..., Context]


@pytest.mark.parametrize(
    "action",
    [
        "data.export",  # row-level export: deliberately no rule
        "project.delete",  # an action nobody wrote a rule for
        "admin.everything",
    ],
)
def test_action_without_a_rule_is_denied_for_everyone(ctx: Ctx, action: str) -> None:
    for user in EVERYONE:
        decision = decide(user, action, None, ctx())
        assert not decision.allow
        assert decision.reason == f"no rule allows {action!r}; denied by default"
        assert decision.code == f"{action}/default-deny"


@pytest.mark.parametrize(
    "action",
    [
        "",  # empty
        "Task.Run",  # wrong case
        "task.run; DROP TABLE",  # injection attempt
        "x" * 500,  # absurdly long
    ],
)
def test_malformed_action_names_are_denied_without_being_echoed(ctx: Ctx, action: str) -> None:
    decision = decide(ROOT, action, None, ctx())
    assert not decision.allow
    assert decision.code == "invalid-action/default-deny"
    assert "DROP" not in decision.reason


@pytest.mark.parametrize("actor", [None, "alice", {"name": "root", "role": "admin"}])
def test_anything_but_an_authenticated_user_is_denied(
    ctx: Ctx, active: ProjectState, actor: object
) -> None:
    decision = decide(actor, "project.show", active, ctx())
    assert (decision.allow, decision.code) == (False, "project.show/unauthenticated")


def test_shipped_rules_cover_the_documented_actions() -> None:
    assert DEFAULT_RULES.actions() == (
        "ledger.read",
        "lookup",
        "project.approve",
        "project.create",
        "project.deny",
        "project.revoke",
        "project.show",
        "task.ask",
        "task.run",
        "task.submit",
    )


def test_an_empty_registry_denies_everything(ctx: Ctx, active: ProjectState) -> None:
    engine = PolicyEngine(RuleRegistry())
    assert not engine.decide(ROOT, "project.show", active, ctx()).allow


def test_rules_cannot_be_registered_twice_or_under_malformed_names() -> None:
    registry = RuleRegistry()

    @registry.register("demo.action")
    def rule(actor: object, resource: object, context: Context) -> Decision:
        return Decision(False, "no", (), "no")

    with pytest.raises(ValueError, match="registered already"):
        registry.register("demo.action")(rule)
    with pytest.raises(ValueError, match="malformed"):
        registry.register("Demo Action")


def test_every_decision_allow_or_deny_is_recorded(
    ctx: Ctx, recorder: MemoryRecorder, active: ProjectState
) -> None:
    allowed = decide(ALICE, "project.show", active, ctx())
    denied = decide(DR_CHEN, "project.show", active, ctx())
    unknown = decide(ROOT, "data.export", None, ctx())
    assert [r.allow for r in recorder.records] == [True, False, False]
    assert [r.code for r in recorder.records] == [allowed.code, denied.code, unknown.code]
    assert recorder.records[0].project == "t2d-outcomes"
    assert recorder.records[1].actor == "dr.chen"


def test_records_fit_the_ledger_entry_schema(
    ctx: Ctx, recorder: MemoryRecorder, active: ProjectState
) -> None:
    task = TaskRequest.parse(
        {
            "project_id": active.project.id,
            "node": "h1",
            "computation": "count",
            "variables": ["age"],
            "contract_hash": contract_hash(active.project, "h1"),
        }
    )
    decide(ALICE, "task.run", active, ctx(task=task, node_policy=H1_POLICY))
    decide(LI, "project.revoke", active, ctx(reason="audit finding"))
    lookup = LookupRequest(Purpose.BTG, "unconscious, no ID, allergy check", "ps_1234abcd")
    decide(DR_CHEN, "lookup", lookup, ctx(node_policy=H2_POLICY))
    decide(ROOT, "data.export", None, ctx())
    decide(None, "task.run", active, ctx())
    entries = [Entry(**r.ledger_fields()) for r in recorder.records]
    assert [e.type.value for e in entries] == [
        "compute",
        "revocation",
        "lookup",
        "export",
        "compute",
    ]
    compute = entries[0]
    assert compute.node == "h1" and compute.project == "t2d-outcomes"
    assert compute.artefacts["agreement"] == f"sha256:{task.contract_hash}"
    assert compute.artefacts["query"] == f"sha256:{task.digest()}"
    assert compute.details == {
        "decision": "allow",
        "reason": "task.run/allowed",
        "role": "researcher",
        "purpose": "HRESCH",
    }
    assert entries[2].artefacts["justification"].startswith("sha256:")
    assert entries[2].details["purpose"] == "BTG"
    assert entries[4].actor == "anonymous"


def test_a_decision_that_cannot_be_recorded_is_not_returned(active: ProjectState) -> None:
    class BrokenLedger:
        def record(self, record: object) -> None:
            raise OSError("disk full")

    context = Context(now=active.requested_at, recorder=BrokenLedger())
    with pytest.raises(RecordError, match="was not taken; check the ledger and retry"):
        decide(ALICE, "project.show", active, context)


def test_decisions_are_immutable_and_require_raises_on_deny(ctx: Ctx, active: ProjectState) -> None:
    allowed = decide(ALICE, "project.show", active, ctx())
    assert allowed.require() is allowed
    with pytest.raises(dataclasses.FrozenInstanceError):
        allowed.allow = False  # type: ignore[misc]
    denied = decide(DR_CHEN, "project.show", active, ctx())
    with pytest.raises(PolicyDenied, match="only parties to project t2d-outcomes") as caught:
        denied.require()
    assert caught.value.code == "project.show/not-party"
    assert caught.value.http_status == 403


def test_naive_time_is_refused(recorder: MemoryRecorder) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Context(now=datetime(2025, 3, 1, 9, 0), recorder=recorder)


def test_allow_all_engine_is_loud_and_still_recorded(
    ctx: Ctx, recorder: MemoryRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="medspace.policy.engine"):
        decision = UnsafeAllowAllForTests().decide(DR_CHEN, "data.export", None, ctx())
    assert decision.allow
    assert decision.reason.startswith("UNSAFE")
    assert decision.code == "data.export/unsafe"
    assert "UnsafeAllowAllForTests allowed data.export" in caplog.text
    assert recorder.records[-1].allow


def test_records_are_stamped_in_utc(recorder: MemoryRecorder, active: ProjectState) -> None:
    beijing = timezone(timedelta(hours=8))
    context = Context(now=datetime(2025, 3, 1, 17, 0, tzinfo=beijing), recorder=recorder)
    decide(ALICE, "project.show", active, context)
    assert Entry(**recorder.records[-1].ledger_fields()).time == "2025-03-01T09:00:00.000000Z"


def test_malformed_task_payload_is_refused_without_echoing_it() -> None:
    with pytest.raises(ProjectError, match="node: Value error, invalid node name") as caught:
        TaskRequest.parse(
            {
                "project_id": "t2d-outcomes",
                "node": "H1 Zhang San",
                "computation": "count",
                "variables": ["age"],
                "contract_hash": "0" * 64,
            }
        )
    assert "Zhang" not in str(caught.value)
