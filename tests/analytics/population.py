"""A simulated hospital population for analytics tests, kept in Python as the oracle.

Patients are drawn with numpy from the same signals as `medspace.synth` (sorafenib
response by age band and sex, the MI logistic model) and ingested as model records, which
is 50x faster than writing and parsing FHIR/HL7/CSV. The same `Person` objects are the
plain-Python ground truth the SQL results are checked against.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from medspace.connectors.base import Parsed
from medspace.model import Condition, Drug, Measurement, Observation, Patient
from medspace.model.records import Code

REFERENCE = date(2024, 1, 1)
MI_COEFFICIENTS = {
    "intercept": -3.2,
    "age": 0.45,
    "male": 0.5,
    "diabetes": 0.7,
    "hypertension": 0.6,
    "hba1c": 0.35,
}
RESPONSE = {  # p(improved) by (age band, sex), as in the synth ground truth
    ("<40", "male"): 0.45,
    ("<40", "female"): 0.55,
    ("40-59", "male"): 0.35,
    ("40-59", "female"): 0.45,
    ("60+", "male"): 0.2,
    ("60+", "female"): 0.3,
}
IMPROVED = ("SNOMED CT", "268910001")
STABLE = ("SNOMED CT", "359746009")
WORSENED = ("SNOMED CT", "271299001")


@dataclass
class Person:
    source_id: str
    sex: str
    birth_date: date | None
    conditions: list[tuple[str, str, date]] = field(default_factory=list)
    drugs: list[tuple[str, str, date]] = field(default_factory=list)
    measurements: list[tuple[str, str, date, float]] = field(default_factory=list)
    observations: list[tuple[str, str, date, tuple[str, str]]] = field(default_factory=list)

    @property
    def age(self) -> int | None:
        if self.birth_date is None:
            return None
        b = self.birth_date
        return REFERENCE.year - b.year - ((b.month, b.day) > (REFERENCE.month, REFERENCE.day))

    def has(self, system: str, code: str) -> bool:
        """Condition or drug with this code (a trailing * is a prefix)."""
        return any(_match(s, c, system, code) for s, c, _ in self.conditions + self.drugs)

    def hba1c(self, pick: str = "earliest") -> float | None:
        values = sorted((d, v) for s, c, d, v in self.measurements if (s, c) == ("LOINC", "4548-4"))
        if not values:
            return None
        return values[0][1] if pick == "earliest" else values[-1][1]

    def response(self) -> tuple[str, str] | None:
        found = sorted((d, v) for s, c, d, v in self.observations if c == "88040-1")
        return found[-1][1] if found else None


def _match(system: str, code: str, want_system: str, want: str) -> bool:
    if system != want_system:
        return False
    return code.startswith(want[:-1]) if want.endswith("*") else code == want


def age_band(age: int | None) -> str | None:
    if age is None:
        return None
    return "<40" if age <= 39 else "40-59" if age <= 59 else "60+"


def simulate(n: int, *, seed: int, prefix: str = "p") -> list[Person]:
    """`n` patients; ids `prefix0`, `prefix1`, ..."""
    rng = np.random.default_rng(seed)
    people = []
    for i in range(n):
        sex = str(rng.choice(["male", "female", "unknown"], p=[0.49, 0.49, 0.02]))
        birth: date | None = date(1935, 1, 1) + timedelta(days=int(rng.integers(0, 365 * 68)))
        if rng.random() < 0.01:
            birth = None
        if i == 0:
            birth = date(1964, 2, 29)  # a leap-day birthday
        person = Person(f"{prefix}{i}", sex, birth)
        age = person.age if person.age is not None else 60
        index = date(2021, 1, 1) + timedelta(days=int(rng.integers(0, 700)))
        diabetes = rng.random() < _sigmoid(-1.5 + 0.04 * (age - 55))
        hypertension = rng.random() < _sigmoid(-0.9 + 0.06 * (age - 55))
        if diabetes:
            person.conditions.append(("ICD-10", "E11.9", index))
        if hypertension:
            person.conditions.append(("ICD-10", "I10", index))
        first = round(float(rng.normal(7.6, 1.1) if diabetes else rng.normal(5.4, 0.35)), 1)
        person.measurements.append(("LOINC", "4548-4", index, first))
        for extra in range(int(rng.integers(0, 3))):
            later = index + timedelta(days=30 * (extra + 1))
            person.measurements.append(("LOINC", "4548-4", later, round(first + 0.1, 1)))
        if rng.random() < 0.5:
            person.measurements.append(("LOINC", "2345-7", index, float(rng.normal(5.5, 1))))
        male = sex == "male"
        logit = (
            MI_COEFFICIENTS["intercept"]
            + MI_COEFFICIENTS["age"] * (age - 60) / 10
            + MI_COEFFICIENTS["male"] * male
            + MI_COEFFICIENTS["diabetes"] * diabetes
            + MI_COEFFICIENTS["hypertension"] * hypertension
            + MI_COEFFICIENTS["hba1c"] * (first - 6)
        )
        if rng.random() < _sigmoid(logit):
            person.conditions.append(("ICD-10", "I21.9", index + timedelta(days=90)))
        if rng.random() < (0.26 if male else 0.14):
            person.conditions.append(("ICD-10", "C22.0", index))
            if rng.random() < 0.8:
                person.drugs.append(("ATC", "L01EX02", index + timedelta(days=10)))
                band = age_band(person.age) or "60+"
                p = RESPONSE[(band, "male" if male else "female")]
                value = (
                    IMPROVED if rng.random() < p else (STABLE if rng.random() < 0.5 else WORSENED)
                )
                person.observations.append(("LOINC", "88040-1", index + timedelta(days=90), value))
        elif rng.random() < 0.05:
            person.conditions.append(("ICD-10", "C22.1", index))
        people.append(person)
    return people


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def outcomes(people: list[Person]) -> Iterator[Parsed]:
    """Connector outcomes (one unit per patient) for `NodeStore.ingest`."""
    for person in people:
        pid = person.source_id
        records: list[object] = [
            Patient(source_id=pid, sex=person.sex, birth_date=person.birth_date)  # type: ignore[arg-type]
        ]
        for j, (system, code, when) in enumerate(person.conditions):
            records.append(Condition(f"{pid}-c{j}", pid, Code(system, code), onset=when))
        for j, (system, code, when) in enumerate(person.drugs):
            records.append(Drug(f"{pid}-d{j}", pid, Code(system, code), start=when))
        for j, (system, code, when, value) in enumerate(person.measurements):
            records.append(
                Measurement(f"{pid}-m{j}", pid, Code(system, code), time=when, value=value)
            )
        for j, (system, code, when, value_code) in enumerate(person.observations):
            records.append(
                Observation(
                    f"{pid}-o{j}", pid, Code(system, code), time=when, value_code=Code(*value_code)
                )
            )
        yield Parsed(source="simulated", position=pid, records=tuple(records))  # type: ignore[arg-type]
