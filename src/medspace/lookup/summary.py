"""The minimum-necessary summary a node returns for one matched patient.

What it holds, and only that (issue 5, item 3): diagnoses (code, code text, date, status),
current and recent drugs, allergies (with criticality and the reaction's coded name),
the latest value of each lab test (value, unit, reference range, date) and the date of the
last encounter. What it never holds: names, IDs, MRNs, addresses, phone numbers, the
birth date, source record ids, note text or any other free text: a code's display text
and a reaction name are kept only when short and the PHI scrubber finds nothing in them
(a source without a coded display may fill it with the concept's free text, "fall at
home, found by her daughter ..."); the code itself always stays. Exact event dates stay:
the summary goes only to the treating clinician's node, sealed.

The summary is read from the node store's tables in one connection (a handful of indexed
queries by the patient's source id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from medspace.store.schema import (
    allergy,
    condition_occurrence,
    drug_exposure,
    measurement,
    person,
    visit_occurrence,
)

MAX_DIAGNOSES = 50
MAX_DRUGS = 50
MAX_LABS = 30
RECENT_DRUGS = timedelta(days=365)
MAX_REACTION = 60
MAX_CODE_TEXT = 100


@dataclass(frozen=True, slots=True)
class MatchInfo:
    """How the patient was matched: exact (national ID) or fuzzy (Bloom filter), score."""

    kind: str
    score: float


def _day(value: object) -> str | None:
    return value.isoformat() if isinstance(value, date) else None


def _code(row: Any) -> dict[str, Any]:
    return {
        "system": row.code_system,
        "code": row.code,
        "text": _short_and_clean(row.code_display, MAX_CODE_TEXT),
    }


def _safe_reaction(text: str | None) -> str | None:
    return _short_and_clean(text, MAX_REACTION)


def _short_and_clean(text: str | None, limit: int) -> str | None:
    """`text` when it is at most `limit` characters and the PHI scrubber finds nothing in
    it; None otherwise (the summary then shows the code alone)."""
    if not text or len(text) > limit:
        return None
    return text if _phi_free(text) else None


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
_SEX = sa.select(person.c.sex).where(person.c.source_id == _PATIENT)
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
    conn: Connection, person_source_id: str, match: MatchInfo, *, today: date
) -> dict[str, Any]:
    """The summary of one patient of this node's store (see the module docstring)."""
    patient = {"patient": person_source_id}
    sex = conn.execute(_SEX, patient).scalar_one_or_none()
    diagnoses = [
        {**_code(r), "date": _day(r.onset_date or r.recorded_date), "status": r.clinical_status}
        for r in conn.execute(_DIAGNOSES, patient)
    ]
    drugs = []
    for r in conn.execute(_DRUGS, patient):
        current = r.end_date is None or r.end_date >= today
        recent = r.start_date is not None and r.start_date >= today - RECENT_DRUGS
        if (current and r.status not in ("stopped", "completed", "cancelled")) or recent:
            drugs.append(
                {
                    **_code(r),
                    "start": _day(r.start_date),
                    "end": _day(r.end_date),
                    "status": r.status,
                    "current": current,
                }
            )
        if len(drugs) >= MAX_DRUGS:
            break
    allergies = [
        {
            **_code(r),
            "criticality": r.criticality,
            "reaction": _safe_reaction(r.reaction),
            "date": _day(r.recorded_date),
        }
        for r in conn.execute(_ALLERGIES, patient)
    ]
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in conn.execute(_LABS, patient):
        key = (r.code_system, r.code)
        if key in latest or r.value is None:
            continue
        latest[key] = {
            **_code(r),
            "value": r.value,
            "unit": r.unit,
            "low": r.ref_low,
            "high": r.ref_high,
            "date": _day(r.time_date),
        }
        if len(latest) >= MAX_LABS:
            break
    last = conn.execute(_LAST_ENCOUNTER, patient).scalar_one_or_none()
    return {
        "match": {"kind": match.kind, "score": round(match.score, 3)},
        "sex": sex,
        "last_encounter": _day(last),
        "diagnoses": diagnoses,
        "drugs": drugs,
        "allergies": allergies,
        "labs": list(latest.values()),
    }


def warm_up() -> None:
    """Load the PHI scrubber now rather than during the first answer."""
    _phi_free("urticaria")
