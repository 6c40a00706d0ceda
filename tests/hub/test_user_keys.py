"""Users sign their own ledger entries: the hub logs exactly what the user signed, refuses
unsigned, foreign, stale and replayed signatures, and nodes refuse approvals that are not
signed by a steward they pinned (a hub forging or replaying one gets the task refused,
and the node ledgers the refusal)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tests.hub.support import (
    HubThread,
    delegation,
    make_hub,
    make_node,
    network,
    project_terms,
    steward_approval,
)

from medspace.hub import HubCore, HubRequestError
from medspace.hub.signers import user_digest
from medspace.identity import Role, User
from medspace.identity.errors import SignatureRequired, UserKeyError, UserKeyExists
from medspace.identity.userkeys import registration_entry
from medspace.ledger import Entry, EntrySigner, EntryType, SignedEntry, sign_entry, verify_entry
from medspace.policy import NodePolicy, Purpose, contract_hash

ALICE = User("alice", Role.RESEARCHER)
BOB = User("bob", Role.AUDITOR)
STEWARD = User("steward-h1", Role.STEWARD, "h1")


class Clock:
    """A hub clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def core(tmp_path: Path, clock: Clock) -> Iterator[HubCore]:
    node_dir = make_node(tmp_path / "h1", "h1", 1, 0)
    make_hub(tmp_path / "hub", {"h1": node_dir})
    hub = HubCore(tmp_path / "hub", clock=clock)
    hub.set_node_policy(
        NodePolicy(
            node="h1",
            min_cell_floor=5,
            allowed_purposes=frozenset({Purpose.HRESCH}),
            allowed_computations=frozenset({"count"}),
        )
    )
    yield hub
    hub.close()


def register(core: HubCore, user: User) -> Ed25519PrivateKey:
    """Give `user` a key and register it, as `medspace login` does."""
    key = Ed25519PrivateKey.generate()
    proof = sign_entry(registration_entry(user.name, key.public_key(), core.clock()), key)
    core.register_user_key(user, key.public_key(), proof)
    return key


def drafts_of(call: object) -> list[Entry]:
    """The drafts a signature-less call asks for (it must raise `SignatureRequired`)."""
    assert callable(call)
    with pytest.raises(SignatureRequired) as asked:
        call()
    return [Entry.from_json(d) for d in asked.value.drafts]


def signed(drafts: list[Entry], key: Ed25519PrivateKey) -> list[SignedEntry]:
    signer = EntrySigner(key)
    return [signer.sign(d) for d in drafts]


def bodies(core: HubCore) -> list[bytes]:
    return [r.signed.body for r in core.log.entries(start=0, limit=10_000)]


# -- the hub logs only what users signed -------------------------------------------------


def test_an_unsigned_request_gets_drafts_and_changes_nothing(core: HubCore) -> None:
    register(core, ALICE)
    size = core.log.size()
    (draft,) = drafts_of(lambda: core.create_project(ALICE, project_terms("p-one", ["h1"])))
    assert (draft.type, draft.actor, draft.project) == (EntryType.REQUEST, "alice", "p-one")
    assert core.log.size() == size
    assert core.book.ids() == []


def test_a_signed_request_is_logged_as_the_users_own_entry(core: HubCore) -> None:
    key = register(core, ALICE)
    terms = project_terms("p-one", ["h1"])
    mine = signed(drafts_of(lambda: core.create_project(ALICE, terms)), key)
    core.create_project(ALICE, terms, mine)
    assert mine[0].body in bodies(core)
    assert verify_entry(mine[0], core.signers).principal == "alice"
    assert core.book.ids() == ["p-one"]


def test_an_entry_signed_with_another_users_key_is_refused(core: HubCore) -> None:
    register(core, ALICE)
    bob_key = register(core, BOB)
    terms = project_terms("p-one", ["h1"])
    forged = signed(drafts_of(lambda: core.create_project(ALICE, terms)), bob_key)
    with pytest.raises(UserKeyError, match="not signed by your registered key"):
        core.create_project(ALICE, terms, forged)
    assert core.book.ids() == []


def test_an_entry_in_another_users_name_is_refused(core: HubCore) -> None:
    register(core, ALICE)
    bob_key = register(core, BOB)
    terms = project_terms("p-one", ["h1"])
    (draft,) = drafts_of(lambda: core.create_project(ALICE, terms))
    as_bob = Entry(**{**draft.to_json(), "actor": "bob"})  # type: ignore[arg-type]
    with pytest.raises(UserKeyError, match="another actor"):
        core.create_project(ALICE, terms, [sign_entry(as_bob, bob_key)])


