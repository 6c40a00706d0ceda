"""`node.json`: a node's name, database URL, creation time and key ids.

The KEK's id is not kept here: rotation changes it, so `kek.key` carries its own id and
the store records which KEK id wraps its data keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from medspace.node.errors import NodeConfigError

CONFIG_FILE = "node.json"
_FORMAT = "medspace-node/1"


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """A node's configuration, as read from `DIR/node.json`."""

    directory: Path
    name: str
    db_url: str = field(repr=False)  # may hold a database password
    created: datetime
    pseudonym_key_id: str
    identity_key_id: str

    def to_json(self) -> bytes:
        """The canonical node.json content (the directory is where the file lives)."""
        doc = {
            "format": _FORMAT,
            "name": self.name,
            "db_url": self.db_url,
            "created": self.created.isoformat(),
            "key_ids": {"pseudonym": self.pseudonym_key_id, "identity": self.identity_key_id},
        }
        return json.dumps(doc, indent=2, ensure_ascii=False).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, directory: Path) -> NodeConfig:
        """Parse node.json. Raises `NodeConfigError` naming what is wrong."""
        path = directory / CONFIG_FILE
        try:
            doc: Any = json.loads(data)
            if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
                raise NodeConfigError(
                    f"{path} is not a MedSpace node config ({_FORMAT}): restore it from backup"
                )
            return cls(
                directory=directory,
                name=str(doc["name"]),
                db_url=str(doc["db_url"]),
                created=datetime.fromisoformat(doc["created"]),
                pseudonym_key_id=str(doc["key_ids"]["pseudonym"]),
                identity_key_id=str(doc["key_ids"]["identity"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise NodeConfigError(
                f"{path} is damaged ({type(exc).__name__}): restore it from backup"
            ) from None
