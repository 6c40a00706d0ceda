"""Table privacy: measures cross-checked against pycanon, hierarchies, anonymisation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medspace.deid.errors import TableError
from medspace.deid.table import (
    DateHierarchy,
    ICD10Hierarchy,
    IntervalHierarchy,
    PrefixHierarchy,
    Table,
    anonymise,
    icd10_chapter,
    measure_table,
    read_csv,
    write_csv,
)

QI = ["age", "sex", "zip"]
PYCANON = "pycanon is the test-only reference implementation"
DIAGNOSES = ["I10", "E11.9", "J45.909", "I21.4", "C50.9", "F32.9", "K21.9", "N18.3"]


def _table(n: int, seed: int = 0) -> Table:
    rng = np.random.default_rng(seed)
    ages = np.clip(rng.normal(55, 18, n).astype(int), 0, 104)
    zips = rng.choice([f"{z:05d}" for z in rng.integers(1000, 99999, 120)], n)
    return Table(
        ["name", "age", "sex", "zip", "diagnosis", "los"],
        {
            "name": [f"person {i}" for i in range(n)],
            "age": [str(a) for a in ages],
            "sex": list(rng.choice(["male", "female"], n)),
            "zip": list(zips),
            "diagnosis": list(rng.choice(DIAGNOSES, n)),
            "los": [str(x) for x in rng.integers(1, 15, n)],
        },
    )


def _frame(table: Table):  # type: ignore[no-untyped-def]
    pd = pytest.importorskip("pandas", reason="pandas comes with pycanon (test-only)")
    frame = pd.DataFrame({c: table.column(c) for c in table.columns})
    released = ~((frame["age"] == "*") & (frame["sex"] == "*") & (frame["zip"] == "*"))
    frame = frame[released].reset_index(drop=True)
    frame["los"] = frame["los"].astype(int)
    return frame


@pytest.mark.parametrize("seed", [0, 1])
def test_measures_agree_with_pycanon(seed: int) -> None:
    anonymity = pytest.importorskip(
        "pycanon.anonymity", reason="pycanon is the test-only reference"
    )
    result = anonymise(_table(1500, seed), QI, k=4, sensitive="diagnosis", max_suppression=0.1)
    frame = _frame(result.table)
    after = result.after
    assert anonymity.k_anonymity(frame, QI) == after.k
    assert anonymity.l_diversity(frame, QI, ["diagnosis"]) == after.l_distinct
    assert anonymity.entropy_l_diversity(frame, QI, ["diagnosis"]) == math.floor(
        after.l_entropy or 0
    )
    assert anonymity.t_closeness(frame, QI, ["diagnosis"]) == pytest.approx(after.t, abs=1e-9)
    ordered = measure_table(result.table, QI, sensitive="los")  # numeric: ordered EMD
    assert anonymity.t_closeness(frame, QI, ["los"]) == pytest.approx(ordered.t, abs=1e-9)


def test_raw_table_measures_agree_with_pycanon() -> None:
    anonymity = pytest.importorskip(
        "pycanon.anonymity", reason="pycanon is the test-only reference"
    )
    table = _table(800, 3)
    report = measure_table(table, ["sex", "diagnosis"], sensitive="los")
    frame = _frame(table)
    assert anonymity.k_anonymity(frame, ["sex", "diagnosis"]) == report.k
    assert anonymity.l_diversity(frame, ["sex", "diagnosis"], ["los"]) == report.l_distinct


def test_five_anonymity_is_reached_with_bounded_suppression() -> None:
    table = _table(3000)
    result = anonymise(table, QI, k=5, pack="hipaa-safe-harbor")
    assert result.before.k == 1 and result.after.k >= 5
    assert result.after.risk.prosecutor_max <= 0.2
    assert result.suppressed <= 0.05 * table.rows
    assert result.dropped_columns == ("name",)
    assert "name" not in result.table.columns
    assert 0 < result.loss < 1
    zips = {z for z in result.table.column("zip") if z != "*"}
    assert all(z.endswith("**") for z in zips)  # HIPAA: at most ZIP3


def test_highest_risk_target_means_the_matching_k() -> None:
    result = anonymise(_table(3000), QI, max_risk=0.09)
    assert result.after.risk.prosecutor_max <= 0.09
    assert result.after.k >= 12


def test_l_diversity_target_is_met() -> None:
    result = anonymise(_table(3000), QI, k=3, l=3, sensitive="diagnosis", max_suppression=0.1)
    assert (result.after.l_distinct or 0) >= 3


def test_ages_over_89_are_one_group_under_hipaa() -> None:
    hierarchy = IntervalHierarchy((5, 10), top_code=90)
    assert [hierarchy.generalise("93", lvl) for lvl in range(4)] == ["90+", "90+", "90+", "*"]
    assert [hierarchy.generalise("47", lvl) for lvl in range(4)] == ["47", "45-49", "40-49", "*"]
    assert hierarchy.generalise("87", 2) == "80-89"


@pytest.mark.parametrize(
    ("code", "category", "chapter"),
    [
        ("I21.4", "I21", "IX I00-I99"),  # acute myocardial infarction
        ("E11.9", "E11", "IV E00-E90"),  # type 2 diabetes
        ("S72.0", "S72", "XIX S00-T98"),  # femoral neck fracture
        ("Z00.0", "Z00", "XXI Z00-Z99"),  # general examination
    ],
)
def test_icd10_codes_generalise_to_category_and_chapter(
    code: str, category: str, chapter: str
) -> None:
    h = ICD10Hierarchy()
    assert (h.generalise(code, 1), h.generalise(code, 2), h.generalise(code, 3)) == (
        category,
        chapter,
        "*",
    )
    assert icd10_chapter("XYZ") is None


def test_dates_and_zip_codes_generalise() -> None:
    assert [DateHierarchy().generalise("2024-03-05", lvl) for lvl in range(5)] == [
        "2024-03-05",
        "2024-03",
        "2024",
        "2020-2029",
        "*",
    ]
    zips = PrefixHierarchy(5, restricted=frozenset({"036"}), restricted_level=2)
    assert zips.generalise("03601", 2) == "000**"
    assert zips.generalise("02139", 2) == "021**"


def test_too_small_or_unknown_input_is_refused() -> None:
    with pytest.raises(TableError, match="fewer than k"):
        anonymise(_table(3), QI, k=5)
    with pytest.raises(TableError, match="no column 'postcode'"):
        anonymise(_table(30), ["postcode"])
    with pytest.raises(TableError, match="sensitive column"):
        anonymise(_table(30), QI, l=2)


def test_csv_round_trip_and_bad_csv(tmp_path) -> None:  # type: ignore[no-untyped-def]
    table = _table(20)
    path = tmp_path / "t.csv"
    write_csv(table, path)
    assert read_csv(path).data == table.data
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3\n", encoding="utf-8")
    with pytest.raises(TableError, match="row 3 has 1 fields"):
        read_csv(bad)
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("姓名,年龄\n王秀英,65\n".encode("gb18030"))
    with pytest.raises(TableError, match="gb18030"):
        read_csv(gbk)
    assert read_csv(gbk, encoding="gb18030").column("年龄") == ["65"]


def test_population_table_lowers_journalist_risk() -> None:
    sample = _table(400, 5)
    population = _table(4000, 5)
    report = measure_table(sample, ["sex", "diagnosis"], population=population)
    alone = measure_table(sample, ["sex", "diagnosis"])
    assert report.risk.population and not alone.risk.population
    assert report.risk.journalist_max <= alone.risk.journalist_max
    assert report.risk.marketer < alone.risk.marketer


def test_hundred_thousand_rows_are_five_anonymised() -> None:
    result = anonymise(_table(100_000, 9), QI, k=5, pack="hipaa-safe-harbor")
    assert result.after.k >= 5
