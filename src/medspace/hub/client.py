"""A small HTTP client for the hub API (used by the CLI, the demo and the tests), and the
stored login session (`$MEDSPACE_HOME/session.json`, default `~/.medspace`, mode 0600)."""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from medspace.hub.errors import HubError, HubUnreachable
from medspace.identity.keys import write_secret_file


class HubRequestError(HubError):
    """The hub refused a request; carries the hub's message and HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.http_status = status
        self.exit_code = {401: 6, 403: 7, 404: 3, 409: 8}.get(status, 2 if status < 500 else 1)


@dataclass(frozen=True, slots=True)
class Session:
    """A stored login: which hub, the bearer token and the CA to trust (for https)."""

    hub_url: str
    token: str
    ca_file: str | None = None


def home() -> Path:
    """Where the CLI keeps its session: $MEDSPACE_HOME or ~/.medspace."""
    return Path(os.environ.get("MEDSPACE_HOME") or Path.home() / ".medspace")


def save_session(session: Session) -> Path:
    """Store the session (replacing an older one) with mode 0600."""
    directory = home()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / "session.json"
    path.unlink(missing_ok=True)
    data = {"hub_url": session.hub_url, "token": session.token, "ca_file": session.ca_file}
    write_secret_file(path, json.dumps(data).encode())
    return path


def load_session() -> Session:
    """The stored session; raises `HubError` saying to log in when there is none."""
    path = home() / "session.json"
    try:
        data = json.loads(path.read_text())
        return Session(str(data["hub_url"]), str(data["token"]), data.get("ca_file"))
    except (OSError, ValueError, KeyError, TypeError):
        raise HubError("not logged in; run `medspace login --hub URL --user NAME` first") from None


class HubClient:
    """Calls the hub API; raises `HubRequestError` with the hub's message on refusal and
    `HubUnreachable` when the hub does not answer."""

    def __init__(
        self,
        hub_url: str,
        token: str | None = None,
        *,
        ca_file: str | Path | None = None,
        timeout: float = 120.0,
    ) -> None:
        verify: Any = ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = hub_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, headers=headers, verify=verify, timeout=timeout
        )

    @classmethod
    def from_session(cls) -> HubClient:
        """A client for the stored login session."""
        session = load_session()
        return cls(session.hub_url, session.token, ca_file=session.ca_file)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call; the decoded JSON answer."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise HubUnreachable(
                f"the hub at {self.url} did not answer ({type(error).__name__}); check that it "
                "runs and the URL is right, then retry"
            ) from None
        if response.status_code >= 400:
            try:
                message = str(response.json().get("message") or response.json().get("detail"))
            except (ValueError, AttributeError):
                message = response.text[:300]
            raise HubRequestError(message, response.status_code)
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        """GET with query parameters."""
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        """POST a JSON body."""
        return self.request("POST", path, json=body if body is not None else {})

    def stream_lines(self, path: str, body: Any) -> Iterator[dict[str, Any]]:
        """POST a JSON body and yield the NDJSON answer line by line as it arrives (the
        emergency lookup streams answers this way)."""
        try:
            with self._http.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    try:
                        message = str(response.json().get("message"))
                    except (ValueError, AttributeError):
                        message = response.text[:300]
                    raise HubRequestError(message, response.status_code)
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.TransportError as error:
            raise HubUnreachable(
                f"the hub at {self.url} did not answer ({type(error).__name__}); check that it "
                "runs and the URL is right, then retry"
            ) from None

    def login(self, name: str, password: str) -> str:
        """Log in; returns the bearer token (and uses it for later calls)."""
        token = str(self.post("/auth/login", {"name": name, "password": password})["token"])
        self._http.headers["Authorization"] = f"Bearer {token}"
        return token
