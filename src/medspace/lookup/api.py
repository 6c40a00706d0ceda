"""The node's lookup API for the future console (`medspace lookup serve-api`).

`POST /lookup` runs the same code path as the CLI (`ask`) for a clinician of THIS node,
authenticated by their hub token, which the node checks itself with the hub key it
pinned (`hub-pin.json`); `GET /lookup/review` lists the node's break-glass events and
alerts for its stewards. Errors come back as `{"error", "message"}` with the error's
HTTP status; nothing returned holds an identifier.

The node is opened once for the API's life (closed at shutdown) and the hub's TLS
settings are shared (`tls_context`): opening the node and loading a root bundle per
request cost ~25 ms of CPU, more than the rest of a lookup's asking side. Each request
still gets its own hub client, holding only its clinician's token.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from medspace.errors import MedSpaceError
from medspace.http_errors import refuse_without_echo
from medspace.identity import AuthError, Role, User, parse_public_key, verify_token
from medspace.lookup.errors import LookupDenied, RequestRejected


class LookupBody(BaseModel):
    """What the console sends: the patient as typed, the justification, the purpose."""

    id: str | None = Field(default=None, max_length=64)
    id_system: str | None = Field(default=None, max_length=16)
    name: str | None = Field(default=None, max_length=200)
    dob: str | None = Field(default=None, max_length=10)
    sex: str | None = Field(default=None, max_length=10)
    phone: str | None = Field(default=None, max_length=32)
    reason: str = Field(max_length=2000)
    break_glass: bool = False
    deadline: float = Field(default=2.0, gt=0, le=30)


def create_api(directory: Path, hub_url: str) -> FastAPI:
    """The lookup API of the node in `directory`, asking through the hub at `hub_url`."""
    from medspace.node import open_node
    from medspace.node.standing import read_pin

    directory = Path(directory).absolute()
    pin = read_pin(directory)
    if pin is None:
        raise RequestRejected(
            "this node has not pinned its hub's keys yet: run `medspace node serve` once"
        )
    hub_key = parse_public_key(pin.hub_key)
    node = open_node(directory)
    node_name = node.name

    @asynccontextmanager
    async def lifespan(_api: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            node.close()

    api = FastAPI(
        title=f"MedSpace node {node_name}: emergency lookup", version="1", lifespan=lifespan
    )
    bearer = HTTPBearer(auto_error=False)
    refuse_without_echo(api)

    @api.exception_handler(MedSpaceError)
    async def _error(request: Request, error: MedSpaceError) -> JSONResponse:
        return JSONResponse(
            {"error": type(error).__name__, "message": str(error)}, status_code=error.http_status
        )

    def caller(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> tuple[User, str]:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise AuthError("this route needs your hub token (Authorization: Bearer ...)")
        return verify_token(hub_key, credentials.credentials).user, credentials.credentials

    Caller = Annotated[tuple[User, str], Depends(caller)]

    @api.post("/lookup", tags=["lookup"])
    async def lookup(who: Caller, body: LookupBody) -> dict[str, Any]:
        """Look a patient up at every hospital; the merged, opened answers."""
        user, token = who
        if user.role is not Role.CLINICIAN or user.node != node_name:
            raise LookupDenied(f"only clinicians of node {node_name} may look up from here")
        return await asyncio.to_thread(_ask, node, hub_url, user, token, body)

    @api.get("/lookup/review", tags=["lookup"])
    def review(who: Caller) -> dict[str, Any]:
        """Break-glass events and alerts of this node (its stewards)."""
        user, _token = who
        if user.role is not Role.STEWARD or user.node != node_name:
            raise LookupDenied(f"only stewards of node {node_name} may read its lookup review")
        from medspace.lookup.review import LookupLog

        log = LookupLog(directory)
        try:
            return {
                "events": [_event(e) for e in log.events(break_glass_only=True)],
                "alerts": [
                    {"time": a.time, "kind": a.kind, "request": a.request, "count": a.count}
                    for a in log.alerts()
                ],
            }
        finally:
            log.close()

    return api


def _event(e: Any) -> dict[str, Any]:
    return {
        "request": e.request,
        "time": e.time,
        "role": e.role,
        "clinician": e.clinician,
        "requester": e.requester,
        "purpose": e.purpose,
        "status": e.status,
        "matches": e.matches,
        "justification": e.justification,
        "verdict": e.verdict,
    }


def _ask(node: Any, hub_url: str, user: User, token: str, body: LookupBody) -> dict[str, Any]:
    """One lookup for `user` through the opened `node` (its identity, agreement and
    linkage keys are read from the directory as they are now; nothing else of the node
    is shared between requests)."""
    from medspace.hub.client import HubClient
    from medspace.lookup.ask import PatientInput, ask
    from medspace.lookup.timeline import merged

    patient = PatientInput.parse(
        national_id=body.id,
        id_system=body.id_system,
        name=body.name,
        birth_date=body.dob,
        sex=body.sex,
        phone=body.phone,
    )
    with HubClient(hub_url, token) as client:
        outcome = ask(
            node,
            client,
            clinician=user.name,
            patient=patient,
            reason=body.reason,
            break_glass=body.break_glass,
            deadline=body.deadline,
        )
    return merged(outcome)