def test_a_user_without_a_registered_key_cannot_act(core: HubCore) -> None:
    terms = project_terms("p-one", ["h1"])
    (draft,) = drafts_of(lambda: core.create_project(ALICE, terms))
    homemade = sign_entry(draft, Ed25519PrivateKey.generate())
    with pytest.raises(UserKeyError, match="no registered signing key"):
        core.create_project(ALICE, terms, [homemade])


def test_a_stale_signed_entry_is_refused(core: HubCore, clock: Clock) -> None:
    key = register(core, ALICE)
    terms = project_terms("p-one", ["h1"])
    mine = signed(drafts_of(lambda: core.create_project(ALICE, terms)), key)
    clock.now += timedelta(minutes=10)
    with pytest.raises(UserKeyError, match="clock"):
        core.create_project(ALICE, terms, mine)


def test_a_signed_entry_whose_fields_differ_from_the_decision_is_not_accepted(
    core: HubCore,
) -> None:
    key = register(core, ALICE)
    terms = project_terms("p-one", ["h1"])
    (draft,) = drafts_of(lambda: core.create_project(ALICE, terms))
    changed = Entry(**{**draft.to_json(), "project": "p-two"})  # type: ignore[arg-type]
    with pytest.raises(SignatureRequired):
        core.create_project(ALICE, terms, [sign_entry(changed, key)])
    assert core.book.ids() == []


def test_the_stewards_signed_approval_is_kept_with_the_verdict(core: HubCore) -> None:
    alice_key, steward_key = register(core, ALICE), register(core, STEWARD)
    terms = project_terms("p-one", ["h1"])
    core.create_project(
        ALICE, terms, signed(drafts_of(lambda: core.create_project(ALICE, terms)), alice_key)
    )
    approve = signed(
        drafts_of(lambda: core.approve(STEWARD, "p-one", None, "ethics ok")), steward_key
    )
    state = core.approve(STEWARD, "p-one", None, "ethics ok", approve)
    verdict = state.verdict("h1")
    assert verdict is not None and verdict.entry is not None
    kept = SignedEntry.from_bytes(base64.b64decode(verdict.entry))
    assert kept == approve[0]
    assert kept.entry.artefacts["agreement"] == "sha256:" + contract_hash(state.project, "h1")


def test_a_signed_approval_replayed_for_another_project_approves_nothing(
    core: HubCore,
) -> None:
    alice_key, steward_key = register(core, ALICE), register(core, STEWARD)
    for project in ("p-one", "p-two"):
        terms = project_terms(project, ["h1"])
        mine = signed(drafts_of(lambda t=terms: core.create_project(ALICE, t)), alice_key)
        core.create_project(ALICE, terms, mine)
    for_one = signed(drafts_of(lambda: core.approve(STEWARD, "p-one", None, "ok")), steward_key)
    with pytest.raises(SignatureRequired):
        core.approve(STEWARD, "p-two", None, "ok", for_one)
    assert core.book.get("p-two").verdict("h1") is None


def test_a_denied_action_is_the_hubs_own_observation(core: HubCore) -> None:
    register(core, BOB)
    with pytest.raises(Exception, match="researcher"):
        core.create_project(BOB, project_terms("p-one", ["h1"]))
    last = SignedEntry.from_bytes(bodies(core)[-1]).entry
    assert last.actor == "hub"
    assert last.details["decision"] == "deny"
    assert last.artefacts["user"] == user_digest("bob")


# -- key registration and reset -------------------------------------------------------------


def test_registering_a_key_twice_is_refused(core: HubCore) -> None:
    register(core, ALICE)
    with pytest.raises(UserKeyExists, match="an admin must reset"):
        register(core, ALICE)


def test_an_admin_reset_retires_the_key_and_is_ledgered(core: HubCore) -> None:
    old = register(core, ALICE)
    retired = core.reset_user_key("alice", by=User("admin", Role.ADMIN))
    last = SignedEntry.from_bytes(bodies(core)[-1]).entry
    assert last.type is EntryType.KEY_ROTATION and last.actor == "hub"
    assert last.details["previous_key_id"] == retired
    terms = project_terms("p-one", ["h1"])
    with_old = signed(drafts_of(lambda: core.create_project(ALICE, terms)), old)
    with pytest.raises(UserKeyError, match="no registered signing key"):
        core.create_project(ALICE, terms, with_old)
    new = register(core, ALICE)
    core.create_project(
        ALICE, terms, signed(drafts_of(lambda: core.create_project(ALICE, terms)), new)
    )


def test_only_an_admin_may_reset_a_key(core: HubCore) -> None:
    register(core, ALICE)
    with pytest.raises(Exception, match="only admins"):
        core.reset_user_key("alice", by=BOB)
    assert core.user_keys.active("alice") is not None


