"""A request that does not validate is refused naming the field, never echoing its value
(a mistyped date of birth, a name or a password would otherwise come back in the 422)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field
from tests.hub.support import make_hub, make_node

from medspace.http_errors import refuse_without_echo
from medspace.hub import create_app

SECRET = "Zhang San 1964-02-29"


class _Patient(BaseModel):
    dob: str = Field(max_length=10)


def test_a_field_that_does_not_validate_is_named_not_echoed() -> None:
    app = FastAPI()
    refuse_without_echo(app)

    @app.post("/lookup")
    def lookup(body: _Patient) -> dict[str, str]:
        return {"ok": body.dob}

    response = TestClient(app).post("/lookup", json={"dob": SECRET})
    assert response.status_code == 422
    assert SECRET not in response.text and "Zhang" not in response.text
    assert "fix dob" in response.json()["message"]
    assert response.json()["detail"][0]["type"] == "string_too_long"


def test_the_hub_does_not_echo_a_password_that_fails_validation(tmp_path: Path) -> None:
    make_hub(tmp_path / "hub", {"h1": make_node(tmp_path / "h1", "h1", 2, 1)})
    app = create_app(tmp_path / "hub")
    try:
        response = TestClient(app).post("/auth/login", json={"name": "alice", "password": [SECRET]})
        assert response.status_code == 422
        assert SECRET not in response.text
        assert "password" in response.json()["message"]
    finally:
        app.state.core.close()
