"""The linkage index: probes find exact and fuzzy matches through indexes, on SQLite and
PostgreSQL, and nothing under another key or with a different ID."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from medspace.linkage import LinkageInputError, LinkageKey, ensure_table, probe, tokens_for
from medspace.linkage.index import _EXACT_QUERY, _candidates_query, drop_stale, write_tokens
from medspace.linkage.tokens import LinkageTokens
from medspace.synth import make_resident_id

KEY = LinkageKey(bytes(range(32)))
BORN = "1961-03-14"

#: (patient, national ID or None, name, sex) of one hospital; all born on BORN.
PEOPLE = [
    ("P1", "11010519491231002X", "张建华", "male"),
    ("P2", None, "张建桦", "male"),  # no ID, a typo of P1's name: likely P1 registered again
    ("P3", "440524188001010014", "李秀英", "female"),  # same birth date, another person
    ("P4", None, "Jonathan Smith", "male"),
    ("P5", None, "王伟", "male"),
]
OTHER_ID = make_resident_id("110105", date(1961, 3, 14), 3)  # nobody's here
UNKNOWN_ID = make_resident_id("440524", date(1980, 5, 7), 20)


def tokens(nid: str | None, name: str, sex: str, key: LinkageKey = KEY) -> LinkageTokens:
    return tokens_for(
        key,
        national_id=nid,
        id_system="CN-RID" if nid else None,
        name=name,
        birth_date=BORN,
        sex=sex,
    )


@pytest.fixture
def index(engine: sa.Engine) -> sa.Engine:
    ensure_table(engine)
    rows = [(source_id, tokens(nid, name, sex)) for source_id, nid, name, sex in PEOPLE]
    with engine.begin() as conn:
        write_tokens(conn, rows)
    return engine


def test_an_id_finds_its_patient_exactly(index: sa.Engine) -> None:
    matches = probe(index, tokens("11010519491231002X", "张建华", "male"))
    assert [(m.person_source_id, m.kind, m.score) for m in matches] == [("P1", "exact", 1.0)]


def test_without_an_id_a_typo_is_found_by_its_clk(index: sa.Engine) -> None:
    asked = tokens(None, "张建华", "male")
    matches = probe(index, asked)
    assert {m.person_source_id for m in matches} == {"P1", "P2"}
    assert all(m.kind == "fuzzy" and m.score >= 0.83 for m in matches)
    assert matches == sorted(matches, key=lambda m: -m.score)


def test_a_different_id_rules_a_candidate_out_however_alike(index: sa.Engine) -> None:
    # An ID nobody here has: P1 is excluded (another ID), P2 (no ID) may still be them.
    asked = tokens(OTHER_ID, "张建华", "male")
    assert [m.person_source_id for m in probe(index, asked)] == ["P2"]


def test_a_patient_this_node_does_not_know_gets_nothing(index: sa.Engine) -> None:
    assert probe(index, tokens(None, "Maria Gonzalez", "female")) == []
    assert probe(index, tokens(UNKNOWN_ID, "赵敏", "female")) == []


def test_tokens_under_another_key_never_match(index: sa.Engine) -> None:
    other = LinkageKey(os.urandom(32))
    assert probe(index, tokens("11010519491231002X", "张建华", "male", other)) == []
    assert probe(index, tokens(None, "张建华", "male", other)) == []
    # Even a CLK copied verbatim does not match rows made under another key.
    stolen = replace(tokens(None, "张建华", "male", other), clk=tokens(None, "张建华", "male").clk)
    assert probe(index, stolen) == []


def test_reindexing_replaces_rows_and_drops_other_keys(index: sa.Engine) -> None:
    with index.begin() as conn:
        write_tokens(conn, [("P4", None)])  # P4 has nothing left to link on
        write_tokens(conn, [("P3", tokens(None, "李秀英", "female"))])
        stale = LinkageKey(os.urandom(32))
        write_tokens(conn, [("P9", tokens(None, "Old Key", "male", stale))])
        assert drop_stale(conn, KEY.key_id) == 1
        left = conn.execute(sa.text("select person_source_id from linkage_token")).scalars()
        assert sorted(left) == ["P1", "P2", "P3", "P5"]
    assert probe(index, tokens(None, "Jonathan Smith", "male")) == []


def test_threshold_must_be_a_similarity(index: sa.Engine) -> None:
    with pytest.raises(LinkageInputError, match="threshold"):
        probe(index, tokens(None, "张建华", "male"), threshold=0.0)


def test_clks_of_another_schema_are_refused(index: sa.Engine) -> None:
    odd = replace(tokens(None, "张建华", "male"), clk_schema="clk1/2048/1-1-1-1-1-1-1")
    with pytest.raises(LinkageInputError, match="same release"):
        probe(index, odd)


def _plan(conn: sa.Connection, statement: object, params: dict[str, object]) -> str:
    compiled = statement.compile(dialect=sqlite.dialect())  # type: ignore[attr-defined]
    values = tuple({**compiled.params, **params}[name] for name in compiled.positiontup)
    rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), values).all()
    return "\n".join(str(row[-1]) for row in rows)


def test_probes_search_indexes_and_never_scan_the_table(tmp_path: object) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/index.db")  # type: ignore[str-bytes-safe]
    ensure_table(engine)
    asked = tokens("11010519491231002X", "张建华", "male")
    with engine.connect() as conn:
        exact = _plan(conn, _EXACT_QUERY, {"exact": asked.exact, "key_id": KEY.key_id})
        assert "USING INDEX ix_linkage_token_exact_token" in exact
        kinds = tuple(sorted(asked.blocks))
        fuzzy = _plan(
            conn,
            _candidates_query(kinds),
            {"key_id": KEY.key_id, **{f"b_{k}": v for k, v in asked.blocks.items()}},
        )
    for kind in kinds:
        assert f"USING INDEX ix_linkage_token_block_{kind}" in fuzzy
    assert "SCAN linkage_token" not in exact + fuzzy
    engine.dispose()


@pytest.mark.postgres
def test_postgres_probes_can_use_the_indexes(pg_schema_url: str) -> None:
    from sqlalchemy.dialects import postgresql

    engine = sa.create_engine(pg_schema_url)
    ensure_table(engine)
    asked = tokens("11010519491231002X", "张建华", "male")
    kinds = tuple(sorted(asked.blocks))
    params = {"key_id": KEY.key_id, "exact": asked.exact}
    params.update({f"b_{k}": v for k, v in asked.blocks.items()})
    plans = []
    with engine.connect() as conn:
        conn.execute(sa.text("SET enable_seqscan = off"))  # tiny table: ask for the index
        for statement in (_EXACT_QUERY, _candidates_query(kinds)):
            compiled = statement.compile(dialect=postgresql.dialect())
            wanted = {n: params.get(n, v) for n, v in compiled.params.items()}
            rows = conn.exec_driver_sql("EXPLAIN " + str(compiled), wanted).all()
            plans.append("\n".join(row[0] for row in rows))
    engine.dispose()
    assert "ix_linkage_token_exact_token" in plans[0]
    for kind in kinds:
        assert f"ix_linkage_token_block_{kind}" in plans[1]
    assert "Seq Scan" not in "\n".join(plans)
