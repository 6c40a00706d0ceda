"""Helpers for network tests: nodes with a few synthetic patients, a hub served by uvicorn
in a thread, node services in threads, and polling with deadlines (never timing asserts)."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medspace.aio import new_event_loop
from medspace.connectors.base import Parsed
from medspace.hub import HubClient, HubCore, create_app, init_hub
from medspace.identity import (
    Role,
    User,
    issue_delegation,
    issue_token,
    public_key_text,
    verify_token,
)
from medspace.identity.stewards import pin_steward
from medspace.identity.userkeys import user_key_path
from medspace.ledger import Entry, EntryType, sign_entry, utc_timestamp
from medspace.model import Code, Condition, Identity, Patient
from medspace.node import init_node, open_node
from medspace.node.service import NodeService
from medspace.node.standing import save_node_policy
from medspace.policy import NodePolicy, ProjectState, Purpose, contract_hash

PASSWORD = "correct horse battery staple"
DEADLINE = 60.0


def delegation(
    key: Ed25519PrivateKey,
    user: User,
    audience: str,
    binding: str,
    now: datetime | None = None,
) -> str:
    """What a hub with token key `key` forwards to nodes for `user`'s request `binding`
    (a task, session or lookup request id) of `audience`."""
    moment = now or datetime.now(UTC)
    bearer = issue_token(key, user, timedelta(hours=1), now=moment)
    claims = verify_token(key.public_key(), bearer, now=moment)
    return issue_delegation(key, claims, audience=audience, binding=binding, now=moment)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` at the deadline."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def make_node(directory: Path, name: str, patients: int, diabetic: int) -> Path:
    """A node with `patients` synthetic patients, the first `diabetic` with an E11 condition
    (the rest with I10), and a standing policy allowing research counts (floor 5)."""
    init_node(directory, name)
    outcomes = []
    for n in range(patients):
        person = Patient(
            source_id=f"{name}-P{n}",
            sex="female" if n % 2 else "male",
            birth_date=date(1950 + n % 40, 1, 1),
            identity=Identity(family_name=f"Family{n}", given_name=f"Given{n}"),
        )
        condition = Condition(
            source_id=f"{name}-C{n}",
            patient_id=f"{name}-P{n}",
            code=Code("ICD-10", "E11.9" if n < diabetic else "I10", "x"),
            onset=date(2024, 1, 1),
        )
        outcomes.append(Parsed("test", f"line {n}", (person, condition)))
    with open_node(directory) as node:
        node.store.ingest(outcomes, source="test")
    save_node_policy(
        directory,
        NodePolicy(
            node=name,
            min_cell_floor=5,
            allowed_purposes=frozenset({Purpose.HRESCH}),
            allowed_computations=frozenset({"count"}),
        ),
    )
    return directory


def make_hub(directory: Path, nodes: dict[str, Path], **options: Any) -> Path:
    """A hub with the given nodes registered and users: admin, alice (researcher), bob
    (auditor) and one steward per node (steward-<node>)."""
    init_hub(directory, **options)
    core = HubCore(directory)
    try:
        core.add_user(User("admin", Role.ADMIN), PASSWORD)
        core.add_user(User("alice", Role.RESEARCHER), PASSWORD)
        core.add_user(User("bob", Role.AUDITOR), PASSWORD)
        for name, node_dir in nodes.items():
            core.add_user(User(f"steward-{name}", Role.STEWARD, name), PASSWORD)
            with open_node(node_dir) as node:
                core.register_node(name, public_key_text(node.identity_public_key))
    finally:
        core.close()
    return directory


def project_terms(project_id: str, nodes: list[str], **changes: Any) -> dict[str, Any]:
    """Terms of a research count project over the E11 (type 2 diabetes) cohort."""
    now = datetime.now(UTC)
    terms: dict[str, Any] = {
        "id": project_id,
        "title": "Diabetes prevalence",
        "purpose": "HRESCH",
        "description": "How many patients have type 2 diabetes at each hospital.",
        "cohort": {"condition_codes": ["E11"], "code_system": "ICD-10"},
        "variables": ["condition.code"],
        "computations": ["count"],
        "disclosure": {"min_cell_size": 3},
        "nodes": nodes,
        "starts_at": (now - timedelta(minutes=5)).isoformat(),
        "expires_at": (now + timedelta(days=30)).isoformat(),
    }
    terms.update(changes)
    return terms


def steward_approval(
    state: ProjectState,
    steward: User,
    key: Ed25519PrivateKey,
    now: datetime,
    *,
    node: str | None = None,
    contract: str | None = None,
) -> ProjectState:
    """`state` approved for `node` (default: the steward's) with an approval entry signed
    by `key`, built as the hub drafts it (`contract` overrides the agreement hash)."""
    node = node or steward.node or ""
    digest = contract or contract_hash(state.project, node)
    entry = Entry(
        type=EntryType.APPROVAL,
        actor=steward.name,
        time=utc_timestamp(now),
        node=node,
        project=state.project.id,
        artefacts={"agreement": f"sha256:{digest}"},
        details={
            "decision": "allow",
            "reason": "project.approve/allowed",
            "role": "steward",
            "purpose": state.project.purpose.value,
        },
    )
    body = base64.b64encode(sign_entry(entry, key).body).decode("ascii")
    return state.approve(steward, node, "ethics approval on file", now, entry=body)


class HubThread:
    """A hub app served by uvicorn in a background thread on a free loopback port."""

    def __init__(self, directory: Path, port: int | None = None, **app_options: Any) -> None:
        # Users' own signing keys live beside the hub, as on each user's machine.
        self.key_home = Path(directory).parent / "user-keys"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(directory, **app_options)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", ws="websockets-sansio"
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> HubThread:
        """Start serving and wait until the port accepts connections."""
        self._thread.start()
        wait_until(lambda: self.server.started, "the hub to start")
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self.server.should_exit = True
        self._thread.join(timeout=DEADLINE)

    def client(self, user: str | None = None) -> HubClient:
        """A client, logged in as `user` when given, signing with the user's own key
        (created and registered on first login, as `medspace login` does)."""
        client = HubClient(self.url)
        if user is not None:
            client.login(user, PASSWORD)
            client.ensure_user_key(user, self.key_home)
        return client

    def public_key_file(self, user: str) -> Path:
        """The `<user>.pub` file written at the user's first login."""
        return user_key_path(self.key_home, self.url, user).with_suffix(".pub")

    def pin_stewards(self, node_dirs: dict[str, Path]) -> None:
        """Log each node's steward in once (creating their key) and pin it at the node,
        as `medspace node steward add` does."""
        for name, directory in node_dirs.items():
            steward = f"steward-{name}"
            self.client(steward).close()
            pin_steward(directory, steward, self.public_key_file(steward).read_text())

    def connected(self) -> list[str]:
        """Nodes connected now."""
        return list(self.app.state.channel.connected())


class NodeThread:
    """A node service running its own event loop in a background thread."""

    def __init__(self, directory: Path, hub_url: str, **options: Any) -> None:
        self.events: list[str] = []
        self.service = NodeService(directory, hub_url, on_event=self.events.append, **options)
        self._loop = new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self._loop.run_until_complete(self.service.run())

    def start(self) -> NodeThread:
        """Start the service (it connects and reconnects on its own)."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the service and wait for its thread."""
        self._loop.call_soon_threadsafe(self.service.stop)
        self._thread.join(timeout=DEADLINE)


@contextmanager
def network(
    tmp_path: Path, nodes: dict[str, tuple[int, int]], **hub_options: Any
) -> Iterator[tuple[HubThread, dict[str, NodeThread], dict[str, Path]]]:
    """A running hub with running nodes (name -> (patients, diabetic)); all connected."""
    node_dirs = {
        name: make_node(tmp_path / name, name, patients, diabetic)
        for name, (patients, diabetic) in nodes.items()
    }
    make_hub(tmp_path / "hub", node_dirs, **hub_options)
    hub = HubThread(tmp_path / "hub").start()
    hub.pin_stewards(node_dirs)
    threads = {name: NodeThread(d, hub.url).start() for name, d in node_dirs.items()}
    try:
        wait_until(lambda: set(hub.connected()) == set(nodes), "every node to connect")
        yield hub, threads, node_dirs
    finally:
        for thread in threads.values():
            thread.stop()
        hub.stop()