def test_the_key_routes_register_once_and_refuse_a_second_key(tmp_path: Path) -> None:
    node_dir = make_node(tmp_path / "h1", "h1", 1, 0)
    make_hub(tmp_path / "hub", {"h1": node_dir})
    hub = HubThread(tmp_path / "hub").start()
    try:
        alice = hub.client("alice")  # first login: key created and registered
        assert alice.get("/auth/key")["public_key"] is not None
        other = hub.client()
        other.login("alice", "correct horse battery staple")
        with pytest.raises(UserKeyError, match="another signing key"):
            other.ensure_user_key("alice", tmp_path / "another-machine")
        unsigned = httpx.post(
            f"{hub.url}/projects",
            json=project_terms("p-raw", ["h1"]),
            headers={"Authorization": alice._http.headers["Authorization"]},
        )
        assert unsigned.status_code == 428
        assert unsigned.json()["drafts"][0]["type"] == "request"
        with pytest.raises(HubRequestError) as refused:
            alice.post("/users/alice/key", None)
        assert refused.value.http_status == 405
        with pytest.raises(HubRequestError, match="only admins") as forbidden:
            alice.request("DELETE", "/users/alice/key")
        assert forbidden.value.http_status == 403
        hub.client("admin").request("DELETE", "/users/alice/key")
        assert alice.get("/auth/key")["public_key"] is None
    finally:
        hub.stop()


# -- nodes accept only approvals their pinned stewards signed -------------------------------


def _count_row(hub: HubThread, project: str, node: str = "h1") -> dict[str, object]:
    rows = hub.client("alice").post(f"/projects/{project}/count")["results"]
    return next(r for r in rows if r["node"] == node)


def _node_refusals(hub: HubThread) -> list[Entry]:
    core = hub.app.state.core
    entries = [r.signed.entry for r in core.log.entries(start=0, limit=10_000)]
    return [e for e in entries if e.actor == "h1" and e.details.get("decision") == "deny"]


def test_an_approval_forged_by_the_hub_is_refused_at_the_node(tmp_path: Path) -> None:
    with network(tmp_path, {"h1": (8, 6)}) as (hub, _nodes, _):
        hub.client("alice").post("/projects", project_terms("forged", ["h1"]))
        core = hub.app.state.core
        now = datetime.now(UTC)
        # A dishonest hub approves in the steward's name, signing with its own key.
        core.book.update(
            "forged", lambda s: steward_approval(s, STEWARD, core.hub_key, now), now=now
        )
        row = _count_row(hub, "forged")
        assert row["status"] == "refused"
        assert "not signed by a steward pinned" in str(row["reason"])
        refusals = _node_refusals(hub)
        assert refusals and refusals[-1].details["reason"] == "task.run/unverified"


def test_a_real_approval_replayed_for_another_project_is_refused_at_the_node(
    tmp_path: Path,
) -> None:
    with network(tmp_path, {"h1": (8, 6)}) as (hub, _nodes, _):
        alice = hub.client("alice")
        for project in ("honest", "smuggled"):
            alice.post("/projects", project_terms(project, ["h1"]))
        hub.client("steward-h1").post("/projects/honest/approve", {"reason": "ok"})
        assert _count_row(hub, "honest")["status"] == "ok"
        core = hub.app.state.core
        real = core.book.get("honest").verdict("h1")
        now = datetime.now(UTC)
        core.book.update(
            "smuggled",
            lambda s: s.approve(STEWARD, "h1", "copied", now, entry=real.entry),
            now=now,
        )
        row = _count_row(hub, "smuggled")
        assert row["status"] == "refused"
        assert "another project" in str(row["reason"])


def test_an_approval_over_other_terms_is_refused_at_the_node(tmp_path: Path) -> None:
    with network(tmp_path, {"h1": (8, 6)}) as (hub, _nodes, _):
        hub.client("alice").post("/projects", project_terms("terms", ["h1"]))
        core = hub.app.state.core
        steward_key = Ed25519PrivateKey.generate()
        now = datetime.now(UTC)
        # Even the steward's own key does not help when the signed hash is another one.
        core.book.update(
            "terms",
            lambda s: steward_approval(s, STEWARD, steward_key, now, contract="ab" * 32),
            now=now,
        )
        row = _count_row(hub, "terms")
        assert row["status"] == "refused"


def test_unpinning_a_steward_stops_their_approvals_at_the_node(tmp_path: Path) -> None:
    from medspace.identity.stewards import unpin_steward

    with network(tmp_path, {"h1": (8, 6)}) as (hub, _nodes, dirs):
        hub.client("alice").post("/projects", project_terms("unpin", ["h1"]))
        hub.client("steward-h1").post("/projects/unpin/approve", {"reason": "ok"})
        assert _count_row(hub, "unpin")["status"] == "ok"
        assert unpin_steward(dirs["h1"], "steward-h1")
        assert _count_row(hub, "unpin")["status"] == "refused"


