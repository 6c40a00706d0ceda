"""The planted clinical signals: ground_truth.json says what the data holds."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from medspace.synth import generate

from .conftest import ndjson

SORAFENIB = "L01EX02"


def truth(run: Path) -> dict[str, Any]:
    return json.loads((run / "ground_truth.json").read_text(encoding="utf-8"))


def age(birth: str, reference: str) -> int:
    born, on = date.fromisoformat(birth), date.fromisoformat(reference)
    return on.year - born.year - int((on.month, on.day) < (born.month, born.day))


def table(run: Path, hospital: str = "h1") -> dict[str, dict[str, Any]]:
    """Per patient: sex, birth date, condition codes, drug codes, labs, response, encounters."""
    folder = run / hospital / "fhir" / "ndjson"
    patients: dict[str, dict[str, Any]] = {}
    for p in ndjson(folder / "Patient.ndjson"):
        patients[f"Patient/{p['id']}"] = {
            "sex": p["gender"],
            "birth": p["birthDate"],
            "conditions": {},
            "drugs": set(),
            "hba1c": [],
            "response": None,
            "starts": [],
        }
    for c in ndjson(folder / "Condition.ndjson"):
        code = c["code"]["coding"][0]["code"]
        patients[c["subject"]["reference"]]["conditions"][code] = c["onsetDateTime"]
    for m in ndjson(folder / "MedicationRequest.ndjson"):
        patients[m["subject"]["reference"]]["drugs"].add(
            m["medicationCodeableConcept"]["coding"][0]["code"]
        )
    for o in ndjson(folder / "Observation.ndjson"):
        row = patients[o["subject"]["reference"]]
        code = o["code"]["coding"][0]["code"]
        if code == "4548-4":
            row["hba1c"].append((o["effectiveDateTime"], o["valueQuantity"]["value"]))
        elif code == "88040-1":
            row["response"] = o["valueCodeableConcept"]["coding"][0]["code"]
    for e in ndjson(folder / "Encounter.ndjson"):
        patients[e["subject"]["reference"]]["starts"].append(e["period"]["start"])
    return patients


@pytest.fixture(scope="module")
def cohort_table(cohort: Path) -> dict[str, dict[str, Any]]:
    return table(cohort)


def within(observed: float, expected: float, variance: float, sds: float = 4.0) -> bool:
    return abs(observed - expected) <= sds * math.sqrt(variance)


def test_ground_truth_documents_the_signals(cohort: Path) -> None:
    document = truth(cohort)
    response = document["signals"]["sorafenib_response"]
    assert response["observation"]["code"] == "88040-1"
    assert response["drug"]["code"] == SORAFENIB
    assert response["condition"]["code"] == "C22.0"
    assert {(p["age_band"], p["sex"]) for p in response["probability"]} == {
        (band, sex) for band in ("<40", "40-59", "60+") for sex in ("male", "female")
    }
    mi = document["signals"]["myocardial_infarction"]
    assert set(mi["coefficients"]) == {
        "intercept",
        "age",
        "male",
        "diabetes",
        "hypertension",
        "hba1c",
    }
    assert set(mi["features"]) == set(mi["coefficients"]) - {"intercept"}
    assert document["linkage_truth"] == "linkage_truth.json"


def test_realized_counts_match_the_data(cohort: Path, cohort_table: dict) -> None:
    realized = truth(cohort)["realized"]["h1"]
    rows = cohort_table.values()
    assert realized["patients"] == len(cohort_table) == 2000
    assert realized["hcc"] == sum("C22.0" in r["conditions"] for r in rows)
    assert realized["mi"] == sum("I21.9" in r["conditions"] for r in rows)
    assert realized["hcc_treated"] == sum(SORAFENIB in r["drugs"] for r in rows)
    assert realized["responders"] == sum(r["response"] == "268910001" for r in rows)


def test_hcc_is_common_enough_to_study(cohort_table: dict) -> None:
    share = sum("C22.0" in r["conditions"] for r in cohort_table.values()) / len(cohort_table)
    assert 0.15 <= share <= 0.25


def test_response_is_recorded_exactly_for_treated_hcc(cohort_table: dict) -> None:
    for row in cohort_table.values():
        treated = SORAFENIB in row["drugs"]
        assert treated == (row["response"] is not None)
        if treated:
            assert "C22.0" in row["conditions"]
            assert row["response"] in {"268910001", "359746009", "271299001"}


def test_response_rates_follow_the_documented_probabilities(
    cohort: Path, cohort_table: dict
) -> None:
    signal = truth(cohort)["signals"]["sorafenib_response"]
    reference = truth(cohort)["signals"]["age_reference_date"]
    bands = signal["age_bands"]
    p_of = {(p["age_band"], p["sex"]): p["p_response"] for p in signal["probability"]}
    groups: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for row in cohort_table.values():
        if row["response"] is None:
            continue
        years = age(row["birth"], reference)
        band = next(b["label"] for b in bands if b["min_age"] <= years <= b["max_age"])
        groups[(band, row["sex"])].append(row["response"] == signal["responder_value"]["code"])
    treated = sum(len(v) for v in groups.values())
    assert treated >= 250
    expected = sum(p_of[key] * len(v) for key, v in groups.items())
    variance = sum(p_of[key] * (1 - p_of[key]) * len(v) for key, v in groups.items())
    observed = sum(sum(v) for v in groups.values())
    assert within(observed, expected, variance)
    for key, outcomes in groups.items():
        p = p_of[key]
        assert within(sum(outcomes), p * len(outcomes), p * (1 - p) * len(outcomes)), key
    # The documented contrast is visible: under-40s respond more than over-60s.
    young = [o for (band, _), v in groups.items() if band == "<40" for o in v]
    old = [o for (band, _), v in groups.items() if band == "60+" for o in v]
    assert sum(young) / len(young) > sum(old) / len(old)


def mi_probability(row: dict, document: dict) -> float:
    model = document["signals"]["myocardial_infarction"]["coefficients"]
    years = age(row["birth"], document["signals"]["age_reference_date"])
    earliest = min(row["hba1c"])[1]
    logit = (
        model["intercept"]
        + model["age"] * (years - 60) / 10
        + model["male"] * (row["sex"] == "male")
        + model["diabetes"] * ("E11.9" in row["conditions"])
        + model["hypertension"] * ("I10" in row["conditions"])
        + model["hba1c"] * (earliest - 6.0)
    )
    return 1 / (1 + math.exp(-logit))


def test_mi_follows_the_documented_logistic_model(cohort: Path, cohort_table: dict) -> None:
    document = truth(cohort)
    for subset in ("all", "diabetic", "not diabetic"):
        rows = [
            r
            for r in cohort_table.values()
            if subset == "all" or (("E11.9" in r["conditions"]) == (subset == "diabetic"))
        ]
        p = [mi_probability(r, document) for r in rows]
        observed = sum("I21.9" in r["conditions"] for r in rows)
        assert within(observed, sum(p), sum(q * (1 - q) for q in p)), subset
    assert (
        abs(
            document["realized"]["h1"]["expected_mi"]
            - sum(mi_probability(r, document) for r in cohort_table.values())
        )
        < 0.01
    )


def test_every_patient_has_a_baseline_hba1c_at_the_first_encounter(cohort_table: dict) -> None:
    for row in cohort_table.values():
        first = min(row["starts"], key=datetime.fromisoformat)
        earliest = min(row["hba1c"], key=lambda pair: datetime.fromisoformat(pair[0]))
        assert datetime.fromisoformat(earliest[0]).date() == datetime.fromisoformat(first).date()


def test_mi_happens_only_within_follow_up(cohort: Path, cohort_table: dict) -> None:
    days = truth(cohort)["signals"]["follow_up_days"]
    for row in cohort_table.values():
        if "I21.9" not in row["conditions"]:
            continue
        first = min(datetime.fromisoformat(s) for s in row["starts"]).date()
        onset = date.fromisoformat(row["conditions"]["I21.9"])
        assert first < onset <= first + timedelta(days=days)


@pytest.mark.slow
def test_a_logistic_fit_recovers_the_mi_coefficients(tmp_path: Path) -> None:
    numpy = pytest.importorskip("numpy")
    out = tmp_path / "big"
    generate(out, hospitals=1, patients=30000, seed=5, locale="en_US")
    document = truth(out)
    rows = list(table(out).values())
    reference = document["signals"]["age_reference_date"]
    features = numpy.array(
        [
            [
                1.0,
                (age(r["birth"], reference) - 60) / 10,
                float(r["sex"] == "male"),
                float("E11.9" in r["conditions"]),
                float("I10" in r["conditions"]),
                min(r["hba1c"])[1] - 6.0,
            ]
            for r in rows
        ]
    )
    outcome = numpy.array([float("I21.9" in r["conditions"]) for r in rows])
    beta = numpy.zeros(features.shape[1])
    for _ in range(25):  # Newton-Raphson for the logistic likelihood
        p = 1 / (1 + numpy.exp(-features @ beta))
        gradient = features.T @ (outcome - p)
        hessian = features.T @ (features * (p * (1 - p))[:, None])
        beta = beta + numpy.linalg.solve(hessian, gradient)
    errors = numpy.sqrt(numpy.diag(numpy.linalg.inv(hessian)))
    names = ["intercept", "age", "male", "diabetes", "hypertension", "hba1c"]
    coefficients = document["signals"]["myocardial_infarction"]["coefficients"]
    for name, estimate, error in zip(names, beta, errors, strict=True):
        assert abs(estimate - coefficients[name]) <= 4 * error, name
