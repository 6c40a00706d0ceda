"""The node's linkage index: one row of tokens per patient, and the probe a lookup runs.

Rows live in the store's `linkage_token` table (`medspace.store.schema`), keyed by the
patient's source id, and hold only keyed hashes and Bloom filters. They are written at
ingest when the node has a linkage key (`LinkageIndexer`, called by the store inside each
ingest batch's transaction, so tokens and patients never disagree) and rebuilt for patients
already stored by `rebuild` (`medspace node linkage index`).

A probe is index lookups, never a scan: the exact token through its index; failing that,
the candidates sharing a block key (birth date, cohort, sound), each through its own index,
scored by the Dice coefficient of their CLKs. Candidates whose national ID differs from the
one asked for are different people and are dropped, however alike their names; so are
candidates whose phone number differs from the one asked for while the address does not
agree (`medspace.linkage.evidence`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Protocol

from sqlalchemy import Connection, Engine, bindparam, delete, inspect, select, text, union_all
from sqlalchemy.dialects import postgresql, sqlite

from medspace.linkage.bloom import DEFAULT_SCHEMA, ClkSchema, dice
from medspace.linkage.errors import LinkageInputError
from medspace.linkage.evidence import weigh
from medspace.linkage.key import LinkageKey
from medspace.linkage.tokens import LinkageTokens, TokenMaker, tokens_for_patients
from medspace.model import Patient
from medspace.store.schema import linkage_token

#: Dice coefficient at or above which a CLK candidate is reported as a fuzzy match. Chosen
#: on the synthetic hospitals' noise (docs/linkage.md): every one-character typo in a Latin
#: or Han name still matches; what also passes is a different person with the same birth
#: date, sex and all but one character of the name, which no name/date/sex encoding can
#: tell from a typo.
DEFAULT_THRESHOLD = 0.83
#: At most this many candidates are read per block key (a guard against a degenerate block
#: such as a default birth date 1900-01-01 entered for every unknown patient).
MAX_CANDIDATES_PER_BLOCK = 500
_WRITE_CHUNK = 500

#: Columns added to `linkage_token` after its first release (nullable: old rows lack them
#: until `rebuild_index`, and a missing token counts neither way).
_ADDED_COLUMNS = ("phone_token", "address_token")

MatchKind = Literal["exact", "fuzzy"]


@dataclass(frozen=True, slots=True)
class Match:
    """A patient of this node that matches the probe: by exact token (score 1.0) or by CLK
    (score = Dice coefficient)."""

    person_source_id: str
    kind: MatchKind
    score: float


class _HasEngine(Protocol):
    @property
    def engine(self) -> Engine: ...


Source = Engine | Connection | _HasEngine


@contextmanager
def _connection(source: Source) -> Iterator[Connection]:
    if isinstance(source, Connection):
        yield source
        return
    engine = source if isinstance(source, Engine) else source.engine
    with engine.connect() as conn:
        yield conn


def ensure_table(engine: Engine) -> None:
    """Create the `linkage_token` table (and its indexes) if this store lacks it, and add
    the evidence columns (phone, address) to a table made before they existed."""
    linkage_token.create(engine, checkfirst=True)
    present = {c["name"] for c in inspect(engine).get_columns(linkage_token.name)}
    missing = [c for c in _ADDED_COLUMNS if c not in present]
    if missing:
        blob = "BLOB" if engine.dialect.name == "sqlite" else "BYTEA"
        with engine.begin() as conn:
            for column in missing:
                conn.execute(text(f"ALTER TABLE {linkage_token.name} ADD COLUMN {column} {blob}"))


def _row(person_source_id: str, tokens: LinkageTokens) -> dict[str, object]:
    return {
        "person_source_id": person_source_id,
        "key_id": tokens.key_id,
        "exact_token": tokens.exact,
        "clk": tokens.clk,
        "block_birth": tokens.blocks.get("birth"),
        "block_cohort": tokens.blocks.get("cohort"),
        "block_sound": tokens.blocks.get("sound"),
        "phone_token": tokens.phone,
        "address_token": tokens.address,
    }


def write_tokens(conn: Connection, items: Iterable[tuple[str, LinkageTokens | None]]) -> int:
    """Insert or replace the tokens of each (patient source id, tokens); a None removes the
    patient's row (nothing left to link on). Returns the rows written."""
    rows: list[dict[str, object]] = []
    gone: list[str] = []
    for source_id, tokens in items:
        if tokens is None:
            gone.append(source_id)
        else:
            rows.append(_row(source_id, tokens))
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    for start in range(0, len(rows), _WRITE_CHUNK):
        stmt = dialect.insert(linkage_token)
        changes = {c: stmt.excluded[c] for c in rows[0] if c != "person_source_id"}
        conn.execute(
            stmt.on_conflict_do_update(index_elements=["person_source_id"], set_=changes),
            rows[start : start + _WRITE_CHUNK],
        )
    for start in range(0, len(gone), _WRITE_CHUNK):
        chunk = gone[start : start + _WRITE_CHUNK]
        conn.execute(delete(linkage_token).where(linkage_token.c.person_source_id.in_(chunk)))
    return len(rows)


