"""A small HTTP client for the hub API (used by the CLI, the demo and the tests), and the
stored login session (`$MEDSPACE_HOME/session.json`, default `~/.medspace`, mode 0600).

The client holds the user's own signing key (`medspace.identity.userkeys`). When the hub
answers 428 with entry drafts (see `medspace.hub.signers`), the client checks each one
(`check_draft`: its own name, a fresh time, the project it asked about and, for an
approval, the contract hash it computes itself from the terms) and repeats the request
with the drafts signed. A draft that fails a check is never signed.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medspace.hub.errors import HubError, HubUnreachable
from medspace.identity.errors import UserKeyError
from medspace.identity.keys import public_key_text, write_secret_file
from medspace.identity.userkeys import (
    MAX_SKEW,
    check_fresh,
    load_or_create_user_key,
    registration_entry,
    user_key_path,
)
from medspace.ledger import Entry, EntrySigner, EntryType

SIGNED_ENTRIES_HEADER = "X-MedSpace-Signed-Entries"
_SIGNABLE = {
    EntryType.REQUEST,
    EntryType.APPROVAL,
    EntryType.DENIAL,
    EntryType.REVOCATION,
    EntryType.TASK,
}


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
    user: str | None = None


def home() -> Path:
    """Where the CLI keeps its session: $MEDSPACE_HOME or ~/.medspace."""
    return Path(os.environ.get("MEDSPACE_HOME") or Path.home() / ".medspace")


def save_session(session: Session) -> Path:
    """Store the session (replacing an older one) with mode 0600."""
    directory = home()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / "session.json"
    path.unlink(missing_ok=True)
    data = {
        "hub_url": session.hub_url,
        "token": session.token,
        "ca_file": session.ca_file,
        "user": session.user,
    }
    write_secret_file(path, json.dumps(data).encode())
    return path


def load_session() -> Session:
    """The stored session; raises `HubError` saying to log in when there is none."""
    path = home() / "session.json"
    try:
        data = json.loads(path.read_text())
        user = data.get("user")
        return Session(
            str(data["hub_url"]),
            str(data["token"]),
            data.get("ca_file"),
            None if user is None else str(user),
        )
    except (OSError, ValueError, KeyError, TypeError):
        raise HubError("not logged in; run `medspace login --hub URL --user NAME` first") from None


def tls_context(ca_file: str | Path | None = None) -> ssl.SSLContext:
    """The TLS settings for the hub: trusting `ca_file` (a hub's own CA), or else the
    roots httpx trusts (certifi's bundle, or `SSL_CERT_FILE` / `SSL_CERT_DIR`). Built
    once per version of the CA file and shared: loading a root bundle costs ~20 ms of
    CPU, more than a whole lookup's asking side, and a console serving many clinicians
    makes a client per request. A CA file that changed in any way `stat` shows (a new
    inode, size, modification or change time) is loaded again; so is `SSL_CERT_FILE`."""
    if ca_file is None or not str(ca_file):
        cert_file, cert_dir = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
        return _default_context(cert_file, cert_dir, _version(cert_file))
    path = Path(ca_file).absolute()
    version = _version(str(path))
    if version is None:
        return ssl.create_default_context(cafile=str(path))  # says what is missing
    return _ca_context(str(path), version)


_Version = tuple[int, int, int, int, int]


def _version(path: str | None) -> _Version | None:
    """What identifies one version of a file: device, inode, size, mtime and ctime (a
    copy that keeps the modification time still gets a new change time)."""
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@functools.lru_cache(maxsize=4)
def _default_context(
    cert_file: str | None, cert_dir: str | None, version: _Version | None
) -> ssl.SSLContext:
    return httpx.create_ssl_context()


@functools.lru_cache(maxsize=16)
def _ca_context(path: str, version: _Version) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=path)


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
        user: str | None = None,
        signing_key: Ed25519PrivateKey | None = None,
    ) -> None:
        verify = tls_context(ca_file)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = hub_url.rstrip("/")
        self.user = user
        self._signer = None if signing_key is None else EntrySigner(signing_key)
        self._key = signing_key
        self._http = httpx.Client(
            base_url=self.url, headers=headers, verify=verify, timeout=timeout
        )

    @classmethod
    def from_session(cls) -> HubClient:
        """A client for the stored login session, with the user's signing key when this
        machine holds it."""
        session = load_session()
        key = None
        if session.user is not None:
            path = user_key_path(home(), session.hub_url, session.user)
            if path.exists():
                key = load_or_create_user_key(home(), session.hub_url, session.user)[0]
        return cls(
            session.hub_url,
            session.token,
            ca_file=session.ca_file,
            user=session.user,
            signing_key=key,
        )

    def use_key(self, user: str, key: Ed25519PrivateKey) -> None:
        """Sign entries as `user` with `key` from now on."""
        self.user = user
        self._key = key
        self._signer = EntrySigner(key)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call; the decoded JSON answer. When the hub asks for signed entries
        (HTTP 428), they are checked, signed with the user's key and the call repeated."""
        response = self._send(method, path, **kwargs)
        if response.status_code == 428:
            drafts = _drafts(response)
            if drafts is not None:
                signed = self.sign_drafts(drafts, method, path, kwargs.get("json"))
                headers = {**kwargs.pop("headers", {}), SIGNED_ENTRIES_HEADER: signed}
                response = self._send(method, path, headers=headers, **kwargs)
        return self._answer(response)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise HubUnreachable(
                f"the hub at {self.url} did not answer ({type(error).__name__}); check that it "
                "runs and the URL is right, then retry"
            ) from None

    def _answer(self, response: httpx.Response) -> Any:
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

    def run_query(
        self, project_id: str, spec: dict[str, Any], *, epsilon: str | None = None
    ) -> dict[str, Any]:
        """Run a federated query spec on `project_id` (spending `epsilon` of a DP project's
        budget, default a tenth); the hub's answer: status completed, partial or refused,
        per-node rows, the combined result, DP parameters and ledger entry ids."""
        params = {"epsilon": epsilon} if epsilon is not None else None
        path = f"/projects/{project_id}/query"
        answer: dict[str, Any] = self.request("POST", path, json=spec, params=params)
        return answer

    def open_session(self, project_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Open an analysis session on `project_id` with a query spec (signed like a
        query): the answer to its statistics, with `session.id` for `ask_session`."""
        answer: dict[str, Any] = self.request("POST", f"/projects/{project_id}/sessions", json=spec)
        return answer

    def ask_session(
        self, project_id: str, session_id: str, statistics: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Further statistics in an open session (kinds its opening asked for, over its
        variables); the answer has a query's shape."""
        path = f"/projects/{project_id}/sessions/{session_id}/statistics"
        answer: dict[str, Any] = self.request("POST", path, json={"statistics": statistics})
        return answer

    def close_session(self, project_id: str, session_id: str) -> None:
        """Close an analysis session (the nodes drop its cohort)."""
        self.request("DELETE", f"/projects/{project_id}/sessions/{session_id}")

    def sign_drafts(self, drafts: list[Any], method: str, path: str, body: Any = None) -> str:
        """Check and sign the hub's entry drafts for the request `method path (body)`;
        returns the header value (base64 signed bodies, comma separated). Raises
        `UserKeyError` when there is no key or a draft is not what was asked for."""
        if self._signer is None or self.user is None:
            raise UserKeyError(
                "this action must be signed with your key and this client holds none; run "
                "`medspace login` on the machine that holds your key (it creates one on "
                "first login)"
            )
        project = _project_of(method, path, body)
        terms: dict[str, Any] | None = None
        signed = []
        for draft in drafts:
            entry = Entry.from_json(draft)
            if entry.type is EntryType.APPROVAL and terms is None and project is not None:
                terms = self.get(f"/projects/{project}")["project"]
            check_draft(entry, self.user, project, terms, datetime.now(UTC))
            signed.append(base64.b64encode(self._signer.sign(entry).body).decode("ascii"))
        return ",".join(signed)

    def ensure_user_key(self, user: str, key_home: Path | None = None) -> str:
        """Make sure `user` (logged in on this client) has a signing key here and at the
        hub: creates it under `key_home` (default: `home()`) on first login and registers
        it. Returns what happened: "created", "registered" or "unchanged". Raises
        `UserKeyError` when the hub holds another key for the user."""
        key, created = load_or_create_user_key(key_home or home(), self.url, user)
        self.use_key(user, key)
        mine = public_key_text(key)
        registered = self.get("/auth/key").get("public_key")
        if registered == mine:
            return "unchanged"
        if registered is not None:
            raise UserKeyError(
                f"the hub holds another signing key for {user} than the one on this machine "
                f"({user_key_path(key_home or home(), self.url, user)}); log in from the "
                "machine that holds your key, or ask an admin to reset it "
                "(`medspace hub reset-user-key`)"
            )
        entry = EntrySigner(key).sign(registration_entry(user, key.public_key(), datetime.now(UTC)))
        self.post(
            "/auth/key",
            {"public_key": mine, "entry": base64.b64encode(entry.body).decode("ascii")},
        )
        return "created" if created else "registered"

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
                        try:
                            yield json.loads(line)
                        except (ValueError, RecursionError):  # the reader decides
                            yield {"type": "unreadable"}
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


def _drafts(response: httpx.Response) -> list[Any] | None:
    try:
        drafts = response.json().get("drafts")
    except (ValueError, AttributeError):
        return None
    return drafts if isinstance(drafts, list) and drafts else None


def _project_of(method: str, path: str, body: Any) -> str | None:
    """The project a request is about: /projects/{id}/..., or the id of filed terms."""
    parts = [unquote(p) for p in path.split("?")[0].strip("/").split("/")]
    if parts[:1] == ["projects"] and len(parts) >= 2:
        return parts[1]
    if parts == ["projects"] and method.upper() == "POST" and isinstance(body, dict):
        project = body.get("id")
        return project if isinstance(project, str) else None
    return None


def check_draft(
    entry: Entry,
    user: str,
    project: str | None,
    terms: dict[str, Any] | None,
    now: datetime,
) -> None:
    """Refuse (raise `UserKeyError`) to sign a draft that is not the act asked for: it
    must be one of the user-signed kinds, name `user` as actor, be fresh, concern
    `project` and, for an approval, carry the contract hash of `terms` for its node as
    computed here (so a hub cannot get other terms approved)."""
    from medspace.policy import Project, contract_hash

    if entry.type not in _SIGNABLE:
        raise UserKeyError(f"the hub asked to sign a {entry.type.value} entry; refused")
    if entry.actor != user:
        raise UserKeyError("the hub asked to sign an entry in another user's name; refused")
    if entry.details.get("decision") != "allow":
        raise UserKeyError("the hub asked to sign an entry that is not an allow; refused")
    try:
        check_fresh(entry, now)
    except UserKeyError:
        raise UserKeyError(
            f"the hub's draft is more than {MAX_SKEW} away from this machine's clock; "
            "check both clocks"
        ) from None
    if project is None or entry.project != project:
        raise UserKeyError("the hub asked to sign an entry for another project; refused")
    if entry.type is EntryType.APPROVAL:
        if terms is None or entry.node is None:
            raise UserKeyError("cannot check the approval draft: the project terms are missing")
        expected = "sha256:" + contract_hash(Project.parse(terms), entry.node)
        if entry.artefacts.get("agreement") != expected:
            raise UserKeyError(
                "the approval draft names another contract hash than the terms the hub "
                "shows; refused (the terms may have been changed)"
            )
