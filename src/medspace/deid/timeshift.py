"""What a rule pack does to structured dates: keep, generalise to the year, or shift by the
patient's keyed offset (intervals within one patient are kept).

Birth dates of people 90 or older are removed under a pack with `age_top_code: 90`
(45 CFR 164.514(b)(2)(i)(C): dates indicative of an age over 89 are aggregated).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from medspace.deid.keys import Keyring
from medspace.deid.packs import RulePack

# FHIR R4 date / dateTime / instant (http://hl7.org/fhir/R4/datatypes.html).
FHIR_DATE = re.compile(
    r"(?P<y>[0-9]{4})(?:-(?P<m>[0-9]{2})(?:-(?P<d>[0-9]{2})"
    r"(?P<time>T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?"
)

AnyDate = date | datetime


class DatePolicy:
    """Applies one pack's date rules; `keys` is needed only for shifting."""

    def __init__(self, pack: RulePack, keys: Keyring | None, as_of: date | None = None) -> None:
        self.pack = pack
        self._keys = keys
        self.as_of = as_of or date.today()

    def offset(self, patient: str) -> int:
        """This patient's shift in days."""
        if self._keys is None:
            raise ValueError("date shifting needs a key")  # guarded by records_need_key()
        return self._keys.shift_days(patient, self.pack.shift_max_days)

    def value(
        self, value: AnyDate | None, patient: str, *, mode: str | None = None
    ) -> AnyDate | None:
        """A model date or datetime under the pack's rule (`mode` overrides `pack.dates`)."""
        if value is None:
            return None
        mode = mode or self.pack.dates
        if mode == "keep":
            return value
        if mode == "shift":
            return value + timedelta(days=self.offset(patient))
        if isinstance(value, datetime):
            return datetime(value.year, 1, 1, tzinfo=value.tzinfo)
        return date(value.year, 1, 1)

    def is_ninety_plus(self, birth: AnyDate | None) -> bool:
        """True when the pack top-codes ages and this birth date means an age at or over it."""
        top = self.pack.age_top_code
        if birth is None or top is None:
            return False
        born = birth.date() if isinstance(birth, datetime) else birth
        age = (
            self.as_of.year
            - born.year
            - ((self.as_of.month, self.as_of.day) < (born.month, born.day))
        )
        return age >= top

    def fhir(self, text: str, patient: str, *, mode: str | None = None) -> str:
        """A FHIR date/dateTime string under the rule, at no more precision than it had."""
        m = FHIR_DATE.fullmatch(text)
        mode = mode or self.pack.dates
        if m is None or mode == "keep":
            return text
        if mode == "year":
            return m["y"]
        if not m["m"]:
            return text  # a bare year carries no day to shift
        offset = timedelta(days=self.offset(patient))
        if not m["d"]:
            moved = date(int(m["y"]), int(m["m"]), 15) + offset
            return f"{moved.year:04d}-{moved.month:02d}"
        moved = date(int(m["y"]), int(m["m"]), int(m["d"])) + offset
        return moved.isoformat() + (m["time"] or "")

    def fhir_instant(self, text: str, patient: str) -> str | None:
        """A FHIR instant (full precision required): shifted, kept, or None under "year"
        (an instant cannot be written as a year; the caller drops or replaces it)."""
        if self.pack.dates == "year":
            return None
        return self.fhir(text, patient)
