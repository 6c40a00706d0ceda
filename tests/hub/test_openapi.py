"""Schemathesis over the hub's OpenAPI: no 5xx from generated requests, and no route
answers anything but 401 without a token (login is the one route for the anonymous)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from tests.hub.support import PASSWORD, make_hub, make_node

from medspace.hub import create_app

EXAMPLES = 8
_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("openapi")
    node = make_node(root / "h1", "h1", 3, 1)
    make_hub(root / "hub", {"h1": node})
    app = create_app(root / "hub")
    core = app.state.core
    tokens = {name: core.users.login(name, PASSWORD) for name in ("admin", "alice", "bob")}
    yield schemathesis.openapi.from_asgi("/openapi.json", app), tokens
    core.close()


def _operations(schema):  # type: ignore[no-untyped-def]
    return [result.ok() for result in schema.get_all_operations()]


def test_no_route_is_reachable_without_a_token(api) -> None:  # type: ignore[no-untyped-def]
    schema, _tokens = api
    operations = _operations(schema)
    assert len(operations) >= 15
    for operation in operations:

        @_SETTINGS
        @given(operation.as_strategy())
        def check(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call()
            if case.operation.path == "/auth/login":
                assert response.status_code in (401, 422), response.text
            else:
                assert response.status_code == 401, case.operation.label

        check()


@pytest.mark.parametrize("user", ["admin", "alice", "bob"])
def test_generated_requests_never_cause_a_server_error(api, user: str) -> None:  # type: ignore[no-untyped-def]
    schema, tokens = api
    headers = {"Authorization": f"Bearer {tokens[user]}"}
    for operation in _operations(schema):

        @_SETTINGS
        @given(operation.as_strategy())
        def check(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(headers=headers)
            assert response.status_code < 500, case.operation.label

        check()


@pytest.mark.parametrize(
    "path",
    [
        "/ledger/proof/consistency?old=0&new=999999",  # beyond the log
        "/ledger/proof/consistency?old=5&new=2",  # old after new
        "/ledger/proof/inclusion?index=3&size=999999",  # beyond the log
        "/ledger/prove/999999",  # no such entry
    ],
)
def test_impossible_proof_requests_are_client_errors(api, path: str) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    import httpx

    schema, tokens = api

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=schema.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            return await client.get(path, headers={"Authorization": f"Bearer {tokens['bob']}"})

    response = asyncio.run(call())
    assert 400 <= response.status_code < 500, response.text
