"""The lookup's only contact with `medspace.linkage`: tokens from the clinician's input
at the asking node, and the index probe at each responder. Both use the network linkage
key installed in the node directory (`linkage.key`), which the hub never has."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from medspace.linkage import KEY_FILE, LinkageKey, LinkageTokens, read_key_file, tokens_for
from medspace.linkage import probe as linkage_probe
from medspace.node import Node
from medspace.node.filecache import FileCache


@dataclass(frozen=True, slots=True)
class Hit:
    """One patient of this node's store that matches the tokens."""

    person_source_id: str
    kind: str
    score: float


def linkage_key(directory: Path) -> LinkageKey:
    """The node's linkage key as the file holds it now (read again when it changes: a
    long-running lookup API must not tokenise under a replaced key); raises
    `LinkageKeyError` saying how to install one."""
    path = Path(directory).absolute() / KEY_FILE
    cache = _KEYS.get(path)
    if cache is None:
        cache = _KEYS.setdefault(path, FileCache(path, read_key_file))
    return cache.get()


_KEYS: dict[Path, FileCache[LinkageKey]] = {}


def tokens_from_input(
    node: Node,
    *,
    national_id: str | None,
    id_system: str | None,
    name: str | None,
    birth_date: date | None,
    sex: str | None,
    family_name: str | None = None,
    given_name: str | None = None,
    phone: str | None = None,
) -> dict[str, Any]:
    """Linkage tokens (JSON) for what the clinician typed, under this node's linkage key.
    Raises `LinkageInputError` (e.g. a wrong check digit) or `LinkageKeyError`."""
    key = linkage_key(node.directory)
    tokens = tokens_for(
        key,
        national_id=national_id,
        id_system=id_system,
        name=name,
        birth_date=birth_date,
        sex=sex,
        family_name=family_name,
        given_name=given_name,
        phone=phone,
    )
    result: dict[str, Any] = tokens.to_json()
    return result


def probe(node: Node, tokens: dict[str, Any]) -> list[Hit]:
    """Patients of this node matching `tokens` (an index probe, exact first)."""
    parsed = LinkageTokens.from_json(tokens)
    with node.store.read_connection() as conn:
        found = linkage_probe(conn, parsed)
    return [Hit(m.person_source_id, m.kind, float(m.score)) for m in found]
