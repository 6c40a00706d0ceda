"""Bad input and faults: tokens, roles, channel replays, tampered contracts, unknown node
keys, nodes that vanish mid-task and a hub restart. Deadlines everywhere, no timing asserts."""

from __future__ import annotations

import base64
import json
import threading
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tests.hub.support import (
    PASSWORD,
    HubThread,
    delegation,
    make_hub,
    make_node,
    network,
    project_terms,
    steward_approval,
    wait_until,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from medspace.hub import HubClient, HubRequestError
from medspace.hub.handshake import ChannelKeys, Ephemeral, sign_accept
from medspace.hub.protocol import (
    CLOSE_AUTH,
    CLOSE_PROTOCOL,
    HUB_TO_NODE,
    NODE_TO_HUB,
    Opener,
    Sealer,
)
from medspace.identity import Role, User, public_key_text, sign_challenge
from medspace.identity.stewards import pin_steward
from medspace.node import open_node
from medspace.node.standing import HubPin, load_node_policy
from medspace.node.worker import NodeWorker
from medspace.policy import Project, ProjectState, TaskRequest, contract_hash


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One running network for the tests that only read or get refused."""
    with network(tmp_path_factory.mktemp("shared"), {"h1": (3, 1)}) as running:
        yield running


def _ws_url(hub: HubThread) -> str:
    return hub.url.replace("http://", "ws://") + "/channel"


@contextmanager
def _handshake(hub: HubThread, name: str, key: Ed25519PrivateKey):  # type: ignore[no-untyped-def]
    with connect(_ws_url(hub), open_timeout=30) as ws:
        yield ws, _hello(ws, name, key)


def _hello(  # type: ignore[no-untyped-def]
    ws, name: str, key: Ed25519PrivateKey, accept_key: Ed25519PrivateKey | None = None
) -> ChannelKeys:
    """A node's side of the handshake, by hand; the session's keys. `accept_key` signs
    the ephemeral keys instead of `key` (someone in between swapping them)."""
    challenge_frame = json.loads(ws.recv(timeout=30))
    challenge = base64.b64decode(challenge_frame["challenge"])
    hub_ephemeral = base64.b64decode(challenge_frame["ephemeral"])
    ephemeral = Ephemeral()
    accepted = sign_accept(accept_key or key, challenge, hub_ephemeral, ephemeral.public)
    ws.send(
        json.dumps(
            {
                "type": "hello",
                "node": name,
                "signature": _b64(sign_challenge(key, challenge)),
                "ephemeral": _b64(ephemeral.public),
                "key_signature": _b64(accepted),
            }
        )
    )
    return ephemeral.keys(challenge, hub_ephemeral, ephemeral.public)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _close_code(ws) -> int | None:  # type: ignore[no-untyped-def]
    try:
        while True:
            ws.recv(timeout=30)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",  # malformed
        "ms1.e30.AAAA",  # well-shaped but forged
    ],
)
def test_unknown_and_forged_tokens_are_refused(shared, token: str) -> None:
    hub, _nodes, _dirs = shared
    with HubClient(hub.url, token) as client, pytest.raises(HubRequestError) as refused:
        client.get("/projects")
    assert refused.value.http_status == 401


def test_expired_token_is_refused(shared) -> None:
    hub, _nodes, _dirs = shared
    core = hub.app.state.core
    past = datetime.now(UTC) - timedelta(days=2)
    token = core.users.login("alice", PASSWORD, now=past)
    with HubClient(hub.url, token) as client, pytest.raises(HubRequestError, match="expired"):
        client.get("/projects")


def test_routes_without_a_token_answer_401(shared) -> None:
    hub, _nodes, _dirs = shared
    with HubClient(hub.url) as client:
        for path in ("/projects", "/ledger/entries", "/nodes", "/users", "/me"):
            with pytest.raises(HubRequestError) as refused:
                client.get(path)
            assert refused.value.http_status == 401, path


def test_wrong_role_is_refused_and_ledgered(shared) -> None:
    hub, _nodes, _dirs = shared
    core = hub.app.state.core
    before = core.log.size()
    with pytest.raises(HubRequestError, match="researcher") as refused:
        hub.client("steward-h1").post("/projects", project_terms("wrong-role", ["h1"]))
    assert refused.value.http_status == 403
    with pytest.raises(HubRequestError, match="only admins"):
        hub.client("alice").get("/users")
    denials = [
        e
        for e in core.log.entries(start=before)
        if e.signed.entry.details.get("decision") == "deny"
    ]
    assert len(denials) == 2


def test_replayed_channel_message_ends_the_session(tmp_path: Path) -> None:
    with network(tmp_path, {"h1": (3, 1)}) as (hub, nodes, dirs):
        nodes["h1"].stop()
        wait_until(lambda: not hub.connected(), "h1 to disconnect")
        with open_node(dirs["h1"]) as node:
            key = node.identity_private_key()
        with _handshake(hub, "h1", key) as (ws, keys):
            ws.recv(timeout=30)  # welcome
            sealer = Sealer(keys.node_to_hub, keys.session, NODE_TO_HUB)
            frame = sealer.seal([{"type": "policy", "policy": {"node": "h1"}}])
            ws.send(frame)
            ws.send(frame)  # the same envelope again: a replay
            with suppress(ConnectionClosed):
                ws.send(frame)
            assert _close_code(ws) == CLOSE_PROTOCOL


def test_reordered_channel_message_ends_the_session(tmp_path: Path) -> None:
    with network(tmp_path, {"h1": (3, 1)}) as (hub, nodes, dirs):
        nodes["h1"].stop()
        wait_until(lambda: not hub.connected(), "h1 to disconnect")
        with open_node(dirs["h1"]) as node:
            key = node.identity_private_key()
        with _handshake(hub, "h1", key) as (ws, keys):
            ws.recv(timeout=30)
            sealer = Sealer(keys.node_to_hub, keys.session, NODE_TO_HUB)
            first = sealer.seal([{"type": "policy", "policy": {"node": "h1"}}])
            second = sealer.seal([{"type": "policy", "policy": {"node": "h1"}}])
            del first
            ws.send(second)  # number 1 before number 0
            assert _close_code(ws) == CLOSE_PROTOCOL


def test_a_hello_whose_ephemeral_key_another_key_signed_is_refused(tmp_path: Path) -> None:
    """Someone in between relays the node's challenge signature but swaps in their own
    ephemeral key: the hub refuses, so nobody else ever holds the session's keys."""
    with network(tmp_path, {"h1": (3, 1)}) as (hub, nodes, dirs):
        nodes["h1"].stop()
        wait_until(lambda: not hub.connected(), "h1 to disconnect")
        with open_node(dirs["h1"]) as node:
            key = node.identity_private_key()
        with connect(_ws_url(hub), open_timeout=30) as ws:
            _hello(ws, "h1", key, accept_key=Ed25519PrivateKey.generate())
            assert _close_code(ws) == CLOSE_AUTH


def test_unregistered_node_key_is_refused(shared) -> None:
    hub, _nodes, _dirs = shared
    with _handshake(hub, "h1", Ed25519PrivateKey.generate()) as (ws, _keys):
        assert _close_code(ws) == CLOSE_AUTH
    with _handshake(hub, "h9", Ed25519PrivateKey.generate()) as (ws, _challenge):
        assert _close_code(ws) == CLOSE_AUTH


def test_node_that_disconnects_mid_task_is_reported_missing(tmp_path: Path) -> None:
    with network(tmp_path, {"h1": (6, 4), "h2": (6, 4)}) as (hub, nodes, dirs):
        alice = hub.client("alice")
        alice.post("/projects", project_terms("vanish", ["h1", "h2"]))
        for n in ("h1", "h2"):
            hub.client(f"steward-{n}").post("/projects/vanish/approve", {"reason": "fine"})
        nodes["h2"].stop()
        wait_until(lambda: hub.connected() == ["h1"], "h2 to disconnect")
        with open_node(dirs["h2"]) as node:
            key = node.identity_private_key()
        with _handshake(hub, "h2", key) as (ws, keys):
            opener = Opener(keys.hub_to_node, keys.session, HUB_TO_NODE)
            opener.open(ws.recv(timeout=30))  # welcome

            def vanish_on_task() -> None:
                while True:
                    bodies = opener.open(ws.recv(timeout=60))
                    if any(body.get("type") == "task" for body in bodies):
                        ws.close()
                        return

            quitter = threading.Thread(target=vanish_on_task, daemon=True)
            quitter.start()
            wait_until(lambda: "h2" in hub.connected(), "the fake h2 to connect")
            answer = alice.post("/projects/vanish/count")
            quitter.join(timeout=60)
            rows = {r["node"]: r for r in answer["results"]}
            assert rows["h1"]["status"] == "ok"
            assert rows["h2"]["status"] == "missing"
            assert answer["partial"] is True


def test_hub_restart_nodes_reconnect_and_no_entry_is_lost(tmp_path: Path) -> None:
    dirs = {n: make_node(tmp_path / n, n, 6, 4) for n in ("h1", "h2")}
    make_hub(tmp_path / "hub", dirs)
    hub = HubThread(tmp_path / "hub").start()
    from tests.hub.support import NodeThread

    hub.pin_stewards(dirs)
    threads = [NodeThread(d, hub.url).start() for d in dirs.values()]
    try:
        wait_until(lambda: len(hub.connected()) == 2, "both nodes to connect")
        hub.client("alice").post("/projects", project_terms("restart", ["h1", "h2"]))
        for n in ("h1", "h2"):
            hub.client(f"steward-{n}").post("/projects/restart/approve", {"reason": "fine"})
        size_before = hub.app.state.core.log.size()
        hub.stop()
        hub = HubThread(tmp_path / "hub", port=hub.port).start()
        wait_until(lambda: len(hub.connected()) == 2, "both nodes to reconnect")
        assert hub.app.state.core.log.size() >= size_before
        answer = hub.client("alice").post("/projects/restart/count")
        assert [r["count"] for r in answer["results"]] == [None, None]  # 4 < floor 5
        assert all(r["status"] == "ok" for r in answer["results"])
    finally:
        for thread in threads:
            thread.stop()
        hub.stop()


def test_node_refuses_a_task_with_a_tampered_contract_hash(tmp_path: Path) -> None:
    node_dir = make_node(tmp_path / "h1", "h1", 6, 4)
    hub_key = Ed25519PrivateKey.generate()
    log_key = Ed25519PrivateKey.generate()
    from medspace.ledger import NoteSigner

    pin = HubPin(
        "test-hub", public_key_text(hub_key), NoteSigner("test-hub", log_key).verifier.vkey
    )
    now = datetime.now(UTC)
    project = Project.parse({"owner": "alice", **project_terms("tamper", ["h1"])})
    steward = User("steward-h1", Role.STEWARD, "h1")
    steward_key = Ed25519PrivateKey.generate()
    pin_steward(node_dir, steward.name, public_key_text(steward_key))
    state = steward_approval(ProjectState.request(project, now), steward, steward_key, now)
    task_id = "7d1c2f0e-8a3b-4c5d-9e6f-0a1b2c3d4e5f"
    token = delegation(hub_key, User("alice", Role.RESEARCHER), "task", task_id, now)
    good = contract_hash(project, "h1")
    tampered = ("0" if good[0] != "0" else "1") + good[1:]
    with open_node(node_dir) as node:
        worker = NodeWorker(node, pin)
        try:
            assert load_node_policy(node_dir, "h1").min_cell_floor == 5
            for digest, status in ((tampered, "refused"), (good, "ok")):
                task = TaskRequest(
                    project_id="tamper",
                    node="h1",
                    computation="count",
                    variables=("condition.code",),
                    contract_hash=digest,
                )
                reply = worker.handle_task(
                    {
                        "task_id": task_id,
                        "task": task.model_dump(mode="json"),
                        "project": state.model_dump(mode="json"),
                        "token": token,
                    },
                    now=now,
                )
                assert reply["status"] == status, reply.get("reason")
            assert (
                "contract hash"
                in worker.handle_task(
                    {
                        "task_id": task_id,
                        "task": {**task.model_dump(mode="json"), "contract_hash": tampered},
                        "project": state.model_dump(mode="json"),
                        "token": token,
                    },
                    now=now,
                )["reason"]
            )
        finally:
            worker.close()
