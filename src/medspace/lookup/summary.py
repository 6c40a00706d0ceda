"""The minimum-necessary summary a node returns for one matched patient.

What it holds, and only that (issue 5, item 3): diagnoses (code, code text, date, status),
current and recent drugs, allergies (with criticality and the reaction's coded name),
the latest value of each lab test (value, unit, reference range, date) and the date of the
last encounter. What it never holds: names, IDs, MRNs, addresses, phone numbers, the
birth date, sex (the clinician has the patient before them; it was sent and never
shown), source record ids, note text or any other free text. Every field passes its
rule (`summary_fields`: codes, known systems, value-set statuses, UCUM-like units, finite
numbers); a code's display text and a reaction name are kept only when short, the PHI
scrubber finds nothing in them and they hold no spelling of this patient's own identity
(a source without a coded display may fill it with the concept's free text, "fall at
home, found by her daughter ...", or a name: "Hypertension (Adaeze Okafor)"). What does
not fit is left out and counted (`withheld`), an entry with neither code nor text
entirely, so the clinician knows the hospital holds more. Exact event dates stay: the
summary goes only to the treating clinician's node, sealed.

The summary is read from the node store's tables in one connection (a handful of indexed
queries by the patient's source id).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from medspace.lookup.summary_fields import (
    CONDITION_STATUSES,
    CRITICALITIES,
    DRUG_STATUSES,
    MAX_ALLERGIES,
    MAX_CODE_TEXT,
    MAX_DIAGNOSES,
    MAX_DRUGS,
    MAX_LABS,
    MAX_REACTION,
    MAX_WITHHELD,
    clean_code,
    clean_number,
    clean_status,
    clean_system,
    clean_unit,
)
from medspace.store import NodeStore
from medspace.store.errors import RecordNotFoundError
from medspace.store.schema import (
    allergy,
    condition_occurrence,
    drug_exposure,
    measurement,
    person,
    visit_occurrence,
)

RECENT_DRUGS = timedelta(days=365)
NamesPatient = Callable[[str], bool]
"""Whether a text holds a spelling of the matched patient's own identity."""


@dataclass(frozen=True, slots=True)
class MatchInfo:
    """How the patient was matched: exact (national ID) or fuzzy (Bloom filter), score."""

    kind: str
    score: float


def _day(value: object) -> str | None:
    return value.isoformat() if isinstance(value, date) else None


class _Cleaner:
    """Each field through its rule; counts what it leaves out."""

    def __init__(self, names_patient: NamesPatient) -> None:
        self._names_patient = names_patient
        self.withheld = 0

    def keep(self, value: object, cleaned: object) -> Any:
        """`cleaned`, counting a value that was there and did not survive its rule (an
        empty string was not there)."""
        if value is not None and value != "" and cleaned is None:
            self.withheld += 1
        return cleaned

    def status(self, value: object, allowed: frozenset[str]) -> str | None:
        """`value` when it is a code of the value set `allowed` (see `clean_status`)."""
        return self.keep(value, clean_status(value, allowed))

    def text(self, value: str | None, limit: int) -> str | None:
        """`value` when at most `limit` characters, PHI-free and not naming the patient."""
        if not value:
            return None
        ok = len(value) <= limit and _phi_free(value) and not self._names_patient(value)
        return self.keep(value, value if ok else None)

    def coded(self, row: Any) -> dict[str, Any] | None:
        """The row's system, code and text; None (withheld) when neither code nor text
        is left to show."""
        before = self.withheld
        code = clean_code(row.code)
        if code is not None and self._names_patient(code):
            code = None
        fields = {
            "system": clean_system(row.code_system),
            "code": self.keep(row.code, code),
            "text": self.text(row.code_display, MAX_CODE_TEXT),
        }
        if fields["code"] is None and fields["text"] is None:
            self.withheld = before + 1  # the entry counts once, whatever it held
            return None
        return fields


@lru_cache(maxsize=4096)
def _phi_free(text: str) -> bool:
    """True if the PHI scrubber finds nothing in `text` (reaction names repeat, so the
    answers are cached)."""
    from medspace.deid import find_phi

    return not find_phi(text)


def _columns(table: sa.Table, *names: str) -> list[sa.Column[Any]]:
    return [table.c[name] for name in ("code_system", "code", "code_display", *names)]


# Built once: SQLAlchemy's statement building and cache-key work cost more than these
# indexed reads themselves (a match's summary took ~3.8 ms of a node's CPU when each
# call built its six statements anew).
_PATIENT: sa.BindParameter[str] = sa.bindparam("patient")
_BIRTH_DATE = sa.select(person.c.birth_date).where(person.c.source_id == _PATIENT)
_DIAGNOSES = (
    sa.select(*_columns(condition_occurrence, "onset_date", "recorded_date", "clinical_status"))
    .where(condition_occurrence.c.person_source_id == _PATIENT)
    .order_by(
        sa.func.coalesce(
            condition_occurrence.c.onset_date, condition_occurrence.c.recorded_date
        ).desc()
    )
    .limit(MAX_DIAGNOSES)
)
_DRUGS = (
    sa.select(*_columns(drug_exposure, "start_date", "end_date", "status"))
    .where(drug_exposure.c.person_source_id == _PATIENT)
    .order_by(drug_exposure.c.start_date.desc())
)
_ALLERGIES = sa.select(*_columns(allergy, "criticality", "reaction", "recorded_date")).where(
    allergy.c.person_source_id == _PATIENT
)
_LABS = (
    sa.select(*_columns(measurement, "value", "unit", "ref_low", "ref_high", "time_date"))
    .where(measurement.c.person_source_id == _PATIENT)
    .order_by(measurement.c.time_date.desc(), measurement.c.time_datetime.desc())
)
_LAST_ENCOUNTER = sa.select(sa.func.max(visit_occurrence.c.start_date)).where(
    visit_occurrence.c.person_source_id == _PATIENT
)


