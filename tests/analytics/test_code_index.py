"""Indexed code search gives exactly the case-sensitive prefix and earliest/latest
semantics of a plain Python scan, on SQLite and PostgreSQL.

The SQLite prefix test is a binary range [prefix, next prefix) beside the SUBSTR test
(`medspace.analytics.features.code_matches`), so codes just inside and just outside
the range's ends are planted here, and the earliest/latest pick leans on the index
order ending in the row id: ties on date and time are planted too."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from medspace.analytics import QuerySpec, cohort_person_ids, compute_local
from medspace.connectors.base import Parsed
from medspace.model import Code, Condition, Identity, Measurement, Patient
from medspace.node import Node, init_node, open_node

CODES = (
    "C2",
    "C22",
    "C22.0",
    "C22/",
    "C229",
    "C23",
    "C2-x",
    "C2.",
    "C3",
    "C1Z",
    "c22.1",
    "C2\u00e9",
    "C2\U0010ffff",
    "Cz",
    "Cz\U0010ffff",
    "C{",
    "z",
    "z~",
    "{",
    "D",
)
# spec codes are ASCII letters, digits and . - _ / (a prefix's next string is in reach)
PREFIXES = ("C2", "C22", "C22.", "C2-", "c2", "C", "Cz", "z", "E")
# per patient: (date, time or None, value); ids follow this order within a patient
SERIES: tuple[tuple[tuple[date, datetime | None, float | None], ...], ...] = (
    ((date(2022, 1, 5), None, 5.0), (date(2022, 1, 5), None, 6.0)),
    ((date(2022, 1, 5), datetime(2022, 1, 5, 9), 7.0), (date(2022, 1, 5), None, 8.0)),
    ((date(2023, 1, 1), None, 9.0), (date(2021, 1, 1), None, None), (date(2022, 1, 1), None, 1.0)),
    (
        (date(2022, 2, 2), datetime(2022, 2, 2, 10), 2.0),
        (date(2022, 2, 2), datetime(2022, 2, 2, 8), 3.0),
    ),
)


def _outcomes() -> Iterator[Parsed]:
    for n, code in enumerate(CODES):
        pid = f"p{n}"
        records: list[Any] = [
            Patient(
                source_id=pid,
                sex="female",
                birth_date=date(1970, 1, 1),
                identity=Identity(family_name="F", given_name="G"),
            ),
            Condition(f"{pid}-c", pid, Code("ICD-10", code, "x"), onset=date(2020, 1, 1)),
        ]
        for i, (day, when, value) in enumerate(SERIES[n % len(SERIES)]):
            records.append(
                Measurement(
                    source_id=f"{pid}-m{i}",
                    patient_id=pid,
                    code=Code("LOINC", "4548-4", "HbA1c"),
                    time=when or day,
                    value=value,
                    unit="%",
                )
            )
        yield Parsed("test", f"patient {n}", tuple(records))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Node]:
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")
    init_node(tmp_path / "n", "n", url)
    opened = open_node(tmp_path / "n")
    opened.store.ingest(_outcomes(), source="test")
    yield opened
    opened.close()


def _count_spec(code: str) -> QuerySpec:
    return QuerySpec.parse(
        {
            "cohort": {"filters": [{"domain": "condition", "system": "ICD-10", "code": code}]},
            "statistics": [{"id": "n", "kind": "count"}],
        }
    )


def test_prefixes_match_exactly_what_python_startswith_matches(node: Node) -> None:
    for prefix in PREFIXES:
        want = sum(code.startswith(prefix) for code in CODES)
        assert cohort_person_ids(node.store, _count_spec(prefix + "*")).size == want, prefix
    for code in (c for c in CODES if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.\-_/]*", c)):
        assert cohort_person_ids(node.store, _count_spec(code)).size == 1


def test_has_variables_use_the_same_prefix_semantics(node: Node) -> None:
    for prefix in PREFIXES:
        spec = QuerySpec.parse(
            {
                "variables": {
                    "x": {
                        "kind": "has",
                        "domain": "condition",
                        "system": "ICD-10",
                        "code": prefix + "*",
                    }
                },
                "statistics": [{"id": "s", "kind": "proportion", "variable": "x"}],
            }
        )
        result = compute_local(node.store, spec, min_cell_size=1)
        # the proportion's cells: yes, no, n
        assert result.values[0] == sum(code.startswith(prefix) for code in CODES), prefix


def test_earliest_and_latest_follow_date_time_then_row_order(node: Node) -> None:
    """The oracle reads the rows back (ids included) and picks in Python."""
    m = sa.table(
        "measurement",
        sa.column("id"),
        sa.column("time_date"),
        sa.column("time_datetime"),
        sa.column("value"),
    )
    with node.store.connect() as conn:
        rows = conn.execute(sa.select(m.c.id, m.c.time_date, m.c.time_datetime, m.c.value)).all()
    # a NULL time sorts first ascending on SQLite and last on PostgreSQL (SERIES[1])
    for pick in ("earliest", "latest"):
        spec = QuerySpec.parse(
            {
                "variables": {
                    "v": {"kind": "measurement", "system": "LOINC", "code": "4548-4", "pick": pick}
                },
                "statistics": [{"id": "s", "kind": "sum", "variable": "v"}],
            }
        )
        got = compute_local(node.store, spec, min_cell_size=1).values
        assert got[0] == len(CODES)  # every patient has a value
        assert got[1] == pytest.approx(_oracle_sum(node, rows, pick))


def _oracle_sum(node: Node, rows: Sequence[Any], pick: str) -> float:
    null_first = node.store.engine.dialect.name == "sqlite"
    total = 0.0
    chunks = _group(rows)
    for chunk in chunks:
        present = [r for r in chunk if r.value is not None]

        def key(r: Any) -> tuple[Any, ...]:
            t = r.time_datetime
            missing = t is None
            return (r.time_date, (not missing) if null_first else missing, t or datetime.min, r.id)

        ordered = sorted(present, key=key)
        total += (ordered[0] if pick == "earliest" else ordered[-1]).value
    return total


def _group(rows: Sequence[Any]) -> list[list[Any]]:
    """Rows per patient: each patient's measurements were ingested together, in order."""
    ordered = sorted(rows, key=lambda r: r.id)
    sizes = [len(SERIES[n % len(SERIES)]) for n in range(len(CODES))]
    out, start = [], 0
    for size in sizes:
        out.append(ordered[start : start + size])
        start += size
    return out


def test_sqlite_searches_the_code_index_for_prefixes(tmp_path: Path) -> None:
    init_node(tmp_path / "n", "n")
    with open_node(tmp_path / "n") as node, node.store.connect() as conn:
        from medspace.analytics.features import cohort_query

        sql = cohort_query(_count_spec("C22*")).compile(
            conn, compile_kwargs={"literal_binds": True}
        )
        plan = " ".join(str(r[3]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    assert "ix_condition_occurrence_code_person (code_system=? AND code>? AND code<?)" in plan
