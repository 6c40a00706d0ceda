"""Chinese resident identity numbers (GB 11643-1999), reusable outside the generator.

A resident ID has 18 characters: a 6-digit administrative-division code (GB/T 2260),
the date of birth as YYYYMMDD, a 3-digit sequence number (odd for men, even for women)
and a check character computed with ISO 7064 MOD 11-2 over the first 17 digits.
"""

from __future__ import annotations

from datetime import date

from medspace.linkage.checkdigits import is_ascii_digits as _is_digits
from medspace.linkage.checkdigits import resident_id_birth_date, resident_id_check_char
from medspace.synth.errors import SynthError

__all__ = [
    "is_valid_resident_id",
    "make_resident_id",
    "resident_id_birth_date",
    "resident_id_check_digit",
]


def resident_id_check_digit(first17: str) -> str:
    """Return the check character ("0"-"9" or "X") for the first 17 digits of a resident ID
    (GB 11643 §5.2, computed by `medspace.linkage.checkdigits`).

    Raises `SynthError` when `first17` is not exactly 17 ASCII digits.
    """
    try:
        return resident_id_check_char(first17)
    except ValueError:
        raise SynthError(
            "a resident ID check digit needs exactly 17 ASCII digits; pass id[:17]"
        ) from None


def is_valid_resident_id(s: str) -> bool:
    """True when `s` is an 18-character resident ID whose check character is right and whose
    birth-date part is a real date. A lower-case "x" is accepted as "X"; nothing else is
    normalised (no spaces, no 15-digit legacy numbers)."""
    if len(s) != 18 or not _is_digits(s[:17]):
        return False
    if s[17].upper() != resident_id_check_digit(s[:17]):
        return False
    return resident_id_birth_date(s) is not None


def make_resident_id(division: str, birth_date: date, sequence: int) -> str:
    """Build a valid resident ID from a 6-digit division code, a birth date and a sequence
    number 0-999 (odd for men, even for women, as GB 11643 requires).

    Raises `SynthError` for a malformed division code, sequence or a birth year outside
    1800-9999.
    """
    if len(division) != 6 or not _is_digits(division):
        raise SynthError("a resident ID division code must be 6 ASCII digits (GB/T 2260)")
    if not 0 <= sequence <= 999:
        raise SynthError("a resident ID sequence number must be between 0 and 999")
    if not 1800 <= birth_date.year <= 9999:
        raise SynthError("a resident ID birth year must be between 1800 and 9999")
    first17 = f"{division}{birth_date:%Y%m%d}{sequence:03d}"
    return first17 + resident_id_check_digit(first17)