class LinkageIndexer:
    """Keeps the index in step with ingest: the store calls `index` with the patients of
    each batch, inside the batch's transaction (`medspace.store.PatientIndexer`)."""

    def __init__(self, key: LinkageKey) -> None:
        self.key_id = key.key_id
        self._maker = TokenMaker(key)

    def prepare(self, engine: Engine) -> None:
        """Make sure the table exists (stores made before linkage get it here)."""
        ensure_table(engine)

    def index(self, conn: Connection, patients: Sequence[Patient]) -> None:
        """Write (or replace) the tokens of `patients`."""
        tokens = tokens_for_patients(self._maker, patients)
        write_tokens(conn, zip((p.source_id for p in patients), tokens, strict=True))


def drop_stale(conn: Connection, key_id: str) -> int:
    """Delete rows made under another linkage key; returns how many."""
    result = conn.execute(delete(linkage_token).where(linkage_token.c.key_id != key_id))
    return int(result.rowcount or 0)


_EXACT_QUERY = select(linkage_token.c.person_source_id).where(
    linkage_token.c.exact_token == bindparam("exact"),
    linkage_token.c.key_id == bindparam("key_id"),
)


@lru_cache(maxsize=8)
def _candidates_query(kinds: tuple[str, ...]) -> Any:
    """One SELECT per block kind, each through that block's index, UNION ALL-ed (built
    once per combination of kinds: SQLAlchemy's statement building costs more than the
    lookups)."""
    t = linkage_token.c
    parts = [
        select(t.person_source_id, t.exact_token, t.clk, t.phone_token, t.address_token)
        .where(
            getattr(t, f"block_{kind}") == bindparam(f"b_{kind}"), t.key_id == bindparam("key_id")
        )
        .limit(MAX_CANDIDATES_PER_BLOCK)
        for kind in kinds
    ]
    return parts[0] if len(parts) == 1 else union_all(*(p.subquery().select() for p in parts))


def probe(
    source: Source,
    tokens: LinkageTokens,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    schema: ClkSchema = DEFAULT_SCHEMA,
) -> list[Match]:
    """The patients of this node that `tokens` match, best first.

    Exact-token matches (score 1.0) when there are any; otherwise CLK candidates that share
    a block key, made under the same key, whose national ID (if both have one) is the same,
    whose phone and address are not contradicting (`medspace.linkage.evidence`), with a
    Dice coefficient >= `threshold`. Only indexed columns are searched.
    Raises `LinkageInputError` for a threshold outside (0, 1] or CLKs made with other
    parameters than this node's `schema`.
    """
    if not 0.0 < threshold <= 1.0:
        raise LinkageInputError("the match threshold must be above 0 and at most 1 (e.g. 0.8)")
    with _connection(source) as conn:
        if tokens.exact is not None:
            found = conn.execute(
                _EXACT_QUERY, {"exact": tokens.exact, "key_id": tokens.key_id}
            ).scalars()
            exact = [Match(source_id, "exact", 1.0) for source_id in sorted(found)]
            if exact:
                return exact
        if tokens.clk is None or not tokens.blocks:
            return []
        if tokens.clk_schema != schema.tag:
            raise LinkageInputError(
                f"the request's CLKs were made with parameters {tokens.clk_schema}, this "
                f"node uses {schema.tag}: every node of a network must run the same release"
            )
        kinds = tuple(sorted(tokens.blocks))
        values = {f"b_{kind}": tokens.blocks[kind] for kind in kinds}
        rows = conn.execute(_candidates_query(kinds), {"key_id": tokens.key_id, **values})
        candidates = {row.person_source_id: row for row in rows}
    matches = []
    for source_id, row in candidates.items():
        if row.clk is None or len(row.clk) != len(tokens.clk):
            continue
        if tokens.exact is not None and row.exact_token is not None:
            continue  # both have a national ID and they differ: not the same person
        if weigh((tokens.phone, row.phone_token), (tokens.address, row.address_token)).contradicted:
            continue  # the phones differ and the address does not agree: another person
        score = dice(tokens.clk, row.clk)
        if score >= threshold:
            matches.append(Match(source_id, "fuzzy", round(score, 4)))
    matches.sort(key=lambda m: (-m.score, m.person_source_id))
    return matches


class _PatientSource(_HasEngine, Protocol):
    def iter_records(self, kind: str) -> Iterator[object]: ...


def rebuild_index(store: _PatientSource, key: LinkageKey, *, batch_size: int = 2000) -> int:
    """Compute the tokens of every patient already in `store` (a `NodeStore`) under `key`,
    replacing what the index held, and drop rows made under another key. Returns the
    number of patients indexed. Each batch is its own transaction, so a crash part-way
    leaves a consistent (partial) index that running this again completes."""
    ensure_table(store.engine)
    indexer = LinkageIndexer(key)
    written = 0
    batch: list[Patient] = []

    def flush() -> int:
        with store.engine.begin() as conn:
            indexer.index(conn, batch)
        done = len(batch)
        batch.clear()
        return done

    for record in store.iter_records("patient"):
        if isinstance(record, Patient):
            batch.append(record)
            if len(batch) >= batch_size:
                written += flush()
    if batch:
        written += flush()
    with store.engine.begin() as conn:
        drop_stale(conn, key.key_id)
    return written
