"""Cohort counts pushed down into SQL: how many patients match, never who.

Used by `NodeStore.count_patients` for the network's count query. Only a number leaves
this module; disclosure control (minimum cell size) is the caller's obligation.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import Connection, and_, exists, func, or_, select

from medspace.store.errors import StoreError
from medspace.store.schema import condition_occurrence, person

_MAX_PREFIXES = 1000


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def count_patients(
    conn: Connection,
    *,
    condition_prefixes: Sequence[str] = (),
    code_system: str | None = None,
    exclude_pseudonyms: Collection[str] = (),
) -> int:
    """Patients with at least one condition whose code starts with one of
    `condition_prefixes` (in `code_system` when given); all patients when no prefix is
    given. Patients whose pseudonym is in `exclude_pseudonyms` (opt-outs) are left out."""
    if len(condition_prefixes) > _MAX_PREFIXES:
        raise StoreError(f"a cohort lists at most {_MAX_PREFIXES} condition code prefixes")
    if any(not isinstance(p, str) or not p for p in condition_prefixes):
        raise StoreError("condition code prefixes must be non-empty strings")
    query = select(func.count()).select_from(person)
    if condition_prefixes:
        c = condition_occurrence.c
        matches = or_(*(c.code.like(_like_prefix(p), escape="\\") for p in condition_prefixes))
        where = and_(c.person_source_id == person.c.source_id, matches)
        if code_system is not None:
            where = and_(where, c.code_system == code_system)
        query = query.where(exists().where(where))
    if exclude_pseudonyms:
        query = query.where(person.c.pseudonym.not_in(list(exclude_pseudonyms)))
    return int(conn.execute(query).scalar_one())
