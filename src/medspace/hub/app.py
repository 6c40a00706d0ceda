"""The hub's HTTP API (FastAPI; OpenAPI at /docs) and the node channel at /channel.

Every route but `POST /auth/login` needs a bearer token from a login; every route checks
the caller's role through `decide()` (each decision is ledgered). Errors come back as
`{"error": <type>, "message": <what to do>}` with the error's HTTP status; messages never
carry patient data.
"""

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request, WebSocket
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from medspace.errors import MedSpaceError
from medspace.http_errors import refuse_without_echo
from medspace.hub.channel import ChannelHub
from medspace.hub.checkpoints import Checkpointer
from medspace.hub.core import HubCore
from medspace.hub.errors import ProofRequestError
from medspace.hub.signers import parse_signed_entries
from medspace.hub.tasks import push_project_state, run_count
from medspace.identity import AuthError, Role, User, public_key_text
from medspace.identity.errors import SignatureRequired, UserKeyError
from medspace.ledger import EntryNotFound, SignedEntry, prove
from medspace.policy import ProjectState

ProjectIdParam = Annotated[str, PathParam(pattern=r"^[a-z0-9][a-z0-9-]{2,63}$")]
MAX_INDEX = 2**53 - 1


class Login(BaseModel):
    """Credentials for `POST /auth/login`."""

    name: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class NewUser(BaseModel):
    """A user an admin creates."""

    name: str = Field(min_length=1, max_length=128)
    role: Role
    node: str | None = Field(default=None, max_length=63)
    password: str = Field(min_length=1, max_length=1024)


class NewNode(BaseModel):
    """A node an admin registers with its Ed25519 public key (base64)."""

    name: str = Field(min_length=1, max_length=63)
    public_key: str = Field(min_length=1, max_length=200)


class KeyRegistration(BaseModel):
    """A user's new signing key (base64 Ed25519) and its proof of possession: the
    `key_rotation` entry naming it, signed by it (base64 signed-entry body)."""

    public_key: str = Field(min_length=1, max_length=200)
    entry: str = Field(min_length=1, max_length=4000)


SIGNED_ENTRIES_HEADER = "X-MedSpace-Signed-Entries"


class Reason(BaseModel):
    """A steward's or owner's stated reason; `node` defaults to the steward's own."""

    reason: str = Field(min_length=1, max_length=2000)
    node: str | None = Field(default=None, max_length=63)


def _state_json(state: ProjectState, core: HubCore) -> dict[str, Any]:
    data = state.model_dump(mode="json")
    data["status"] = state.status(core.clock()).value
    return data