# -- closing is final at the node: a hub cannot reopen what the node saw closed ----------


def _worker_task(state: object, key: Ed25519PrivateKey) -> dict[str, object]:
    from medspace.policy import ProjectState, TaskRequest

    assert isinstance(state, ProjectState)
    task = TaskRequest(
        project_id=state.project.id,
        node="h1",
        computation="count",
        variables=("condition.code",),
        contract_hash=contract_hash(state.project, "h1"),
    )
    task_id = "0f6b1d9e-2c4a-4e8b-a1d3-5f7e9c0b2a46"
    return {
        "task_id": task_id,
        "token": delegation(key, ALICE, "task", task_id),
        "task": task.model_dump(mode="json"),
        "project": state.model_dump(mode="json"),
    }


@pytest.mark.parametrize("closing", ["withdraw", "revoke"])
def test_a_hub_showing_a_closed_project_open_again_is_refused(tmp_path: Path, closing: str) -> None:
    from medspace.identity import public_key_text
    from medspace.identity.stewards import pin_steward
    from medspace.ledger import NoteSigner
    from medspace.node import open_node
    from medspace.node.standing import HubPin
    from medspace.node.worker import NodeWorker
    from medspace.policy import Project, ProjectState

    node_dir = make_node(tmp_path / "h1", "h1", 8, 6)
    hub_key, steward_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    pin_steward(node_dir, STEWARD.name, public_key_text(steward_key))
    pin = HubPin(
        "test-hub",
        public_key_text(hub_key),
        NoteSigner("test-hub", Ed25519PrivateKey.generate()).verifier.vkey,
    )
    now = datetime.now(UTC)
    project = Project.parse({"owner": "alice", **project_terms("closing", ["h1"])})
    approved = steward_approval(ProjectState.request(project, now), STEWARD, steward_key, now)
    if closing == "withdraw":
        closed = approved.withdraw(STEWARD, "h1", "ethics board withdrew", now)
    else:
        closed = approved.revoke(ALICE, "study stopped", now)
    with open_node(node_dir) as node:
        worker = NodeWorker(node, pin)
        try:
            assert worker.handle_task(_worker_task(approved, hub_key), now)["status"] == "ok"
            assert worker.handle_task(_worker_task(closed, hub_key), now)["status"] == "refused"
            reopened = worker.handle_task(_worker_task(approved, hub_key), now)
            assert reopened["status"] == "refused"
            assert "revoked" in reopened["reason"] or "undone" in reopened["reason"]
        finally:
            worker.close()


def test_a_withdrawal_reaches_the_node_at_once_and_a_hub_cannot_undo_it(
    tmp_path: Path,
) -> None:
    with network(tmp_path, {"h1": (8, 6)}) as (hub, nodes, _):
        hub.client("alice").post("/projects", project_terms("hidden", ["h1"]))
        steward = hub.client("steward-h1")
        steward.post("/projects/hidden/approve", {"reason": "ok"})
        assert _count_row(hub, "hidden")["status"] == "ok"
        core = hub.app.state.core
        approved = core.book.get("hidden")
        steward.post("/projects/hidden/revoke", {"reason": "consent concerns"})
        assert "project update ok" in nodes["h1"].events
        # A hub that later shows the old, validly signed approval again is refused.
        now = datetime.now(UTC)
        core.book.update("hidden", lambda _s: approved, now=now)
        row = _count_row(hub, "hidden")
        assert row["status"] == "refused"
        assert "undone" in str(row["reason"])


def test_a_signed_task_replayed_is_refused(tmp_path: Path) -> None:
    with network(tmp_path, {"h1": (8, 6)}) as (hub, _nodes, _):
        alice = hub.client("alice")
        alice.post("/projects", project_terms("replay", ["h1"]))
        hub.client("steward-h1").post("/projects/replay/approve", {"reason": "ok"})
        path = "/projects/replay/count"
        auth = {"Authorization": alice._http.headers["Authorization"]}
        asked = httpx.post(hub.url + path, headers=auth)
        assert asked.status_code == 428
        header = alice.sign_drafts(asked.json()["drafts"], "POST", path)
        signed_headers = {**auth, "X-MedSpace-Signed-Entries": header}
        first = httpx.post(hub.url + path, headers=signed_headers)
        assert first.status_code == 200 and first.json()["results"][0]["status"] == "ok"
        size = hub.app.state.core.log.size()
        again = httpx.post(hub.url + path, headers=signed_headers)
        assert again.status_code == 403
        assert "used before" in again.json()["message"]
        assert hub.app.state.core.log.size() == size
