"""Typed access to FHIR JSON values, with reasons that name the element and the rule.

Every getter takes the element path used in the reason ("Condition.code"). Values are never
quoted in reasons. The helpers are plain functions over dicts: this is the hot path
(target: well under 50 µs per resource), so no model classes are built here.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any

from medspace.connectors._dates import parse_fhir_date, parse_fhir_datetime
from medspace.connectors._unit import PARTIAL_DATE, UnitRejected
from medspace.model import UNKNOWN_CODE_SYSTEM, Code, normalise_system

Json = dict[str, Any]

# FHIR id (datatypes.html#id): [A-Za-z0-9\-\.]{1,64}
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def get_str(obj: Json, key: str, path: str) -> str | None:
    """`obj[key]` as a string, None when absent; rejects other JSON types."""
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise UnitRejected(f"{path}.{key}: must be a string")


def get_obj(obj: Json, key: str, path: str) -> Json | None:
    """`obj[key]` as a JSON object, None when absent."""
    value = obj.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise UnitRejected(f"{path}.{key}: must be a JSON object")


def get_list(obj: Json, key: str, path: str) -> list[Any]:
    """`obj[key]` as a JSON array, [] when absent."""
    value = obj.get(key)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise UnitRejected(f"{path}.{key}: must be a JSON array")


def first_obj(obj: Json, key: str, path: str) -> Json | None:
    """The first element of the array `obj[key]`, which must be an object; None when empty."""
    items = get_list(obj, key, path)
    if not items:
        return None
    if not isinstance(items[0], dict):
        raise UnitRejected(f"{path}.{key}[0]: must be a JSON object")
    return items[0]


def get_number(obj: Json, key: str, path: str) -> float | None:
    """`obj[key]` as a float (JSON number, not a boolean), None when absent."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnitRejected(f"{path}.{key}: must be a number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise UnitRejected(f"{path}.{key}: must be a finite number")
    return number


def get_date(obj: Json, key: str, path: str, flags: list[str]) -> date | None:
    """A FHIR `date` element; partial dates add the `partial-date` flag."""
    text = get_str(obj, key, path)
    if text is None:
        return None
    try:
        value, partial = parse_fhir_date(text)
    except ValueError:
        raise UnitRejected(
            f"{path}.{key}: not a valid FHIR date (YYYY, YYYY-MM or YYYY-MM-DD, "
            "and a real calendar day)"
        ) from None
    if partial and PARTIAL_DATE not in flags:
        flags.append(PARTIAL_DATE)
    return value


def get_datetime(obj: Json, key: str, path: str, flags: list[str]) -> datetime | date | None:
    """A FHIR `dateTime` / `instant` element; partial dates add the `partial-date` flag."""
    text = get_str(obj, key, path)
    if text is None:
        return None
    try:
        value, partial = parse_fhir_datetime(text)
    except ValueError:
        raise UnitRejected(
            f"{path}.{key}: not a valid FHIR dateTime (ISO 8601 as FHIR R4 restricts it, "
            "and a real calendar day and time)"
        ) from None
    if partial and PARTIAL_DATE not in flags:
        flags.append(PARTIAL_DATE)
    return value


def period_start_end(
    obj: Json, key: str, path: str, flags: list[str]
) -> tuple[datetime | date | None, datetime | date | None]:
    """(start, end) of a FHIR Period element; (None, None) when absent."""
    period = get_obj(obj, key, path)
    if period is None:
        return None, None
    where = f"{path}.{key}"
    return get_datetime(period, "start", where, flags), get_datetime(period, "end", where, flags)


def check_id(value: object, path: str) -> str:
    """A FHIR logical id; rejects a missing or malformed one."""
    if value is None or value == "":
        raise UnitRejected(f"{path}: required")
    if not isinstance(value, str) or _FHIR_ID.fullmatch(value) is None:
        raise UnitRejected(f"{path}: not a valid FHIR id (1-64 of A-Z a-z 0-9 - .)")
    return value


def coding_to_code(coding: object, path: str, flags: list[str]) -> Code:
    """A Coding as a `Code`; an unknown system is kept and flags `unknown-code-system`."""
    if not isinstance(coding, dict):
        raise UnitRejected(f"{path}: must be a JSON object")
    code = get_str(coding, "code", path)
    if not code:
        raise UnitRejected(f"{path}.code: required")
    system, known = normalise_system(get_str(coding, "system", path))
    if not known and UNKNOWN_CODE_SYSTEM not in flags:
        flags.append(UNKNOWN_CODE_SYSTEM)
    return Code(system, code, get_str(coding, "display", path), known)


def concept_to_code(concept: object, path: str, flags: list[str]) -> Code:
    """A CodeableConcept as one `Code`: the first coding in a system MedSpace knows, else the
    first coding (flagged `unknown-code-system`). Rejects a concept with no coded coding."""
    if not isinstance(concept, dict):
        raise UnitRejected(f"{path}: must be a JSON object")
    codings = get_list(concept, "coding", path)
    chosen: Json | None = None
    chosen_at = 0
    for i, coding in enumerate(codings):
        if not isinstance(coding, dict):
            raise UnitRejected(f"{path}.coding[{i}]: must be a JSON object")
        if not coding.get("code"):
            continue
        if chosen is None:
            chosen, chosen_at = coding, i
        system = coding.get("system")
        if isinstance(system, str) and normalise_system(system)[1]:
            chosen, chosen_at = coding, i
            break
    if chosen is None:
        raise UnitRejected(f"{path}: no coding with a code (text-only concepts are not mapped)")
    code = coding_to_code(chosen, f"{path}.coding[{chosen_at}]", flags)
    if code.display is None:
        text = get_str(concept, "text", path)
        if text:
            code = Code(code.system, code.code, text, code.known)
    return code


def concept_text(concept: object, path: str) -> str | None:
    """Human text of a CodeableConcept: its text, else its first coding's display or code."""
    if not isinstance(concept, dict):
        raise UnitRejected(f"{path}: must be a JSON object")
    text = get_str(concept, "text", path)
    if text:
        return text
    for coding in get_list(concept, "coding", path):
        if isinstance(coding, dict):
            label = coding.get("display") or coding.get("code")
            if isinstance(label, str) and label:
                return label
    return None


def concept_codes(concept: object) -> set[str]:
    """All codes of a CodeableConcept (tolerant: for classification only)."""
    codes: set[str] = set()
    if isinstance(concept, dict):
        codings = concept.get("coding")
        if isinstance(codings, list):
            for coding in codings:
                if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                    codes.add(coding["code"])
    return codes