def create_app(directory: Path, *, checkpoint_interval: float = 0.5) -> FastAPI:
    """The hub app for the hub in `directory` (opened at startup)."""
    core = HubCore(directory)
    channel = ChannelHub(core)
    checkpointer = Checkpointer(core, channel, checkpoint_interval)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop_task = asyncio.create_task(checkpointer.run())
        try:
            yield
        finally:
            loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop_task
            core.close()

    app = FastAPI(
        title="MedSpace hub",
        description="Projects, approvals, tasks and the tamper-evident ledger.",
        version="1",
        lifespan=lifespan,
    )
    app.state.core = core
    app.state.channel = channel
    app.state.checkpointer = checkpointer
    bearer = HTTPBearer(auto_error=False)
    refuse_without_echo(app)

    @app.exception_handler(MedSpaceError)
    async def _medspace_error(request: Request, error: MedSpaceError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, AuthError) else None
        return JSONResponse(
            {"error": type(error).__name__, "message": str(error)},
            status_code=error.http_status,
            headers=headers,
        )

    async def token_of(  # async: no I/O, so no worker-thread hop per request
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise AuthError("this route needs a bearer token; run `medspace login` first")
        return credentials.credentials

    Token = Annotated[str, Depends(token_of)]

    async def current_user(token: Token) -> User:  # one indexed read per request
        return await core.read(core.users.resolve, token)

    CurrentUser = Annotated[User, Depends(current_user)]

    @app.exception_handler(SignatureRequired)
    async def _signature_required(request: Request, error: SignatureRequired) -> JSONResponse:
        return JSONResponse(
            {"error": type(error).__name__, "message": str(error), "drafts": error.drafts},
            status_code=error.http_status,
        )

    async def signed_entries(  # async: parsing only, no I/O
        signed: Annotated[
            str | None,
            Header(
                alias=SIGNED_ENTRIES_HEADER,
                max_length=1_000_000,
                description="Entries you signed for this action (base64 bodies, comma "
                "separated); without them the hub answers 428 with the drafts to sign.",
            ),
        ] = None,
    ) -> list[SignedEntry]:
        return parse_signed_entries(signed)

    Signed = Annotated[list[SignedEntry], Depends(signed_entries)]

    @app.post("/auth/login", tags=["auth"])
    def login(body: Login) -> dict[str, str]:
        """Exchange a name and password for an expiring bearer token."""
        return {"token": core.users.login(body.name, body.password), "token_type": "bearer"}

    @app.post("/auth/logout", tags=["auth"])
    def logout(user: CurrentUser, token: Token) -> dict[str, str]:
        """Revoke this token's session."""
        core.users.logout(token)
        return {"status": "logged out"}

    @app.get("/me", tags=["auth"])
    def me(user: CurrentUser) -> dict[str, Any]:
        """Who the token belongs to."""
        return {"name": user.name, "role": user.role.value, "node": user.node}

    @app.get("/auth/key", tags=["auth"])
    def my_key(user: CurrentUser) -> dict[str, Any]:
        """Your registered signing key (null before your first `medspace login`)."""
        key = core.user_key(user)
        if key is None:
            return {"user": user.name, "key_id": None, "public_key": None}
        return {
            "user": user.name,
            "key_id": key.key_id,
            "public_key": public_key_text(key.public_key),
        }

    @app.post("/auth/key", tags=["auth"], status_code=201)
    def register_key(user: CurrentUser, body: KeyRegistration) -> dict[str, Any]:
        """Register your signing key (once; replacing it needs an admin's reset)."""
        signed = parse_signed_entries(body.entry)
        if len(signed) != 1:
            raise UserKeyError("send exactly one registration entry")
        key_id = core.register_user_key(user, body.public_key, signed[0])
        return {"user": user.name, "key_id": key_id}

    @app.delete("/users/{name}/key", tags=["admin"])
    def reset_key(
        user: CurrentUser,
        name: Annotated[str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")],
    ) -> dict[str, Any]:
        """Retire a user's signing key so they register a new one at next login (admins)."""
        return {"user": name, "retired_key_id": core.reset_user_key(name, by=user)}

    @app.get("/users", tags=["admin"])
    def users(user: CurrentUser) -> list[dict[str, Any]]:
        """Every user (admins)."""
        return [
            {"name": u.name, "role": u.role.value, "node": u.node} for u in core.list_users(user)
        ]

    @app.post("/users", tags=["admin"], status_code=201)
    def add_user(user: CurrentUser, body: NewUser) -> dict[str, Any]:
        """Create a user (admins)."""
        added = core.add_user(User(body.name, body.role, body.node), body.password, by=user)
        return {"name": added.name, "role": added.role.value, "node": added.node}

    @app.get("/nodes", tags=["nodes"])
    def nodes(user: CurrentUser) -> list[dict[str, Any]]:
        """Registered nodes and whether each is connected now."""
        online = set(channel.connected())
        return [
            {"name": n.name, "fingerprint": n.fingerprint, "connected": n.name in online}
            for n in core.list_nodes(user)
        ]

    @app.post("/nodes", tags=["nodes"], status_code=201)
    def add_node(user: CurrentUser, body: NewNode) -> dict[str, Any]:
        """Register a node's public key (admins)."""
        node = core.register_node(body.name, body.public_key, by=user)
        return {"name": node.name, "fingerprint": node.fingerprint}

    @app.post("/projects", tags=["projects"], status_code=201)
    def create_project(user: CurrentUser, signed: Signed, body: dict[str, Any]) -> dict[str, Any]:
        """File a project (researchers; the request entry is signed by you)."""
        return _state_json(core.create_project(user, body, signed), core)

    @app.get("/projects", tags=["projects"])
    def list_projects(user: CurrentUser) -> list[dict[str, Any]]:
        """The projects the caller may see."""
        return [_state_json(s, core) for s in core.list_projects(user)]

    @app.get("/projects/{project_id}", tags=["projects"])
    def show_project(user: CurrentUser, project_id: ProjectIdParam) -> dict[str, Any]:
        """One project with every node's verdict."""
        return _state_json(core.show_project(user, project_id), core)

    @app.post("/projects/{project_id}/approve", tags=["projects"])
    def approve(
        user: CurrentUser, signed: Signed, project_id: ProjectIdParam, body: Reason
    ) -> dict[str, Any]:
        """A steward approves for their node, signing the contract hash (ledgered)."""
        return _state_json(core.approve(user, project_id, body.node, body.reason, signed), core)

    @app.post("/projects/{project_id}/deny", tags=["projects"])
    def deny(
        user: CurrentUser, signed: Signed, project_id: ProjectIdParam, body: Reason
    ) -> dict[str, Any]:
        """A steward denies for their node, with a reason (signed by the steward)."""
        return _state_json(core.deny(user, project_id, body.node, body.reason, signed), core)

    @app.post("/projects/{project_id}/revoke", tags=["projects"])
    async def revoke(
        user: CurrentUser, signed: Signed, project_id: ProjectIdParam, body: Reason
    ) -> dict[str, Any]:
        """The owner or an admin revokes; a steward withdraws their node (signed). The
        connected nodes are told at once."""
        state = await asyncio.to_thread(core.revoke, user, project_id, body.reason, signed)
        await push_project_state(core, channel, state)
        return _state_json(state, core)

    @app.post("/projects/{project_id}/count", tags=["tasks"])
    async def count(
        user: CurrentUser, token: Token, signed: Signed, project_id: ProjectIdParam
    ) -> dict[str, Any]:
        """Count the project's cohort on every approving node (min cell size applied);
        the task entries are signed by you."""
        return await run_count(core, channel, user, token, project_id, signed)

    # -- federated analytics (medspace.hub.analytics) ---------------------------------

    @app.post("/projects/{project_id}/query", tags=["tasks"])
    async def query(
        user: CurrentUser,
        token: Token,
        project_id: ProjectIdParam,
        body: dict[str, Any],
        signed: Signed,
        epsilon: Annotated[Decimal | None, Query(gt=0, le=100, decimal_places=6)] = None,
    ) -> dict[str, Any]:
        """Run a federated query (a query spec, see docs/analytics.md) on every approving
        node with secure aggregation; the hub sees only the sum. Returns the combined,
        disclosure-controlled result, each node's status and the ledger entry ids; the
        status is `partial` when some nodes did not answer and `refused` when fewer than
        the project's quorum did. `epsilon` is what a DP project's query spends of its
        budget (default: a tenth of the total)."""
        from medspace.hub.analytics import run_query

        return await run_query(core, channel, user, token, project_id, body, epsilon, signed)

    from medspace.hub.analytics_sessions import SessionBook

    sessions = SessionBook(core, channel)
    SessionIdParam = Annotated[str, PathParam(pattern=r"^[0-9a-f-]{36}$")]

    @app.post("/projects/{project_id}/sessions", tags=["tasks"])
    async def open_session(
        user: CurrentUser,
        token: Token,
        project_id: ProjectIdParam,
        body: dict[str, Any],
        signed: Signed,
    ) -> dict[str, Any]:
        """Open an analysis session (docs/analytics.md): a query spec whose statistics are
        answered now and whose cohort the nodes keep, so that further statistics of the
        same kinds over the same variables are answered from memory. Signed like a query;
        the answer is a query's, with `session.id`."""
        return await sessions.open(user, token, project_id, body, signed)

    @app.post("/projects/{project_id}/sessions/{session_id}/statistics", tags=["tasks"])
    async def ask_session(
        user: CurrentUser,
        token: Token,
        project_id: ProjectIdParam,
        session_id: SessionIdParam,
        body: dict[str, Any],
    ) -> dict[str, Any]:
        """Further statistics in your open session: `{"statistics": [...]}` as in a query
        spec, over the session's variables. The answer is a query's."""
        session = sessions.session(user, project_id, session_id)
        return await session.ask(user, token, body.get("statistics"))

    @app.delete("/projects/{project_id}/sessions/{session_id}", tags=["tasks"])
    async def close_session(
        user: CurrentUser, project_id: ProjectIdParam, session_id: SessionIdParam
    ) -> dict[str, Any]:
        """Close your analysis session; the nodes drop its cohort."""
        await sessions.close(user, project_id, session_id)
        return {"closed": session_id}

    # -- emergency lookup (medspace.hub.lookup) ---------------------------------------

    from medspace.hub.lookup import LookupHub

    lookups = LookupHub(core, channel)

    @app.post("/lookup", tags=["lookup"])
    async def lookup(user: CurrentUser, token: Token, body: dict[str, Any]) -> StreamingResponse:
        """A clinician's emergency lookup (a request signed by their node): fanned out to
        every connected node; sealed answers stream back as NDJSON lines as they arrive,
        then a line naming the nodes that did not answer by the deadline (partial)."""
        run = await asyncio.to_thread(lookups.accept, user, token, body)
        return StreamingResponse(lookups.stream(run), media_type="application/x-ndjson")

    @app.post("/lookup/entries", tags=["lookup"], status_code=201)
    def lookup_entries(user: CurrentUser, body: dict[str, Any]) -> dict[str, Any]:
        """Ledger entries a node signed about lookups (a view, a review, an alert),
        submitted by a clinician or steward of that node."""
        return {"appended": lookups.record(user, body)}

    @app.get("/ledger/entries", tags=["ledger"])
    def entries(
        user: CurrentUser,
        start: Annotated[int, Query(ge=0, le=MAX_INDEX)] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        project: Annotated[str | None, Query(max_length=64)] = None,
    ) -> dict[str, Any]:
        """Signed entries (base64 leaf data) in log order; stewards see their node's."""
        scope = core.ledger_scope(user)
        rows = core.log.entries(project=project, node=scope, start=start, limit=limit)
        return {
            "size": core.log.size(),
            "entries": [
                {"index": r.index, "body": base64.b64encode(r.signed.body).decode()} for r in rows
            ],
        }

    @app.get("/ledger/checkpoints", tags=["ledger"])
    def checkpoints(
        user: CurrentUser,
        after: Annotated[int, Query(ge=0, le=MAX_INDEX)] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> dict[str, Any]:
        """Signed checkpoints with their cosignatures, by size."""
        core.ledger_scope(user)
        sizes = [s for s in core.log.checkpoint_sizes() if s > after][:limit]
        return {"checkpoints": [core.log.checkpoint_at(s).to_text() for s in sizes]}

    @app.get("/ledger/keys", tags=["ledger"])
    def keys(user: CurrentUser) -> dict[str, Any]:
        """The log key, the witnesses and quorum, and every entry-signing key."""
        core.ledger_scope(user)
        quorum = core.quorum()
        return {
            "origin": core.config.origin,
            "log_key": core.log_signer.verifier.vkey,
            "witnesses": [w.vkey for w in core.witnesses()],
            "threshold": None if quorum is None else quorum.threshold,
            "signers": core.signers.all(),
        }

    @app.get("/ledger/proof/consistency", tags=["ledger"])
    def consistency(
        user: CurrentUser,
        old: Annotated[int, Query(ge=0, le=MAX_INDEX)],
        new: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    ) -> dict[str, Any]:
        """RFC 9162 consistency proof between two tree sizes."""
        core.ledger_scope(user)
        if not old <= new <= core.log.size():
            raise ProofRequestError(
                f"ask for 0 <= old <= new <= {core.log.size()} (the log's current size)"
            )
        proof = core.log.consistency_proof(old, new)
        return {"old": old, "new": new, "proof": [base64.b64encode(p).decode() for p in proof]}

    @app.get("/ledger/proof/inclusion", tags=["ledger"])
    def inclusion(
        user: CurrentUser,
        index: Annotated[int, Query(ge=0, le=MAX_INDEX)],
        size: Annotated[int, Query(ge=1, le=MAX_INDEX)],
    ) -> dict[str, Any]:
        """RFC 9162 inclusion proof of entry `index` in the tree of `size` entries."""
        core.ledger_scope(user)
        if not index < size <= core.log.size():
            raise ProofRequestError(
                f"ask for index < size <= {core.log.size()} (the log's current size)"
            )
        proof = core.log.inclusion_proof(index, size)
        return {
            "index": index,
            "size": size,
            "proof": [base64.b64encode(p).decode() for p in proof],
        }

    @app.get("/ledger/prove/{index}", tags=["ledger"])
    def prove_entry(
        user: CurrentUser, index: Annotated[int, PathParam(ge=0, le=MAX_INDEX)]
    ) -> dict[str, Any]:
        """An entry with its inclusion proof under the newest final checkpoint covering it."""
        core.ledger_scope(user)
        quorum = core.quorum()
        if quorum is None:
            raise EntryNotFound("no witness is registered yet, so no checkpoint can be final")
        return prove(core.log, index, quorum).to_json()

    @app.websocket("/channel")
    async def node_channel(websocket: WebSocket) -> None:
        """The node channel (nodes dial out to it; see `medspace.hub.protocol`)."""
        await channel.serve(websocket)

    return app
