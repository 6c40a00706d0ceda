"""Patients known at several hospitals, and the ground truth that says who they are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medspace.synth import generate

from .conftest import SMALL, csv_rows, hospitals

NAME = ("XING", "MING")
ADDRESS = ("SHENG", "SHI", "QU", "XXDZ", "YZBM", "GJ")
FIELD_COLUMNS = {
    "family_name": "XING",
    "given_name": "MING",
    "national_id": "ID_NO",
    "phone": "LXDH",
}


def load(run: Path) -> tuple[dict, dict[str, dict[str, dict[str, str]]]]:
    truth = json.loads((run / "linkage_truth.json").read_text(encoding="utf-8"))
    rows = {
        h["id"]: {
            row["PAT_ID"]: row
            for row in csv_rows(run / h["id"] / "csv" / "patients.csv", h["csv_encoding"])
        }
        for h in hospitals(run)
    }
    return truth, rows


def test_the_configured_share_of_each_hospital_is_shared(small_run: Path) -> None:
    truth, _ = load(small_run)
    ground = json.loads((small_run / "ground_truth.json").read_text(encoding="utf-8"))
    target = round(0.15 * SMALL["patients"])
    per_hospital: dict[str, int] = {}
    listed = set()
    for person in truth["persons"]:
        assert 2 <= len(person["records"]) <= 3
        assert len({r["hospital"] for r in person["records"]}) == len(person["records"])
        for record in person["records"]:
            key = (record["hospital"], record["patient_id"])
            assert key not in listed, "a patient belongs to two persons"
            listed.add(key)
            per_hospital[record["hospital"]] = per_hospital.get(record["hospital"], 0) + 1
    for hospital_id, count in per_hospital.items():
        assert target - 1 <= count <= target
        assert ground["realized"][hospital_id]["shared_patients"] == count
    assert truth["persons_total"] == len(truth["persons"])


def test_a_shared_person_has_one_identity_except_for_the_recorded_noise(small_run: Path) -> None:
    truth, rows = load(small_run)
    kinds_seen = set()
    for person in truth["persons"]:
        records = [rows[r["hospital"]][r["patient_id"]] for r in person["records"]]
        noise = person["noise"]
        noisy_id = noise["patient_id"] if noise else None
        clean = [row for row in records if row["PAT_ID"] != noisy_id]
        reference = clean[0]
        for row in records:
            assert (row["XB"], row["CSRQ"]) == (reference["XB"], reference["CSRQ"])
        for row in clean[1:]:
            for column in (*NAME, "ID_NO", "LXDH", *ADDRESS):
                assert row[column] == reference[column], (person["person"], column)
        if noise is None:
            continue
        noisy = rows[noise["hospital"]][noisy_id]
        if person.get("showcase"):  # a name typo and no ID: checked in the showcase test
            assert noisy["ID_NO"] == "" and noisy["MING"] + noisy["XING"] != ""
            continue
        kinds_seen.add(noise["kind"])
        if noise["kind"] == "new_address":
            assert any(noisy[c] != reference[c] for c in ADDRESS)
        else:
            column = FIELD_COLUMNS[noise["field"]]
            assert noisy[column] != reference[column]
            if noise["kind"] != "name_typo":
                assert noisy[column] == ""
        unchanged = {c for c in (*NAME, "ID_NO", "LXDH")} - {FIELD_COLUMNS.get(noise["field"])}
        for column in unchanged:
            assert noisy[column] == reference[column]
    assert len(kinds_seen) >= 3, "the run exercises most kinds of noise"


def test_noise_is_applied_at_a_hospital_that_is_not_the_first(small_run: Path) -> None:
    truth, _ = load(small_run)
    noisy = [p for p in truth["persons"] if p["noise"]]
    assert 0.15 <= len(noisy) / len(truth["persons"]) <= 0.45
    for person in noisy:
        assert person["noise"]["patient_id"] != person["records"][0]["patient_id"]


@pytest.mark.parametrize(("hospitals_count", "share"), [(2, 0.0), (1, 0.15)])
def test_no_sharing_when_turned_off_or_alone(
    tmp_path: Path, hospitals_count: int, share: float
) -> None:
    out = tmp_path / "run"
    generate(out, hospitals=hospitals_count, patients=15, shared_share=share, locale="en_US")
    truth = json.loads((out / "linkage_truth.json").read_text(encoding="utf-8"))
    assert truth["persons"] == []


def test_everyone_shared_when_the_share_is_one(tmp_path: Path) -> None:
    out = tmp_path / "all"
    summary = generate(out, hospitals=2, patients=12, shared_share=1.0, locale="zh_CN")
    assert summary.shared_patients == 24


@pytest.mark.parametrize("locale", ["mixed", "zh_CN", "en_US"])
def test_three_hospitals_always_have_one_showcase_person(tmp_path: Path, locale: str) -> None:
    out = tmp_path / locale
    generate(out, hospitals=3, patients=40, seed=3, locale=locale)
    truth, rows = load(out)
    showcases = [p for p in truth["persons"] if p.get("showcase")]
    assert len(showcases) == 1 and truth["showcase"] == showcases[0]["person"]
    person = showcases[0]
    assert len({r["hospital"] for r in person["records"]}) == 3
    noise = person["noise"]
    assert noise["kind"] == "name_typo+missing_id"
    assert noise["patient_id"] == person["records"][2]["patient_id"]
    home = rows[person["records"][0]["hospital"]][person["records"][0]["patient_id"]]
    noisy = rows[noise["hospital"]][noise["patient_id"]]
    assert home["ID_NO"] != "" and noisy["ID_NO"] == ""
    assert (home["XING"], home["MING"]) != (noisy["XING"], noisy["MING"])
    assert (home["XB"], home["CSRQ"]) == (noisy["XB"], noisy["CSRQ"])


def test_two_hospitals_have_no_showcase(tmp_path: Path) -> None:
    generate(tmp_path / "two", hospitals=2, patients=30, seed=3, locale="zh_CN")
    truth, _ = load(tmp_path / "two")
    assert truth["showcase"] is None
    assert not any(p.get("showcase") for p in truth["persons"])
