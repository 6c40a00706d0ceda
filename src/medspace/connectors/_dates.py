"""Date and time parsing for FHIR and HL7 v2 values, strict about impossible dates.

Both parsers return `(value, partial)`: `partial` is True when the source gave only a year
or a year and month; the value is then the first day of that period and the mapper adds the
`partial-date` flag. Impossible dates (2023-02-30) and malformed text raise `ValueError`
with a message that never quotes the input. Results are cached: exports repeat timestamps.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

# FHIR R4 date / dateTime / instant (datatypes.html#dateTime): YYYY, YYYY-MM, YYYY-MM-DD, or
# YYYY-MM-DDThh:mm:ss(.fraction)(Z|+hh:mm). The spec asks for a zone whenever a time is
# given; sources that omit it are accepted as local (naive) times.
_FHIR_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_FHIR_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})?"
)

# HL7 v2 DTM (v2.5+ 2.A.22; TS component 1 before): YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]
_HL7_DTM = re.compile(
    r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?"
)

_NOT_A_DATE = "not a valid date"


@lru_cache(maxsize=1024)
def parse_fhir_date(text: str) -> tuple[date, bool]:
    """Parse a FHIR `date` (YYYY, YYYY-MM, YYYY-MM-DD)."""
    m = _FHIR_DATE.fullmatch(text)
    if m is None:
        raise ValueError(_NOT_A_DATE)
    year, month, day = m.groups()
    return date(int(year), int(month or 1), int(day or 1)), day is None


@lru_cache(maxsize=1024)
def parse_fhir_datetime(text: str) -> tuple[datetime | date, bool]:
    """Parse a FHIR `dateTime` or `instant`: a date (possibly partial) or a full timestamp."""
    if len(text) <= 10:
        return parse_fhir_date(text)
    if _FHIR_DATETIME.fullmatch(text) is None:
        raise ValueError(_NOT_A_DATE)
    return datetime.fromisoformat(text), False


@lru_cache(maxsize=1024)
def parse_hl7_datetime(text: str) -> tuple[datetime | date, bool]:
    """Parse an HL7 v2 DTM/TS/DT: a date when no hour is given, else a datetime (aware when
    an offset is given)."""
    m = _HL7_DTM.fullmatch(text)
    if m is None:
        raise ValueError(_NOT_A_DATE)
    year, month, day, hour, minute, second, fraction, offset = m.groups()
    if hour is None:
        return date(int(year), int(month or 1), int(day or 1)), day is None
    tz = None
    if offset is not None:
        minutes = int(offset[1:3]) * 60 + int(offset[3:5])
        if minutes >= 24 * 60:
            raise ValueError(_NOT_A_DATE)
        tz = timezone(timedelta(minutes=-minutes if offset[0] == "-" else minutes))
    micro = int((fraction or "0").ljust(6, "0")[:6])
    return (
        datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute or 0),
            int(second or 0),
            micro,
            tzinfo=tz,
        ),
        False,
    )


def as_datetime(value: datetime | date) -> datetime:
    """A date as midnight of that day (for fields the model types as datetime only)."""
    if isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day)
