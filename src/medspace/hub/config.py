"""A hub directory: `hub.json`, the hub's keys (0600, directory 0700) and its database.

Keys:
- `hub.key`: the hub's Ed25519 identity. It signs login tokens, the hub's own ledger
  entries and the hub's channel messages.
- `log.key`: the ledger's checkpoint key (C2SP signed-note type 0x01, named by origin).

The hub holds no key of any user: users sign their own entries with keys made by
`medspace login` on their machines (see `medspace.identity.userkeys`).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medspace.hub.errors import HubConfigError, HubExistsError
from medspace.identity import read_private_key, write_private_key

CONFIG_FILE = "hub.json"
HUB_KEY_FILE = "hub.key"
LOG_KEY_FILE = "log.key"
_FORMAT = "medspace-hub/1"
DEFAULT_TASK_TIMEOUT = 30


@dataclass(frozen=True, slots=True)
class HubConfig:
    """A hub's configuration as read from `DIR/hub.json`.

    `origin` names the log (and the hub in node challenges); `quorum` is the number of
    witness cosignatures that make a checkpoint final (None: a majority of the nodes);
    `task_timeout` is how long the hub waits for a node's answer before reporting it
    missing, in seconds.
    """

    directory: Path
    origin: str
    db_url: str
    created: datetime
    quorum: int | None = None
    task_timeout: int = DEFAULT_TASK_TIMEOUT

    def to_json(self) -> bytes:
        """The hub.json content."""
        doc = {
            "format": _FORMAT,
            "origin": self.origin,
            "db_url": self.db_url,
            "created": self.created.isoformat(),
            "quorum": self.quorum,
            "task_timeout": self.task_timeout,
        }
        return json.dumps(doc, indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, directory: Path) -> HubConfig:
        """Parse hub.json; raises `HubConfigError` naming what is wrong."""
        path = directory / CONFIG_FILE
        try:
            doc: Any = json.loads(data)
            if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
                raise HubConfigError(f"{path} is not a MedSpace hub config ({_FORMAT})")
            quorum = doc.get("quorum")
            timeout = int(doc.get("task_timeout", DEFAULT_TASK_TIMEOUT))
            if quorum is not None and (type(quorum) is not int or quorum < 1):
                raise HubConfigError(f"{path}: quorum must be a positive number or null")
            if timeout < 1:
                raise HubConfigError(f"{path}: task_timeout must be at least 1 second")
            return cls(
                directory=directory,
                origin=str(doc["origin"]),
                db_url=str(doc["db_url"]),
                created=datetime.fromisoformat(doc["created"]),
                quorum=quorum,
                task_timeout=timeout,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise HubConfigError(
                f"{path} is damaged ({type(exc).__name__}): restore it from backup"
            ) from None


def init_hub(
    directory: Path,
    *,
    db_url: str | None = None,
    origin: str | None = None,
    quorum: int | None = None,
    task_timeout: int = DEFAULT_TASK_TIMEOUT,
) -> HubConfig:
    """Create a hub: DIR (0700) with hub.json and fresh keys (0600).

    `db_url` defaults to `sqlite:///DIR/hub.db`; `origin` to `medspace-hub/<random>`.
    The database tables are created when the hub is first opened. Raises
    `HubExistsError` if DIR already holds a hub.
    """
    directory = Path(directory).absolute()
    if directory.exists() and not directory.is_dir():
        raise HubConfigError(f"{directory} is a file; pick a directory for the hub")
    names = (CONFIG_FILE, HUB_KEY_FILE, LOG_KEY_FILE)
    if directory.is_dir() and any((directory / n).exists() for n in names):
        raise HubExistsError(
            f"{directory} already holds a hub; serve it with `medspace hub serve --hub "
            f"{directory}`, or pick an empty directory"
        )
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    config = HubConfig(
        directory=directory,
        origin=origin or f"medspace-hub/{secrets.token_hex(4)}",
        db_url=db_url or f"sqlite:///{directory / 'hub.db'}",
        created=datetime.now(UTC).replace(microsecond=0),
        quorum=quorum,
        task_timeout=task_timeout,
    )
    write_private_key(directory / HUB_KEY_FILE, Ed25519PrivateKey.generate())
    write_private_key(directory / LOG_KEY_FILE, Ed25519PrivateKey.generate())
    (directory / CONFIG_FILE).write_bytes(config.to_json())
    return config


@dataclass(frozen=True)
class HubKeys:
    """The hub's private keys, loaded from its directory."""

    hub: Ed25519PrivateKey
    log: Ed25519PrivateKey


def read_hub(directory: Path) -> tuple[HubConfig, HubKeys]:
    """Read hub.json and the key files. Raises `HubConfigError` (no hub there, damaged
    files) or `ConfigError` (key files readable by others)."""
    directory = Path(directory).absolute()
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise HubConfigError(
            f"no MedSpace hub at {directory}: create one with `medspace hub init {directory}`"
        )
    config = HubConfig.from_json(path.read_bytes(), directory)
    keys = HubKeys(
        read_private_key(directory / HUB_KEY_FILE),
        read_private_key(directory / LOG_KEY_FILE),
    )
    return config, keys
