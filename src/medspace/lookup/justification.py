"""The justification as it leaves the asking node: nothing in it names the patient.

The clinician types a reason ("unconscious, ID card says JOHNATHAN SMITH ..."). The PHI
scrubber finds most names, IDs and dates, but not all (a name in capitals, "smith
johnathan 14.03.61"). The asking node knows exactly what it is looking for, so it first
masks what the clinician typed as the patient's identity, wherever and however it
appears in the reason (any case; the ID and phone with or without separators; the birth
date in the usual spellings), then runs the scrubber over the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medspace.lookup.ask import PatientInput

PATIENT_TAG = "[PATIENT]"
_WORD = re.compile(r"[^\W\d_]{2,}")  # letters only, two or more (CJK included)
_SEPARATORS = r"[\s./\-]*"
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)


def scrub_justification(text: str, patient: PatientInput | None = None) -> str:
    """`text` with the typed identity of `patient` masked, then names, IDs, dates and other
    PHI replaced by tags, so that what travels to the hub and other hospitals names
    nobody."""
    from medspace.deid import scrub_text

    if patient is not None:
        for pattern in _identity_patterns(patient):
            text = pattern.sub(PATIENT_TAG, text)
    return scrub_text(text).text


def _identity_patterns(patient: PatientInput) -> Iterator[re.Pattern[str]]:
    names = {patient.name, patient.family_name, patient.given_name} - {None}
    words = {w for name in names for w in _WORD.findall(str(name))}
    for word in sorted(words, key=len, reverse=True):
        if _CJK.search(word):  # written without spaces: no word boundary to look for
            yield re.compile(re.escape(word))
        else:
            yield re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)
    for number in (patient.national_id, patient.phone):
        characters = [c for c in str(number or "") if c.isalnum()]
        if len(characters) >= 4:
            spelled = _SEPARATORS.join(re.escape(c) for c in characters)
            yield re.compile(rf"(?<!\w){spelled}(?!\w)", re.IGNORECASE)
    if patient.birth_date is not None:
        yield from _date_patterns(patient.birth_date)


def _date_patterns(day: date) -> Iterator[re.Pattern[str]]:
    """The birth date as people write it: 1961-03-14, 19610314, 14.03.61, 3/14/1961,
    March 14 1961, 14 Mar 1961 ..."""
    y, m, d = f"{day.year:04d}", day.month, day.day
    years = rf"(?:{y}|{y[2:]})"
    month, dd = rf"0?{m}", rf"0?{d}"
    sep = r"[./\-\s]"
    numeric = [
        rf"{y}{sep}{month}{sep}{dd}",
        rf"{y}{m:02d}{d:02d}",
        rf"{dd}{sep}{month}{sep}{years}",
        rf"{month}{sep}{dd}{sep}{years}",
        rf"{y}\s*年\s*{month}\s*月\s*{dd}\s*日?",
    ]
    name = _MONTHS[m - 1]
    spelled = rf"(?:{name}|{name[:3]})\.?"
    words = [
        rf"{spelled},?\s+{dd}(?:st|nd|rd|th)?,?\s+{years}",
        rf"{dd}(?:st|nd|rd|th)?\s+{spelled},?\s+{years}",
    ]
    for pattern in (*numeric, *words):
        yield re.compile(rf"(?<!\w){pattern}(?!\w)", re.IGNORECASE)


__all__ = ["PATIENT_TAG", "scrub_justification"]
