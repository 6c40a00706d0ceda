"""HL7 v2 data types -> model values: coded elements, timestamps, numbers, ranges."""

from __future__ import annotations

import re
from datetime import date, datetime

from medspace.connectors._dates import parse_hl7_datetime
from medspace.connectors._unit import PARTIAL_DATE, UnitRejected
from medspace.connectors.hl7v2._parse import Segment
from medspace.model import UNKNOWN_CODE_SYSTEM, Code, normalise_system

# HL7 NM (2.A.47): optional sign, digits, optional decimal point. No exponents, no "nan".
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_RANGE = re.compile(
    r"\s*(?:(?P<cmp>[<>]=?)\s*(?P<bound>-?\d+(?:\.\d+)?)"
    r"|(?P<low>-?\d+(?:\.\d+)?)\s*-\s*(?P<high>-?\d+(?:\.\d+)?))\s*"
)
_SN_COMPARATORS = ("", "=", "<", ">", "<=", ">=", "<>")
_SN_SEPARATORS = ("-", "+", "/", ".", ":")


def number(text: str, where: str, rule: str) -> float:
    """An HL7 NM value; `UnitRejected` names `where` and `rule`."""
    if _NUMBER.fullmatch(text.strip()) is None:
        raise UnitRejected(f"{where}: {rule}")
    return float(text)


def timestamp(seg: Segment, n: int, flags: list[str]) -> datetime | date | None:
    """SEG-n as a DTM/TS (first component); rejects an impossible or malformed value."""
    text = seg.value(n)
    if text is None:
        return None
    try:
        value, partial = parse_hl7_datetime(text.strip())
    except ValueError:
        raise UnitRejected(
            f"{seg.where(n)}: not a valid HL7 timestamp (YYYY[MM[DD[HHMM[SS]]]][+/-ZZZZ], "
            "a real calendar day)"
        ) from None
    if partial and PARTIAL_DATE not in flags:
        flags.append(PARTIAL_DATE)
    return value


def coded(seg: Segment, n: int, flags: list[str], rep: int = 0) -> Code | None:
    """A CE/CWE/CNE field as one `Code`: the primary triplet if its system is known, else
    the alternate (`...^21668-9^text^LN`) if that one is, else the primary flagged
    `unknown-code-system`. None when neither triplet has a code."""
    reps = seg.repetitions(n)
    if rep >= len(reps):
        return None
    comps = seg.components(reps[rep]) + [""] * 6
    candidates = []
    for first in (0, 3):
        code, display, system = comps[first], comps[first + 1], comps[first + 2]
        if code and code != '""':
            short, known = normalise_system(system or None)
            candidates.append(Code(short, code, display or None, known))
    if not candidates:
        return None
    chosen = next((c for c in candidates if c.known), candidates[0])
    if not chosen.known and UNKNOWN_CODE_SYSTEM not in flags:
        flags.append(UNKNOWN_CODE_SYSTEM)
    return chosen


def reference_range(text: str | None) -> tuple[float | None, float | None]:
    """OBX-7 "3.5-5.0", "<5", ">=2" -> (low, high); (None, None) when not numeric."""
    if not text:
        return None, None
    m = _RANGE.fullmatch(text)
    if m is None:
        return None, None
    if m.group("cmp"):
        bound = float(m.group("bound"))
        return (bound, None) if m.group("cmp").startswith(">") else (None, bound)
    return float(m.group("low")), float(m.group("high"))


def structured_numeric(seg: Segment, n: int) -> tuple[float | None, str | None]:
    """An SN value (comparator^num1^separator^num2) -> (value, text).

    A plain number gives a value; a comparator, range or ratio ("<5", "1-5", "1:128") keeps
    no single number and comes back as text."""
    raw = seg.repetitions(n)
    if not raw:
        return None, None
    comps = [*seg.components(raw[0]), "", "", "", ""]
    comparator, num1, separator, num2 = (c.strip() for c in comps[:4])
    where = seg.where(n)
    if comparator not in _SN_COMPARATORS or (separator and separator not in _SN_SEPARATORS):
        raise UnitRejected(f"{where}: not a structured numeric (value type SN)")
    first = number(num1, where, "not a structured numeric (value type SN)") if num1 else None
    if num2:
        number(num2, where, "not a structured numeric (value type SN)")
    if comparator in ("", "=") and not separator and not num2:
        return first, None
    text = f"{'' if comparator == '=' else comparator}{num1}{separator}{num2}"
    return None, text or None
