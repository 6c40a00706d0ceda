"""The justification as it leaves the asking node: nothing in it names the patient.

The clinician types a reason ("unconscious, ID card says JOHNATHAN SMITH ..."). The PHI
scrubber finds most names, IDs and dates, but not all (a name in capitals, "smith
johnathan 14.03.61"). The asking node knows exactly what it is looking for, so it first
masks what the clinician typed as the patient's identity, wherever and however it
appears in the reason (any case, with or without accents; the ID and phone with or
without separators; the birth date in the usual spellings), then runs the scrubber
over the rest.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medspace.lookup.ask import PatientInput

PATIENT_TAG = "[PATIENT]"
_WORD = re.compile(r"[^\W\d_]{2,}")  # letters only, two or more (CJK included)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_NUMBER_SEPARATORS = r"[\s().+/\-]*"
_PHONE_DIGITS = 10  # a phone is also matched by its last 10 digits (no country code)
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
        text = _mask(text, list(_identity_patterns(patient)))
    return scrub_text(text).text


def _fold(character: str) -> str:
    """One character, lower-cased and without accents (é -> e, Ñ -> n); one character
    out for one in, so positions in the folded text are positions in the original."""
    base = "".join(
        c for c in unicodedata.normalize("NFKD", character) if not unicodedata.combining(c)
    )
    folded = base.casefold()
    return folded if len(folded) == 1 else character.lower()[:1] or character


def _mask(text: str, patterns: list[re.Pattern[str]]) -> str:
    """`text` with every match of `patterns` in its folded form replaced by the tag."""
    folded = "".join(_fold(c) for c in text)
    spans = sorted(m.span() for p in patterns for m in p.finditer(folded) if m.end() > m.start())
    out, position = [], 0
    for start, end in spans:
        if start < position:  # overlaps one already masked
            start = position
            if start >= end:
                continue
        out.append(text[position:start])
        out.append(PATIENT_TAG)
        position = end
    out.append(text[position:])
    return "".join(out)


def _identity_patterns(patient: PatientInput) -> Iterator[re.Pattern[str]]:
    names = {patient.name, patient.family_name, patient.given_name} - {None}
    words = {"".join(_fold(c) for c in w) for n in names for w in _WORD.findall(str(n))}
    for word in sorted(words, key=len, reverse=True):
        spelled = re.escape(word).replace("ß", "(?:ß|ss)")
        if _CJK.search(word):  # written without spaces: no word boundary to look for
            yield re.compile(spelled)
        else:
            yield re.compile(rf"(?<!\w){spelled}(?!\w)")
    for number, tail in ((patient.national_id, 0), (patient.phone, _PHONE_DIGITS)):
        characters = [_fold(c) for c in str(number or "") if c.isalnum()]
        for chars in (characters, characters[-tail:] if tail else []):
            if len(chars) >= 4:
                spelled = _NUMBER_SEPARATORS.join(re.escape(c) for c in chars)
                yield re.compile(rf"(?<!\w){spelled}(?!\w)")
    if patient.birth_date is not None:
        yield from _date_patterns(patient.birth_date)


def _date_patterns(day: date) -> Iterator[re.Pattern[str]]:
    """The birth date as people write it: 1961-03-14, 19610314, 140361, 14.03.61,
    14. 3. 1961, 3/14/1961, March 14 1961, 14-MAR-1961, 1961-Mar-14, 1961年3月14日 ..."""
    y, m, d = f"{day.year:04d}", day.month, day.day
    years = rf"(?:{y}|{y[2:]})"
    month, dd = rf"0?{m}", rf"0?{d}"
    sep = r"\s*[./\-]\s*|\s+"
    numeric = [
        rf"{y}(?:{sep}){month}(?:{sep}){dd}",
        rf"{dd}(?:{sep}){month}(?:{sep}){years}",
        rf"{month}(?:{sep}){dd}(?:{sep}){years}",
        rf"{y}{m:02d}{d:02d}",
        rf"{d:02d}{m:02d}{years}",
        rf"{m:02d}{d:02d}{years}",
        rf"{y}\s*年\s*{month}\s*月\s*{dd}\s*日?",
    ]
    name = _MONTHS[m - 1]
    spelled = rf"(?:{name}|{name[:3]})\.?"
    around = r"[\s./\-]*,?\s*"
    ordinal = r"(?:st|nd|rd|th)?"
    words = [
        rf"{spelled}{around}{dd}{ordinal}{around}{years}",
        rf"{dd}{ordinal}{around}{spelled}{around}{years}",
        rf"{y}{around}{spelled}{around}{dd}",
    ]
    for pattern in (*numeric, *words):
        yield re.compile(rf"(?<!\w){pattern}(?!\w)")


__all__ = ["PATIENT_TAG", "scrub_justification"]
