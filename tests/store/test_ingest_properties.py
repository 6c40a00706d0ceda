"""Property: for any sequence of outcomes, counts balance, stats agree, the rule holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medspace.connectors.base import Outcome, Parsed, Rejected, Skipped
from medspace.model import KIND_OF, Code, Condition, Identity, Note, Patient, Record
from medspace.node import Node, open_node

IDS = ["a", "b", "c"]
_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8
)

patients = st.builds(
    Patient,
    source_id=st.sampled_from(IDS),
    sex=st.sampled_from(["male", "female"]),
    identity=st.builds(Identity, family_name=st.sampled_from(["Li", "Wang"]), phone=_text),
)
conditions = st.builds(
    Condition,
    source_id=st.sampled_from(IDS),
    patient_id=st.sampled_from(IDS),
    code=st.builds(Code, system=st.just("ICD-10"), code=st.sampled_from(["I10", "E11"])),
)
notes = st.builds(Note, source_id=st.sampled_from(IDS), patient_id=st.sampled_from(IDS), text=_text)
records = st.one_of(patients, conditions, notes)
outcomes = st.one_of(
    st.builds(
        Parsed,
        source=st.just("f"),
        position=st.just("p"),
        records=st.lists(records, max_size=3).map(tuple),
    ),
    st.builds(
        Skipped,
        source=st.just("f"),
        position=st.just("p"),
        unit_type=st.sampled_from(["Claim", "Coverage"]),
    ),
    st.builds(
        Rejected,
        source=st.just("f"),
        position=st.just("p"),
        reason=st.just("bad"),
        raw=st.binary(max_size=16),
    ),
)


def _expected(units: list[Outcome]) -> tuple[int, int, dict[tuple[str, str], Record]]:
    """Reference rule: a unit is quarantined if it repeats an id of this run differently."""
    stored = quarantined = 0
    kept: dict[tuple[str, str], Record] = {}
    for unit in units:
        if isinstance(unit, Rejected):
            quarantined += 1
        elif isinstance(unit, Parsed):
            mine: dict[tuple[str, str], Record] = {}
            clash = False
            for r in unit.records:
                key = (KIND_OF[type(r)], r.source_id)
                before = mine.get(key, kept.get(key))
                if before is None:
                    mine[key] = r
                elif before != r:
                    clash = True
                    break
            if clash:
                quarantined += 1
            else:
                stored += 1
                kept.update(mine)
    return stored, quarantined, kept


@pytest.fixture
def tiny_batches(node_dir: Path, node: Node) -> Iterator[Node]:
    opened = open_node(node_dir, batch_size=3)
    yield opened
    opened.close()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(units=st.lists(outcomes, max_size=12))
def test_any_outcomes_balance_and_follow_the_duplicate_rule(
    tiny_batches: Node, raw_db: sa.Engine, units: list[Outcome]
) -> None:
    store = tiny_batches.store
    before = store.stats()
    report = store.ingest(units, source="f")
    after = store.stats()

    assert report.received == len(units)
    assert report.received == report.stored + report.skipped + report.quarantined
    stored, quarantined, kept = _expected(units)
    assert (report.stored, report.quarantined) == (stored, quarantined)
    assert report.skipped == sum(isinstance(u, Skipped) for u in units)
    assert after.runs == before.runs + 1
    assert after.received - before.received == report.received
    assert after.stored - before.stored == report.stored
    assert after.skipped - before.skipped == report.skipped
    assert after.quarantined - before.quarantined == report.quarantined
    assert after.quarantine_rows - before.quarantine_rows == report.quarantined
    assert after.received == after.stored + after.skipped + after.quarantined

    # What this run accepted is what the store now holds for those ids.
    for (_kind, source_id), record in kept.items():
        if isinstance(record, Patient):
            assert store.patient_identity(source_id) == record.identity
        elif isinstance(record, Note):
            assert store.note_text(source_id) == record.text
        else:
            with raw_db.connect() as conn:
                code = conn.execute(
                    sa.text("select code from condition_occurrence where source_id = :s"),
                    {"s": source_id},
                ).scalar_one()
            assert code == record.code.code
    for table in ("person", "condition_occurrence", "note"):
        assert after.rows[table] <= len(IDS)
