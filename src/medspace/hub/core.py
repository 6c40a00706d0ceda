"""The hub's state and its synchronous operations: users, nodes, projects, the ledger.

Every operation on behalf of a user goes through `decide()` (the hub's `PolicyEngine`),
and every decision is signed and appended to the ledger before it takes effect. The
web app (`app.py`) calls these methods from worker threads, and reads through `read`
(inline on SQLite); the channel (`channel.py`) carries tasks to nodes.
"""

from __future__ import annotations

import asyncio
import base64
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medspace.hub import tables
from medspace.hub.config import HubConfig, read_hub
from medspace.hub.db import make_hub_engine
from medspace.hub.rules import hub_engine
from medspace.hub.signers import (
    HUB_PRINCIPAL,
    HubRecorder,
    SignerDirectory,
    UserActs,
    user_digest,
)
from medspace.identity import NodeRegistry, RegisteredNode, User, UserDirectory, parse_public_key
from medspace.identity.userkeys import (
    UserKey,
    UserKeyRegistry,
    check_fresh,
    check_registration,
)
from medspace.ledger import (
    CosignatureVerifier,
    Entry,
    EntryError,
    EntrySigner,
    EntryType,
    GroupCommit,
    Log,
    LogStateError,
    NoteSigner,
    Quorum,
    SignedEntry,
    utc_timestamp,
)
from medspace.policy import (
    Context,
    Decision,
    DecisionRecorder,
    NodePolicy,
    Project,
    ProjectBook,
    ProjectError,
    ProjectState,
)

Clock = Callable[[], datetime]
T = TypeVar("T")


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


