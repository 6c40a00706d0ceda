"""What each field of a lookup summary may hold, checked on both sides of the seal.

A summary carries codes, code systems, statuses, units, dates, numbers and short display
texts: no identifiers and no free text (issue 5, item 3). Source systems put anything
into any column (a diagnosis text exported as its "code", "mg/dL call ADAEZE 415..." as
a unit, a note as an allergy's criticality), so each field has a rule:

- a code: letters, digits and . : _ * - (at most 32, no spaces);
- a code system: one MedSpace knows (ICD-10, LOINC, ...), any other is "local";
- a status or criticality: a FHIR value-set code (active, resolved, high, ...);
- a unit: UCUM-like (mg/dL, 10*9/L, mm[Hg], %; at most 20, no spaces);
- a date: YYYY-MM-DD; a number: finite, not a boolean, below 10^15 in size.

The answering node (`summary.py`) builds the summary through `clean_*`, which leave out
what does not fit (and count it as withheld); the asking node (`answers.py`) refuses a
summary whose keys or values break these rules (`summary_ok`): a node may run older
software, or be compromised.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from medspace.model.codes import KNOWN_SYSTEMS

LOCAL_SYSTEM = "local"
"""The system named for a code whose source system MedSpace does not know."""
MAX_DIAGNOSES = 50
MAX_DRUGS = 50
MAX_ALLERGIES = 50
MAX_LABS = 30
MAX_CODE_TEXT = 100
MAX_REACTION = 60
MAX_WITHHELD = 10_000

_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:_*\-]{0,31}")
_UNIT = re.compile(r"[A-Za-z0-9%/.*^'\[\]{}()µμ°_\-]{1,20}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MAX_NUMBER = 1e15
SYSTEMS = frozenset({*KNOWN_SYSTEMS, LOCAL_SYSTEM})
CONDITION_STATUSES = frozenset(
    {"active", "recurrence", "relapse", "inactive", "remission", "resolved", "unknown"}
)
DRUG_STATUSES = frozenset(
    {
        "active",
        "on-hold",
        "ended",
        "stopped",
        "completed",
        "cancelled",
        "entered-in-error",
        "draft",
        "unknown",
        "recorded",
        "intended",
        "not-taken",
    }
)
CRITICALITIES = frozenset({"low", "high", "unable-to-assess"})
MATCH_KINDS = frozenset({"exact", "fuzzy"})


def clean_code(value: object) -> str | None:
    """`value` when it is a code (see the module docstring), else None."""
    return value if isinstance(value, str) and _CODE.fullmatch(value) else None


def clean_system(value: object) -> str:
    """`value` when MedSpace knows the system, else "local"."""
    return value if isinstance(value, str) and value in KNOWN_SYSTEMS else LOCAL_SYSTEM


def clean_status(value: object, allowed: frozenset[str]) -> str | None:
    """`value` lower-cased when it is in `allowed`, else None."""
    if not isinstance(value, str):
        return None
    folded = value.strip().lower()
    return folded if folded in allowed else None


def clean_unit(value: object) -> str | None:
    """`value` when it looks like a unit (UCUM-like, no spaces), else None."""
    return value if isinstance(value, str) and _UNIT.fullmatch(value) else None


def clean_number(value: object) -> float | int | None:
    """`value` when it is a finite number below 10^15 in size (not a boolean), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        return value if abs(value) < _MAX_NUMBER else None  # a huge int cannot be a float
    if not math.isfinite(value) or abs(value) >= _MAX_NUMBER:
        return None
    return value


# -- the asking node's check ---------------------------------------------------------


def _optional(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda value: value is None or check(value)


def _text(limit: int) -> Callable[[object], bool]:
    return lambda value: isinstance(value, str) and 0 < len(value) <= limit


def _in(allowed: frozenset[str]) -> Callable[[object], bool]:
    return lambda value: isinstance(value, str) and value in allowed


_is_code = _optional(lambda v: clean_code(v) == v)
_is_date = _optional(lambda v: isinstance(v, str) and _DATE.fullmatch(v) is not None)
_is_number = _optional(lambda v: clean_number(v) is not None)
_CODED: dict[str, Callable[[object], bool]] = {
    "system": _in(SYSTEMS),
    "code": _is_code,
    "text": _optional(_text(MAX_CODE_TEXT)),
}
ITEMS: dict[str, tuple[int, dict[str, Callable[[object], bool]]]] = {
    "diagnoses": (
        MAX_DIAGNOSES,
        {**_CODED, "date": _is_date, "status": _optional(_in(CONDITION_STATUSES))},
    ),
    "drugs": (
        MAX_DRUGS,
        {
            **_CODED,
            "start": _is_date,
            "end": _is_date,
            "status": _optional(_in(DRUG_STATUSES)),
            "current": lambda v: isinstance(v, bool),
        },
    ),
    "allergies": (
        MAX_ALLERGIES,
        {
            **_CODED,
            "criticality": _optional(_in(CRITICALITIES)),
            "reaction": _optional(_text(MAX_REACTION)),
            "date": _is_date,
        },
    ),
    "labs": (
        MAX_LABS,
        {
            **_CODED,
            "value": lambda v: clean_number(v) is not None,
            "unit": _optional(lambda v: clean_unit(v) == v),
            "low": _is_number,
            "high": _is_number,
            "date": _is_date,
        },
    ),
}
"""Each list of a summary: its most items, and exactly the keys an item has."""
_TOP = frozenset({"match", "last_encounter", "withheld", *ITEMS})


def summary_ok(patient: object) -> bool:
    """Whether `patient` is a summary `summary.py` could have built: exactly its keys,
    every value by its rule, no list longer than its limit."""
    if not isinstance(patient, dict) or set(patient) != _TOP:
        return False
    match = patient["match"]
    if not (
        isinstance(match, dict)
        and set(match) == {"kind", "score"}
        and isinstance(match["kind"], str)
        and match["kind"] in MATCH_KINDS
        and clean_number(match["score"]) is not None
        and 0 <= match["score"] <= 1
    ):
        return False
    withheld = patient["withheld"]
    if isinstance(withheld, bool) or not isinstance(withheld, int):
        return False
    if not (0 <= withheld <= MAX_WITHHELD and _is_date(patient["last_encounter"])):
        return False
    for name, (limit, fields) in ITEMS.items():
        items = patient[name]
        if not isinstance(items, list) or len(items) > limit:
            return False
        for item in items:
            if not isinstance(item, dict) or set(item) != set(fields):
                return False
            if not all(check(item[key]) for key, check in fields.items()):
                return False
    return True


__all__ = [
    "CONDITION_STATUSES",
    "CRITICALITIES",
    "DRUG_STATUSES",
    "ITEMS",
    "LOCAL_SYSTEM",
    "MAX_ALLERGIES",
    "MAX_CODE_TEXT",
    "MAX_DIAGNOSES",
    "MAX_DRUGS",
    "MAX_LABS",
    "MAX_REACTION",
    "MAX_WITHHELD",
    "clean_code",
    "clean_number",
    "clean_status",
    "clean_system",
    "clean_unit",
    "summary_ok",
]
