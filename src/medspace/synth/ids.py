"""Chinese resident identity numbers (GB 11643-1999), reusable outside the generator.

A resident ID has 18 characters: a 6-digit administrative-division code (GB/T 2260),
the date of birth as YYYYMMDD, a 3-digit sequence number (odd for men, even for women)
and a check character computed with ISO 7064 MOD 11-2 over the first 17 digits.
"""

from __future__ import annotations

from datetime import date

from medspace.synth.errors import SynthError

# GB 11643-1999 §5.2: weight of position i is 2^(17-i) mod 11; check = CHARS[sum mod 11].
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_DIGITS = frozenset("0123456789")


def _is_digits(text: str) -> bool:
    return bool(text) and all(ch in _DIGITS for ch in text)


def resident_id_check_digit(first17: str) -> str:
    """Return the check character ("0"-"9" or "X") for the first 17 digits of a resident ID.

    Raises `SynthError` when `first17` is not exactly 17 ASCII digits.
    """
    if len(first17) != 17 or not _is_digits(first17):
        raise SynthError("a resident ID check digit needs exactly 17 ASCII digits; pass id[:17]")
    total = sum(int(ch) * weight for ch, weight in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def resident_id_birth_date(resident_id: str) -> date | None:
    """Return the date of birth encoded in digits 7-14 of a resident ID, or None when that
    part is not a real calendar date."""
    part = resident_id[6:14]
    if len(part) != 8 or not _is_digits(part):
        return None
    try:
        return date(int(part[:4]), int(part[4:6]), int(part[6:]))
    except ValueError:
        return None


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