class HubCore:
    """One hub: its database, directories, project book, ledger and policy."""

    def __init__(self, directory: Path, *, clock: Clock = utc_now) -> None:
        config, keys = read_hub(directory)
        self.config: HubConfig = config
        self.clock = clock
        self.hub_key = keys.hub
        self.engine = make_hub_engine(config.db_url)
        tables.metadata.create_all(self.engine)
        self.users = UserDirectory(self.engine, keys.hub)
        self.registry = NodeRegistry(self.engine, origin=config.origin)
        self.book = ProjectBook(self.engine)
        self.signers = SignerDirectory(self.engine)
        self.signers.add(HUB_PRINCIPAL, "hub", keys.hub.public_key())
        for node in self.registry.nodes():
            self.signers.add(node.name, "node", parse_public_key(node.public_key))
        self.hub_signer = EntrySigner(keys.hub)
        self.user_keys = UserKeyRegistry(self.engine)
        self.log_signer = NoteSigner(config.origin, keys.log)
        try:
            self.log = Log(self.engine, self.signers)
        except LogStateError:
            self.log = Log.create(self.engine, config.origin, self.signers)
        self._set_meta("log_vkey", self.log_signer.verifier.vkey)
        self._set_meta("quorum", "" if config.quorum is None else str(config.quorum))
        self.policy = hub_engine()
        self.recorder = HubRecorder(self.append, self.hub_signer)
        # Appends from concurrent requests share one transaction (see GroupCommit).
        self._appender = GroupCommit(self.log.append)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-writer")
        self._reads_inline = self.engine.dialect.name == "sqlite"

    # -- plumbing -------------------------------------------------------------------------

    async def read(self, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)`, a read of the hub database, from the event loop: inline on the
        embedded SQLite (WAL: a reader never waits for the writer, and one indexed read
        costs less CPU than a hop to a worker thread and back), in a worker thread on
        PostgreSQL (a network round trip must not hold up the event loop)."""
        if self._reads_inline:
            return call(*args)
        return await asyncio.to_thread(call, *args)

    def _set_meta(self, name: str, value: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(tables.meta.delete().where(tables.meta.c.name == name))
            conn.execute(tables.meta.insert().values(name=name, value=value))

    def close(self) -> None:
        """Release database connections (after the ledger writes under way)."""
        self._writer.shutdown(wait=True)
        self.engine.dispose()

    def append(self, entries: Sequence[SignedEntry]) -> list[int]:
        """Append signed entries to the ledger (signatures are checked); their indices.
        Raises `SignatureError` for these entries, whatever others share the write."""
        return self._appender.append(entries)

    async def write(self, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)`, a write to the ledger (`append` or a function around it), from
        the event loop, in the hub's one ledger-writer thread: never on the loop itself
        (a write can wait for the database's write lock, held by another process or a
        worker thread's batch, and checks the signatures of what nodes sent), and without
        the general pool's hand-off costs. Appends that request threads make at the same
        moment share its transaction (`GroupCommit`)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, functools.partial(call, *args))

    def context(self, recorder: DecisionRecorder | None = None, **kwargs: Any) -> Context:
        """A policy context at the hub's now that records to the ledger (through the hub's
        recorder unless another is given)."""
        return Context(now=self.clock(), recorder=recorder or self.recorder, **kwargs)

    def user_acts(self, by: User, signed: Sequence[SignedEntry] = ()) -> UserActs:
        """The entries `by` signed for one request (checked against their active key);
        raises `UserKeyError` if one is not theirs, badly signed or stale."""
        return UserActs(
            by,
            signed,
            self.user_keys.active(by.name),
            now=self.clock(),
            policy=self.policy,
            context=self.context,
            append=self.append,
            hub_signer=self.hub_signer,
            spend=lambda signed: self.user_keys.spend(signed, self.clock()),
        )

    def _signed_decision(
        self, by: User, signed: Sequence[SignedEntry], action: str, resource: object, **ctx: Any
    ) -> str | None:
        """Decide `action` so that an allow is logged as the entry `by` signed; returns
        that entry's body (base64). A denial is ledgered by the hub and raised; missing
        signatures raise `SignatureRequired` with the drafts, and nothing happens."""
        acts = self.user_acts(by, signed)
        if not acts.plan(action, resource, **ctx).allow:
            self.decide(by, action, resource, **ctx)  # ledgers the denial and raises
        acts.require()
        acts.decide(action, resource, **ctx)
        if not acts.accepted:
            return None
        return base64.b64encode(acts.accepted[-1].body).decode("ascii")

    def decide(self, actor: User, action: str, resource: object, **context: Any) -> Decision:
        """Decide (and ledger) with the hub's policy; raises `PolicyDenied` when denied."""
        return self.policy.decide(actor, action, resource, self.context(**context)).require()

    # -- users and nodes -------------------------------------------------------------------

    def add_user(self, user: User, password: str, *, by: User | None = None) -> User:
        """Create a user (an admin via the API, or the operator via the CLI when `by` is
        None); the user's custodial ledger key is registered at once."""
        if by is not None:
            self.decide(by, "user.add", None)
        return self.users.add_user(user, password)

    def user_key(self, by: User) -> UserKey | None:
        """`by`'s active signing key, or None before they register one."""
        return self.user_keys.active(by.name)

    def register_user_key(
        self, by: User, public_key: Ed25519PublicKey | str, signed: SignedEntry
    ) -> str:
        """Bind `by`'s first signing key (or the first after an admin reset). `signed` is
        the registration entry signed by that key (proof of possession); it is logged.
        Raises `UserKeyExists` if the user has an active key, `UserKeyError` if the
        proof is wrong or stale."""
        key = parse_public_key(public_key) if isinstance(public_key, str) else public_key
        check_registration(signed, by.name, key)
        check_fresh(signed.entry, self.clock())
        key_id = self.user_keys.register(by.name, key, self.clock())
        self.signers.add(by.name, "user", key)
        self.append([signed])
        return key_id

    def reset_user_key(self, name: str, *, by: User | None = None) -> str | None:
        """Retire `name`'s signing key so they register a new one at their next login
        (an admin via the API, or the operator via the CLI when `by` is None). Returns
        the retired key id (None if there was none). The reset is ledgered by the hub."""
        if by is not None:
            self.decide(by, "user.reset-key", None)
        self.users.get(name)  # raises UnknownUserError
        retired = self.user_keys.reset(name, self.clock())
        if retired is not None:
            entry = Entry(
                type=EntryType.KEY_ROTATION,
                actor=HUB_PRINCIPAL,
                time=utc_timestamp(self.clock()),
                artefacts={"user": user_digest(name)},
                details={"previous_key_id": retired},
            )
            self.append([self.hub_signer.sign(entry)])
        return retired

    def list_users(self, by: User) -> list[User]:
        """Every user (admins only)."""
        self.decide(by, "user.list", None)
        return self.users.users()

    def register_node(
        self, name: str, public_key: Ed25519PublicKey | str, *, by: User | None = None
    ) -> RegisteredNode:
        """Register a node's Ed25519 key (admins only, or the operator via the CLI)."""
        if by is not None:
            self.decide(by, "node.register", None)
        registered = self.registry.register(name, public_key)
        self.signers.add(name, "node", parse_public_key(registered.public_key))
        return registered

    def list_nodes(self, by: User) -> list[RegisteredNode]:
        """Every registered node."""
        self.decide(by, "node.list", None)
        return self.registry.nodes()

    def witnesses(self) -> list[CosignatureVerifier]:
        """Every registered node's witness key (its identity key, named by the node)."""
        return [
            CosignatureVerifier(n.name, parse_public_key(n.public_key))
            for n in self.registry.nodes()
        ]

    def quorum(self) -> Quorum | None:
        """The quorum that makes a checkpoint final (None while no node is registered)."""
        witnesses = self.witnesses()
        if not witnesses:
            return None
        threshold = self.config.quorum
        if threshold is not None:
            threshold = min(threshold, len(witnesses))
        return Quorum(witnesses, threshold)

    def set_node_policy(self, policy: NodePolicy) -> None:
        """Store the standing policy a node announced on its channel."""
        with self.engine.begin() as conn:
            conn.execute(
                tables.node_policies.delete().where(tables.node_policies.c.node == policy.node)
            )
            conn.execute(
                tables.node_policies.insert().values(
                    node=policy.node, policy=policy.model_dump_json()
                )
            )

    def node_policy(self, node: str) -> NodePolicy | None:
        """The standing policy `node` last announced, if any."""
        with self.engine.connect() as conn:
            text = conn.execute(
                sa.select(tables.node_policies.c.policy).where(tables.node_policies.c.node == node)
            ).scalar_one_or_none()
        return None if text is None else NodePolicy.model_validate_json(text)

    # -- projects --------------------------------------------------------------------------

    def create_project(
        self, by: User, terms: dict[str, Any], signed: Sequence[SignedEntry] = ()
    ) -> ProjectState:
        """File a project (researchers, in their own name; the request entry is theirs)."""
        if not isinstance(terms, dict):
            raise ProjectError("project terms must be a JSON object")
        terms = {"owner": by.name, **terms}
        project = Project.parse(terms)
        self._signed_decision(by, signed, "project.create", project)
        now = self.clock()
        return self.book.file(ProjectState.request(project, now), now=now)

    def show_project(self, by: User, project_id: str) -> ProjectState:
        """A project's state, for its parties, auditors and admins."""
        state = self.book.get(project_id)
        self.decide(by, "project.show", state)
        return state

    def list_projects(self, by: User) -> list[ProjectState]:
        """The projects `by` may see (each look is a decision, so it is ledgered)."""
        seen = []
        for project_id in self.book.ids():
            state = self.book.get(project_id)
            decision = self.policy.decide(by, "project.show", state, self.context())
            if decision.allow:
                seen.append(state)
        return seen

    def approve(
        self,
        by: User,
        project_id: str,
        node: str | None,
        reason: str,
        signed: Sequence[SignedEntry] = (),
    ) -> ProjectState:
        """`node`'s steward approves (node defaults to the steward's own); the approval
        entry the steward signed is kept with the verdict, for the node to check."""
        node = node or by.node or ""
        state = self.book.get(project_id)
        entry = self._signed_decision(
            by,
            signed,
            "project.approve",
            state,
            node=node,
            node_policy=self.node_policy(node),
            reason=reason,
        )
        return self.book.update(
            project_id,
            lambda s: s.approve(by, node, reason, self.clock(), entry=entry),
            now=self.clock(),
        )

    def deny(
        self,
        by: User,
        project_id: str,
        node: str | None,
        reason: str,
        signed: Sequence[SignedEntry] = (),
    ) -> ProjectState:
        """`node`'s steward denies, with a reason (the denial entry is the steward's)."""
        node = node or by.node or ""
        state = self.book.get(project_id)
        entry = self._signed_decision(by, signed, "project.deny", state, node=node, reason=reason)
        return self.book.update(
            project_id,
            lambda s: s.deny(by, node, reason, self.clock(), entry=entry),
            now=self.clock(),
        )

    def revoke(
        self, by: User, project_id: str, reason: str, signed: Sequence[SignedEntry] = ()
    ) -> ProjectState:
        """Revoke the project (owner, admin) or withdraw a steward's node from it; the
        revocation entry is the revoker's own and travels with the project state."""
        state = self.book.get(project_id)
        entry = self._signed_decision(by, signed, "project.revoke", state, reason=reason)
        now = self.clock()
        if by.node is not None:
            node = by.node
            return self.book.update(
                project_id, lambda s: s.withdraw(by, node, reason, now, entry=entry), now=now
            )
        return self.book.update(
            project_id, lambda s: s.revoke(by, reason, now, entry=entry), now=now
        )

    # -- ledger ----------------------------------------------------------------------------

    def ledger_scope(self, by: User) -> str | None:
        """None for the whole ledger, or the node a steward may read; raises `PolicyDenied`."""
        decision = self.decide(by, "ledger.read", None)
        scope = decision.obligation("scope") or ""
        return None if scope == "all" else scope.removeprefix("node:")

    def append_node_entries(self, node: str, bodies: Sequence[bytes]) -> list[int]:
        """Append entries a node signed; each must name that node as its actor."""
        entries = []
        for body in bodies:
            signed = SignedEntry.from_bytes(body)
            if signed.entry.actor != node:
                raise EntryError("a node may only submit entries it acted in itself")
            entries.append(signed)
        return self.append(entries)
