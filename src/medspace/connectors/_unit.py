"""Internal signals a mapper raises for one source unit, and small shared helpers.

Mappers raise `UnitRejected` (the unit is malformed) or `UnitSkipped` (well-formed but not
mapped); readers turn them into `Rejected` / `Skipped` outcomes. Reasons name the field and
the rule, never a value: they end up in quarantine listings that stewards read.
"""

from __future__ import annotations

import re

#: Flag for a date that the source sent with year or year-month precision only; the record
#: carries the first day of that period.
PARTIAL_DATE = "partial-date"

#: Flag for a note whose language the source did not declare and that was guessed.
LANGUAGE_GUESSED = "language-guessed"

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


class UnitRejected(Exception):
    """The unit is malformed; `reason` names the field and rule, never a value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnitSkipped(Exception):
    """The unit is well formed but of a type MedSpace does not map."""

    def __init__(self, unit_type: str) -> None:
        super().__init__(unit_type)
        self.unit_type = unit_type


def guess_language(text: str) -> str:
    """Return "zh" when the text has CJK ideographs, else "en" (a guess: callers flag it)."""
    if text.isascii():  # the common English case, without a regex scan
        return "en"
    return "zh" if _CJK.search(text) else "en"


def language_from_tag(tag: str | None) -> str | None:
    """Map a BCP 47 tag ("zh-CN", "en-US", "en") to MedSpace's "zh" | "en", else None."""
    if not tag:
        return None
    primary = tag.split("-", 1)[0].lower()
    return primary if primary in ("zh", "en") else None


def unexpected(kind: str, exc: BaseException) -> str:
    """Reason for an exception a mapper did not foresee: names its class, never its message
    (messages of foreign exceptions can quote input)."""
    return (
        f"{kind}: structure not understood ({type(exc).__name__} while mapping); "
        "the unit is kept in quarantine, report it to the MedSpace connector maintainers"
    )


#: Why a unit carrying a NUL character is rejected: no clinical text format allows it
#: (FHIR strings, HL7 v2 and CSV text), and PostgreSQL text columns refuse it.
NUL_REASON = "a text value contains a NUL (0x00) character, which clinical text may not carry"


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(v) for v in value)
    slots = getattr(type(value), "__slots__", None)
    if slots and hasattr(value, "__dataclass_fields__"):
        return any(_has_nul(getattr(value, name)) for name in value.__dataclass_fields__)
    return False


def reject_nul(value: object) -> None:
    """Raise `UnitRejected` when any string inside `value` (parsed JSON, or model records)
    contains a NUL character, so one such unit is quarantined instead of failing a run."""
    if _has_nul(value):
        raise UnitRejected(NUL_REASON)
