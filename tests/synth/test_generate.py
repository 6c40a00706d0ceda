"""generate(): layout, determinism, arguments, failure handling."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import medspace.synth.generator as generator
from medspace.synth import SynthError, generate, iter_charts

from .conftest import SMALL, hospitals


def digest_tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_layout_follows_the_contract(small_run: Path) -> None:
    assert (small_run / "ground_truth.json").is_file()
    assert (small_run / "linkage_truth.json").is_file()
    listed = hospitals(small_run)
    assert [h["id"] for h in listed] == ["h1", "h2", "h3"]
    assert [h["locale"] for h in listed] == ["zh_CN", "en_US", "zh_CN"]
    assert all(h["patients"] == SMALL["patients"] for h in listed)
    assert len({h["name"] for h in listed}) == 3
    for hospital in listed:
        root = small_run / hospital["id"]
        bundles = sorted(p.name for p in (root / "fhir" / "bundles").iterdir())
        assert bundles == [f"{n:06d}.json" for n in range(1, SMALL["patients"] + 1)]
        for kind in (
            "Patient",
            "Encounter",
            "Condition",
            "MedicationRequest",
            "Observation",
            "AllergyIntolerance",
            "Procedure",
            "DocumentReference",
        ):
            assert (root / "fhir" / "ndjson" / f"{kind}.ndjson").is_file()
        assert (root / "hl7v2" / "adt_a01.hl7").is_file()
        assert (root / "hl7v2" / "oru_r01.hl7").is_file()
        for name in (
            "patients",
            "encounters",
            "diagnoses",
            "drugs",
            "labs",
            "allergies",
            "notes",
            "mapping",
        ):
            suffix = ".yaml" if name == "mapping" else ".csv"
            assert (root / "csv" / f"{name}{suffix}").is_file()
        assert (root / "notes_gold.jsonl").is_file()
    assert not list(small_run.rglob(".parts")), "parallel parts were left behind"


def test_same_seed_writes_byte_identical_files(tmp_path: Path, small_run: Path) -> None:
    again = tmp_path / "again"
    generate(again, **SMALL)  # type: ignore[arg-type]
    assert digest_tree(again) == digest_tree(small_run)


def test_parallel_workers_write_the_same_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(generator, "_CHUNK", 25)  # several ranges per hospital
    arguments = {"hospitals": 2, "patients": 60, "seed": 3, "locale": "en_US"}
    generate(tmp_path / "one", workers=1, **arguments)  # type: ignore[arg-type]
    summary = generate(tmp_path / "two", workers=2, **arguments)  # type: ignore[arg-type]
    assert summary.workers == 2
    assert digest_tree(tmp_path / "one") == digest_tree(tmp_path / "two")


def test_another_seed_writes_other_people(tmp_path: Path) -> None:
    for seed in (7, 8):
        generate(tmp_path / str(seed), hospitals=1, patients=20, seed=seed, locale="zh_CN")
    mine = (tmp_path / "7" / "h1" / "fhir" / "ndjson" / "Patient.ndjson").read_bytes()
    theirs = (tmp_path / "8" / "h1" / "fhir" / "ndjson" / "Patient.ndjson").read_bytes()
    assert mine != theirs


def test_iter_charts_yields_what_generate_writes(small_run: Path) -> None:
    charts = list(iter_charts(**SMALL))  # type: ignore[arg-type]
    assert len(charts) == SMALL["hospitals"] * SMALL["patients"]
    first_bundle = (small_run / "h1" / "fhir" / "bundles" / "000001.json").read_text("utf-8")
    assert charts[0].patient.source_id == "H1-P000001"
    assert charts[0].patient.identity.mrn in first_bundle
    assert all(chart.notes for chart in charts), "every patient has at least one note"


def test_progress_counts_every_patient_once(tmp_path: Path) -> None:
    seen: list[int] = []
    summary = generate(tmp_path / "p", hospitals=2, patients=110, seed=7, progress=seen.append)
    assert sum(seen) == 220 == summary.patients
    assert len(seen) >= 4 and all(n > 0 for n in seen)
    assert "2 hospitals, 220 patients" in str(summary)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"hospitals": 0, "patients": 10}, "hospitals must be"),  # no hospital
        ({"hospitals": 1, "patients": 0}, "patients must be"),  # no patient
        ({"hospitals": 1, "patients": 10, "locale": "fr_FR"}, "unknown locale"),
        ({"hospitals": 2, "patients": 10, "shared_share": 1.5}, "between 0 and 1"),
        ({"hospitals": 2, "patients": 10, "shared_share": float("nan")}, "between 0 and 1"),
        ({"hospitals": 1, "patients": 10, "workers": 0}, "workers must be"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(
    tmp_path: Path, arguments: dict, message: str
) -> None:
    with pytest.raises(SynthError, match=message):
        generate(tmp_path / "out", **arguments)
    assert list(tmp_path.iterdir()) == []


def test_a_non_empty_output_directory_is_refused_and_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(SynthError, match="not empty"):
        generate(out, hospitals=1, patients=5)
    assert (out / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_empty_output_directory_is_used(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    generate(out, hospitals=1, patients=3)
    assert (out / "h1" / "fhir" / "bundles" / "000003.json").is_file()


def test_a_failure_midway_leaves_nothing_behind(tmp_path: Path) -> None:
    def explode(_: int) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        generate(tmp_path / "out", hospitals=2, patients=120, seed=7, progress=explode)
    assert list(tmp_path.iterdir()) == []


def test_one_hospital_has_no_shared_patients(tmp_path: Path) -> None:
    summary = generate(tmp_path / "solo", hospitals=1, patients=40)
    assert summary.shared_patients == 0 and summary.shared_persons == 0
