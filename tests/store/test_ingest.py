"""Ingest: outcomes in, rows and quarantine out; counts always balance; nothing is lost."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from medspace.connectors.base import ConnectorError, Outcome
from medspace.errors import UsageError
from medspace.model import Code, Condition
from medspace.node import Node, open_node
from medspace.store import AccountingError, IngestReport, StoreWriteError

from .samples import (
    SOURCE,
    condition,
    encounter,
    identity,
    measurement,
    note,
    parsed,
    patient,
    rejected,
    skipped,
)


@pytest.fixture
def small_batches(node_dir: Path, node: Node) -> Iterator[Node]:
    """The same node opened with 2 units per transaction, to cross batch boundaries."""
    opened = open_node(node_dir, batch_size=2)
    yield opened
    opened.close()


def _count(raw_db: sa.Engine, table: str) -> int:
    with raw_db.connect() as conn:
        return int(conn.execute(sa.text(f"select count(*) from {table}")).scalar_one())


def test_mixed_outcomes_balance_and_are_counted_by_kind(node: Node) -> None:
    outcomes: list[Outcome] = [
        parsed(1, patient(0)),
        parsed(2, encounter(1), condition(1), measurement(1)),
        skipped(3, "Claim"),
        skipped(4, "Claim"),
        skipped(5, "Coverage"),
        rejected(6),
        parsed(7, note(1)),
    ]
    report = node.store.ingest(outcomes, source=SOURCE)
    assert (report.received, report.stored, report.skipped, report.quarantined) == (7, 3, 3, 1)
    assert report.received == report.stored + report.skipped + report.quarantined
    assert report.skipped_by_type == {"Claim": 2, "Coverage": 1}
    assert report.records == {
        "condition": 1,
        "encounter": 1,
        "measurement": 1,
        "note": 1,
        "patient": 1,
    }
    assert report.source == SOURCE
    stats = node.store.stats()
    assert stats.rows["person"] == 1
    assert stats.rows["visit_occurrence"] == 1
    assert stats.rows["condition_occurrence"] == 1
    assert stats.rows["measurement"] == 1
    assert stats.rows["note"] == 1
    assert stats.quarantine_rows == 1
    assert (stats.runs, stats.received, stats.stored, stats.skipped, stats.quarantined) == (
        1,
        7,
        3,
        3,
        1,
    )
    assert stats.skipped_by_type == {"Claim": 2, "Coverage": 1}


def test_empty_input_is_a_balanced_run(node: Node) -> None:
    report = node.store.ingest([], source=SOURCE)
    assert (report.received, report.stored, report.skipped, report.quarantined) == (0, 0, 0, 0)
    assert node.store.stats().runs == 1


def test_reingest_is_idempotent_and_the_latest_values_win(node: Node, raw_db: sa.Engine) -> None:
    first: list[Outcome] = [
        parsed(1, patient(0)),
        parsed(2, condition(1), measurement(1, value=5.4)),
        parsed(3, note(1)),
    ]
    a = node.store.ingest(first, source=SOURCE)
    b = node.store.ingest(first, source=SOURCE)
    assert (a.received, a.stored, a.records) == (b.received, b.stored, b.records)
    for table in ("person", "condition_occurrence", "measurement", "note", "data_key"):
        assert _count(raw_db, table) == 1, table

    changed: list[Outcome] = [
        parsed(1, patient(0, identity=identity(7), sex="male")),
        parsed(2, measurement(1, value=9.9)),
        parsed(3, note(1, text="corrected text")),
    ]
    node.store.ingest(changed, source=SOURCE)
    assert node.store.patient_identity("P0") == identity(7)
    assert node.store.note_text("N1") == "corrected text"
    with raw_db.connect() as conn:
        assert conn.execute(sa.text("select sex from person")).scalar_one() == "male"
        assert conn.execute(sa.text("select value from measurement")).scalar_one() == 9.9
    assert _count(raw_db, "person") == 1
    assert _count(raw_db, "measurement") == 1
    assert node.store.stats().runs == 3


@pytest.mark.parametrize("batch_size", [2, 100], ids=["across-batches", "same-batch"])
def test_duplicate_id_with_different_content_is_quarantined_and_the_first_kept(
    node_dir: Path, node: Node, batch_size: int
) -> None:
    store = open_node(node_dir, batch_size=batch_size).store
    try:
        outcomes: list[Outcome] = [
            parsed(1, patient(0)),
            parsed(2, measurement(1, value=1.0)),
            parsed(3, measurement(2)),
            parsed(4, patient(0, identity=identity(5)), encounter(4)),  # P0 again, different
            parsed(5, measurement(1, value=2.0)),  # M1 again, different value
        ]
        report = store.ingest(outcomes, source=SOURCE)
        assert (report.stored, report.quarantined) == (3, 2)
        assert report.records == {"measurement": 2, "patient": 1}
        assert store.patient_identity("P0") == identity(0)
        entries = store.quarantine()
        assert [e.position for e in entries] == ["line 4", "line 5"]
        assert all(e.reason.startswith("duplicate id in this input") for e in entries)
        assert "patient record" in entries[0].reason
        assert "measurement record" in entries[1].reason
        kept = store.read_quarantine_raw(entries[0].id)  # the whole unit, nothing lost
        assert b'"source_id": "E4"' in kept
        assert b"Family5" in kept
        assert store.stats().rows["visit_occurrence"] == 0
    finally:
        store.close()


@pytest.mark.parametrize("batch_size", [1, 100], ids=["across-batches", "same-batch"])
def test_identical_repeats_in_one_input_are_stored_once(
    node_dir: Path, node: Node, raw_db: sa.Engine, batch_size: int
) -> None:
    # HL7 v2 sends the same patient in every message; that is not a conflict.
    store = open_node(node_dir, batch_size=batch_size).store
    try:
        outcomes: list[Outcome] = [
            parsed(1, patient(0), encounter(1), condition(1)),
            parsed(2, patient(0), encounter(2), condition(2)),
            parsed(3, patient(0), note(1)),
            parsed(4, note(1)),
        ]
        report = store.ingest(outcomes, source=SOURCE)
        assert (report.stored, report.quarantined, report.repeated) == (4, 0, 3)
        assert report.records == {"condition": 2, "encounter": 2, "note": 1, "patient": 1}
    finally:
        store.close()
    assert _count(raw_db, "person") == 1
    assert _count(raw_db, "note") == 1


def test_quarantine_lists_where_and_why_but_never_the_content(node: Node) -> None:
    node.store.ingest(
        [parsed(1, patient(0)), rejected(2), rejected(3, b"\xff\xfe bytes")], source="x"
    )
    entries = node.store.quarantine()
    assert [(e.source, e.position) for e in entries] == [(SOURCE, "line 2"), (SOURCE, "line 3")]
    assert entries[0].reason == "invalid JSON: unterminated object"
    assert len(node.store.quarantine(limit=1)) == 1
    assert node.store.read_quarantine_raw(entries[1].id) == b"\xff\xfe bytes"
    assert "RAW-UNIT" not in repr(entries)


def test_a_note_before_its_patient_shares_the_patient_key(node: Node, raw_db: sa.Engine) -> None:
    node.store.ingest([parsed(1, note(1, patient_n=3))], source=SOURCE)
    node.store.ingest([parsed(1, patient(3))], source=SOURCE)
    assert node.store.patient_identity("P3") == identity(3)
    assert "chest pain" in node.store.note_text("N1")
    assert _count(raw_db, "data_key") == 1


def test_clear_columns_keep_codes_dates_and_values(node: Node, raw_db: sa.Engine) -> None:
    flagged = Condition(
        source_id="C9",
        patient_id="P0",
        code=Code("urn:local:dx", "X1", None, known=False),
        onset=datetime(2024, 3, 1, 23, 30),
        recorded=date(2024, 3, 2),
        flags=("unknown-code-system",),
    )
    node.store.ingest(
        [parsed(1, patient(0), measurement(1), flagged), parsed(2, note(1))], source="x"
    )
    with raw_db.connect() as conn:
        person = conn.execute(sa.text("select sex, birth_date from person")).one()
        lab = conn.execute(
            sa.text(
                "select code_system, code, value, unit, time_date, time_datetime from measurement"
            )
        ).one()
        dx = conn.execute(
            sa.text(
                "select code_known, onset_date, recorded_date, recorded_datetime, flags "
                "from condition_occurrence"
            )
        ).one()
        note_time = conn.execute(sa.text("select time_date, time_datetime from note")).one()
    assert person.sex == "female"
    assert str(person.birth_date).startswith("1985-07-15")
    assert (lab.code_system, lab.code, lab.value, lab.unit) == ("LOINC", "2345-7", 5.4, "mmol/L")
    assert str(lab.time_datetime).startswith("2024-03-01 01:30:00")
    assert not dx.code_known
    assert str(dx.onset_date).startswith("2024-03-01")
    assert dx.recorded_datetime is None
    assert dx.flags == '["unknown-code-system"]'
    # 09:30 at UTC+8: the day as written, the time in UTC
    assert str(note_time.time_date).startswith("2024-03-01")
    assert str(note_time.time_datetime).startswith("2024-03-01 01:30:00")


def test_database_failure_mid_run_fails_loudly_and_keeps_earlier_batches(
    small_batches: Node, raw_db: sa.Engine
) -> None:
    bad = Condition(source_id="SECRET-ROW-9", patient_id="P0", code=None)  # type: ignore[arg-type]
    outcomes: list[Outcome] = [
        parsed(1, patient(0)),
        parsed(2, condition(2)),
        parsed(3, condition(3)),
        parsed(4, bad),  # code is required: the database refuses the second batch
        parsed(5, condition(5)),
    ]
    with pytest.raises(StoreWriteError, match="database refused a write") as failure:
        small_batches.store.ingest(outcomes, source=SOURCE)
    assert "SECRET-ROW-9" not in str(failure.value)
    assert "2 units stored by earlier batches are kept" in str(failure.value)
    stats = small_batches.store.stats()
    assert (stats.received, stats.stored) == (2, 2)
    assert stats.rows["condition_occurrence"] == 1
    with raw_db.connect() as conn:
        assert conn.execute(sa.text("select status from ingest_run")).scalar_one() == "failed"


def test_failing_input_keeps_the_units_read_before(small_batches: Node) -> None:
    def outcomes() -> Iterator[Outcome]:
        yield parsed(1, patient(0))
        yield parsed(2, condition(2))
        yield skipped(3)
        raise ConnectorError("the file vanished")

    with pytest.raises(ConnectorError, match="vanished"):
        small_batches.store.ingest(outcomes(), source=SOURCE)
    stats = small_batches.store.stats()
    assert (stats.received, stats.stored, stats.skipped) == (3, 2, 1)


def test_something_that_is_not_an_outcome_is_refused(node: Node) -> None:
    with pytest.raises(UsageError, match="not a Parsed, Skipped or Rejected"):
        node.store.ingest([parsed(1, patient(0)), "line"], source=SOURCE)  # type: ignore[list-item]
    with pytest.raises(UsageError, match=r"only medspace\.model records"):
        node.store.ingest([parsed(1, {"id": 1})], source=SOURCE)
    assert node.store.stats().stored == 1  # the unit before the bad one was kept


def test_progress_gets_one_increment_per_committed_batch(small_batches: Node) -> None:
    seen: list[int] = []
    outcomes = [parsed(i, measurement(i)) for i in range(5)]
    small_batches.store.ingest(outcomes, source=SOURCE, progress=seen.append)
    assert seen == [2, 2, 1]


def test_stats_sum_every_run(node: Node) -> None:
    node.store.ingest([parsed(1, patient(0)), skipped(2, "Claim")], source="a")
    node.store.ingest([rejected(1), skipped(2, "Claim"), skipped(3, "Coverage")], source="b")
    stats = node.store.stats()
    assert (stats.runs, stats.received, stats.stored, stats.skipped, stats.quarantined) == (
        2,
        5,
        1,
        3,
        1,
    )
    assert stats.skipped_by_type == {"Claim": 2, "Coverage": 1}


def test_a_report_that_does_not_balance_cannot_exist() -> None:
    with pytest.raises(AccountingError, match="do not balance"):
        IngestReport(run_id="r", source="s", received=3, stored=1, skipped=1, quarantined=0)
    with pytest.raises(AccountingError, match="by type"):
        IngestReport(
            run_id="r",
            source="s",
            received=1,
            stored=0,
            skipped=1,
            quarantined=0,
            skipped_by_type={},
        )
