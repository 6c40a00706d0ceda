"""The store's tables, shaped like OMOP CDM, on SQLAlchemy Core.

What is kept in the clear and why: analytics needs sex, birth date, codes, values and
dates, which are not direct identifiers. Birth dates (and exact event dates) are
quasi-identifiers: they never leave the node at row level, and disclosure control
(`medspace.analytics`, `medspace.deid`) generalises or suppresses them before anything
is released. Direct identifiers (`model.Identity`) and note text exist here only as
AES-256-GCM ciphertext (see `medspace.store.crypto`).

Every table has `source_id`, unique within the table: re-ingest updates rows in place.
Clinical tables point at their patient by `person_source_id` (indexed) and carry no
foreign keys, because sources deliver units in any order (a note may arrive before its
patient). Every date-or-time field is split the OMOP way into `<field>_date` (the day as
the source wrote it) and `<field>_datetime` (set only when the source gave a time; aware
times are stored in UTC, naive times as given).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    inspect,
)
from sqlalchemy.schema import CreateIndex

SCHEMA_VERSION = 1

metadata = MetaData()

#: Surrogate keys: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
_Id = BigInteger().with_variant(Integer(), "sqlite")


def _base(name: str, *columns: Column) -> Table:
    return Table(
        name,
        metadata,
        Column("id", _Id, primary_key=True, autoincrement=True),
        Column("source_id", Text, nullable=False, unique=True),
        *columns,
    )


def _provenance() -> list[Column]:
    # ingest_run_id: the run that last wrote the row (spots repeats within one run).
    # flags: JSON array of quality flags (never patient data).
    return [Column("ingest_run_id", Text, nullable=False), Column("flags", Text, nullable=False)]


def _code(prefix: str = "code", *, nullable: bool = False) -> list[Column]:
    return [
        Column(f"{prefix}_system", Text, nullable=nullable),
        Column(prefix, Text, nullable=nullable),
        Column(f"{prefix}_display", Text),
        Column(f"{prefix}_known", Boolean, nullable=nullable),
    ]


def _when(name: str) -> list[Column]:
    return [Column(f"{name}_date", Date), Column(f"{name}_datetime", DateTime)]


def _clinical(name: str, *columns: Column, encounter: bool = True) -> Table:
    cols: list[Column] = [Column("person_source_id", Text, nullable=False, index=True)]
    if encounter:
        cols.append(Column("encounter_source_id", Text, index=True))
    return _base(name, *cols, *columns, *_provenance())


person = _base(
    "person",
    Column("pseudonym", Text, nullable=False, unique=True),
    Column("sex", Text, nullable=False),
    Column("birth_date", Date),  # quasi-identifier: see module docstring
    *_when("deceased"),
    Column("identity_sealed", LargeBinary, nullable=False),
    *_provenance(),
)

visit_occurrence = _clinical(
    "visit_occurrence",
    Column("kind", Text, nullable=False),
    *_when("start"),
    *_when("end"),
    *_code(nullable=True),
    encounter=False,
)

condition_occurrence = _clinical(
    "condition_occurrence",
    *_code(),
    *_when("onset"),
    *_when("recorded"),
    Column("clinical_status", Text),
)

drug_exposure = _clinical(
    "drug_exposure",
    *_code(),
    *_when("start"),
    *_when("end"),
    Column("kind", Text, nullable=False),
    Column("status", Text),
    Column("dose", Text),
)

measurement = _clinical(
    "measurement",
    *_code(),
    *_when("time"),
    Column("value", Float),
    Column("value_text", Text),
    Column("unit", Text),
    Column("ref_low", Float),
    Column("ref_high", Float),
)

observation = _clinical(
    "observation",
    *_code(),
    *_when("time"),
    Column("value", Float),
    Column("value_text", Text),
    *_code("value_code", nullable=True),
    Column("unit", Text),
)

procedure_occurrence = _clinical("procedure_occurrence", *_code(), *_when("time"))

allergy = _clinical(
    "allergy",
    *_code(),
    Column("reaction", Text),
    Column("criticality", Text),
    *_when("recorded"),
    encounter=False,
)

note = _clinical(
    "note",
    *_when("time"),
    *_code(nullable=True),  # the note type, if sent
    Column("language", Text),
    Column("text_sealed", LargeBinary, nullable=False),
)

#: Wrapped data keys. source_id is "patient:<patient source id>" or "node:quarantine".
data_key = _base(
    "data_key",
    Column("kek_id", Text, nullable=False),
    Column("wrapped", LargeBinary, nullable=False),
    Column("created", DateTime, nullable=False),
)

#: Rejected units. source_id is a random id; raw bytes only sealed under the quarantine key.
quarantine = _base(
    "quarantine",
    Column("ingest_run_id", Text, nullable=False, index=True),
    Column("source", Text, nullable=False),
    Column("position", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created", DateTime, nullable=False),
    Column("raw_sealed", LargeBinary, nullable=False),
)

#: One row per ingest; counts are updated in the same transaction as each batch.
ingest_run = _base(
    "ingest_run",
    Column("source", Text, nullable=False),
    Column("started", DateTime, nullable=False),
    Column("finished", DateTime),
    Column("status", Text, nullable=False),  # running | completed | failed
    Column("received", Integer, nullable=False, default=0),
    Column("stored", Integer, nullable=False, default=0),
    Column("skipped", Integer, nullable=False, default=0),
    Column("quarantined", Integer, nullable=False, default=0),
    Column("repeated", Integer, nullable=False, default=0),
    Column("skipped_by_type", Text, nullable=False, default="{}"),
    Column("records_by_kind", Text, nullable=False, default="{}"),
)

#: One row (id 1): schema version and which KEK the data keys are wrapped under.
store_meta = Table(
    "store_meta",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("schema_version", Integer, nullable=False),
    Column("kek_id", Text, nullable=False),
    Column("kek_check", LargeBinary, nullable=False),
    Column("created", DateTime, nullable=False),
)

#: Linkage tokens per patient, written and probed by `medspace.linkage` (keyed hashes and
#: Bloom filters only, never identifiers). A lookup probes the indexed columns, never scans.
#: Not in DATA_TABLES: stores made before it get it when a linkage key is installed.
linkage_token = Table(
    "linkage_token",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("person_source_id", Text, nullable=False, unique=True),
    Column("key_id", Text, nullable=False),  # not indexed: one value per node; probes use blocks
    Column("exact_token", LargeBinary, index=True),
    Column("clk", LargeBinary),
    Column("block_birth", LargeBinary, index=True),
    Column("block_cohort", LargeBinary, index=True),
    Column("block_sound", LargeBinary, index=True),
    # Evidence for or against a fuzzy candidate (medspace.linkage.evidence); read only for
    # the candidates a block found, so not indexed. Added after the first release: stores
    # made before gain them in medspace.linkage.index.ensure_table.
    Column("phone_token", LargeBinary),
    Column("address_token", LargeBinary),
)

#: Indexes for federated analytics (`medspace.analytics.features`). A cohort filter
#: ("has a record with this code") is a range search on (code_system, code) that also
#: covers person_source_id, so the record table itself is never read; an earliest or
#: latest value per patient is one seek on (person_source_id, code_system, code) with
#: the rows already in date order (SQLite ends every index with the rowid, which is `id`,
#: the last tie-breaker). Stores made before these existed gain them on open
#: (`ensure_analytics_indexes`).
ANALYTICS_INDEXES: tuple[Index, ...] = (
    *(
        Index(f"ix_{t.name}_code_person", t.c.code_system, t.c.code, t.c.person_source_id)
        for t in (
            condition_occurrence,
            drug_exposure,
            measurement,
            observation,
            procedure_occurrence,
        )
    ),
    *(
        Index(
            f"ix_{t.name}_person_code_time",
            t.c.person_source_id,
            t.c.code_system,
            t.c.code,
            t.c.time_date,
            t.c.time_datetime,
        )
        for t in (measurement, observation)
    ),
)


def ensure_analytics_indexes(engine: Engine) -> None:
    """Create the analytics indexes an existing store lacks (takes a while once on a
    large old store). Present ones are looked up first, so an open does not take a
    table lock (PostgreSQL locks the table even for CREATE INDEX IF NOT EXISTS); IF NOT
    EXISTS covers two processes opening an old store at once."""
    inspector = inspect(engine)
    missing = []
    for index in ANALYTICS_INDEXES:
        table = index.table
        assert table is not None
        if not inspector.has_table(table.name):
            continue
        if index.name not in {i["name"] for i in inspector.get_indexes(table.name)}:
            missing.append(index)
    if missing:
        with engine.begin() as conn:
            for index in missing:
                conn.execute(CreateIndex(index, if_not_exists=True))


#: Record kind (`medspace.model.KIND_OF`) -> table.
TABLE_OF: dict[str, Table] = {
    "patient": person,
    "encounter": visit_occurrence,
    "condition": condition_occurrence,
    "drug": drug_exposure,
    "measurement": measurement,
    "observation": observation,
    "procedure": procedure_occurrence,
    "allergy": allergy,
    "note": note,
}

#: Tables counted by `NodeStore.stats()`.
DATA_TABLES: tuple[Table, ...] = (*TABLE_OF.values(), data_key, quarantine, ingest_run)