def build_summary(
    conn: Connection,
    person_source_id: str,
    match: MatchInfo,
    *,
    today: date,
    names_patient: NamesPatient,
) -> dict[str, Any]:
    """The summary of one patient of this node's store (see the module docstring);
    `names_patient` tells whether a text holds a spelling of that patient's identity."""
    patient = {"patient": person_source_id}
    clean = _Cleaner(names_patient)
    diagnoses = []
    for r in conn.execute(_DIAGNOSES, patient):
        coded = clean.coded(r)
        if coded is not None:
            status = clean.status(r.clinical_status, CONDITION_STATUSES)
            diagnoses.append(
                {**coded, "date": _day(r.onset_date or r.recorded_date), "status": status}
            )
    drugs = []
    for r in conn.execute(_DRUGS, patient):
        current = r.end_date is None or r.end_date >= today
        recent = r.start_date is not None and r.start_date >= today - RECENT_DRUGS
        status = clean_status(r.status, DRUG_STATUSES)
        if not ((current and status not in ("stopped", "completed", "cancelled")) or recent):
            continue
        coded = clean.coded(r)
        if coded is None:
            continue
        drugs.append(
            {
                **coded,
                "start": _day(r.start_date),
                "end": _day(r.end_date),
                "status": clean.keep(r.status, status),
                "current": current,
            }
        )
        if len(drugs) >= MAX_DRUGS:
            break
    allergies = []
    for r in conn.execute(_ALLERGIES, patient):
        coded = clean.coded(r)
        if coded is None:
            continue
        allergies.append(
            {
                **coded,
                "criticality": clean.status(r.criticality, CRITICALITIES),
                "reaction": clean.text(r.reaction, MAX_REACTION),
                "date": _day(r.recorded_date),
            }
        )
        if len(allergies) >= MAX_ALLERGIES:
            break
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    shown = 0
    for r in conn.execute(_LABS, patient):
        key = (r.code_system, r.code)
        if key in latest or r.value is None:
            continue  # a result given as text is not part of the summary
        value = clean_number(r.value)
        coded = None if value is None else clean.coded(r)
        if coded is None:
            if value is None:  # not a finite number (clean.coded counts its own)
                clean.withheld += 1
            latest[key] = {}  # withheld: an older value of the same test must not stand in
            continue
        latest[key] = {
            **coded,
            "value": value,
            "unit": clean.keep(r.unit, _unit(r.unit, names_patient)),
            "low": clean.keep(r.ref_low, clean_number(r.ref_low)),
            "high": clean.keep(r.ref_high, clean_number(r.ref_high)),
            "date": _day(r.time_date),
        }
        shown += 1
        if shown >= MAX_LABS:
            break
    last = conn.execute(_LAST_ENCOUNTER, patient).scalar_one_or_none()
    return {
        "match": {"kind": match.kind, "score": round(match.score, 3)},
        "last_encounter": _day(last),
        "withheld": min(clean.withheld, MAX_WITHHELD),
        "diagnoses": diagnoses,
        "drugs": drugs,
        "allergies": allergies,
        "labs": [lab for lab in latest.values() if lab],
    }


def identity_check(store: NodeStore, conn: Connection, person_source_id: str) -> NamesPatient:
    """Whether a text holds a spelling of this patient's own identity (names, national
    ID, MRN, phone, birth date), by the patterns the asking node masks a reason with."""
    from medspace.lookup.ask import PatientInput
    from medspace.lookup.justification import identity_matcher

    try:
        identity = store.patient_identity(person_source_id)
    except RecordNotFoundError:
        # Indexed for linkage but no patient record here (not ingested, or removed
        # since): no identity to check against; the field rules and the PHI scrubber
        # still apply to whatever records carry its id.
        return lambda text: False
    born = conn.execute(_BIRTH_DATE, {"patient": person_source_id}).scalar_one_or_none()
    typed = [
        PatientInput(
            national_id=identity.national_id,
            family_name=identity.family_name,
            given_name=identity.given_name,
            birth_date=born,
            phone=identity.phone,
        )
    ]
    if identity.mrn:
        typed.append(PatientInput(national_id=identity.mrn))
    return identity_matcher(*typed)


def _unit(value: object, names_patient: NamesPatient) -> str | None:
    unit = clean_unit(value)
    return None if unit is None or names_patient(unit) else unit


def warm_up() -> None:
    """Load the PHI scrubber now rather than during the first answer."""
    _phi_free("urticaria")
