"""Check rules of national identifiers: GB 11643 resident IDs and US Social Security numbers.

Pure functions over ASCII digit strings, shared by linkage (which rejects bad IDs before
any token is made) and by the synthetic generator (which makes valid ones).

- GB 11643-1999 §5.2: the 18th character is ISO 7064 MOD 11-2 over the first 17 digits;
  weight of position i is 2^(17-i) mod 11, check = "10X98765432"[sum mod 11]. A 15-digit
  ID issued before 1999 becomes 18 digits by inserting the century "19" after the
  6-digit division code and appending the check character (GB 11643-1999 annex).
- SSA: an SSN's area (first 3 digits) is never 000, 666 or 900-999, its group (next 2)
  never 00 and its serial (last 4) never 0000.
"""

from __future__ import annotations

from datetime import date
from operator import mul

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_ZERO_OFFSET = ord("0") * sum(_WEIGHTS)  # the weighted sum of the ASCII codes of "0"


def is_ascii_digits(text: str) -> bool:
    """True when `text` is non-empty and only ASCII 0-9 (str.isdigit also accepts ² and ٣)."""
    return text.isascii() and text.isdigit()


def resident_id_check_char(first17: str) -> str:
    """The GB 11643 check character ("0"-"9" or "X") of 17 ASCII digits.

    Raises `ValueError` when `first17` is not exactly 17 ASCII digits (callers turn that
    into their own domain error).
    """
    if len(first17) != 17 or not is_ascii_digits(first17):
        raise ValueError("a resident ID check character needs exactly 17 ASCII digits")
    total = sum(map(mul, first17.encode("ascii"), _WEIGHTS)) - _ZERO_OFFSET
    return _CHECK_CHARS[total % 11]


def resident_id_birth_date(resident_id: str) -> date | None:
    """The date of birth in characters 7-14 of an 18-character resident ID, or None when
    that part is not a real calendar date."""
    part = resident_id[6:14]
    if len(part) != 8 or not is_ascii_digits(part):
        return None
    try:
        return date(int(part[:4]), int(part[4:6]), int(part[6:]))
    except ValueError:
        return None


def upgrade_resident_id(legacy15: str) -> str:
    """The 18-character form of a 15-digit resident ID (century 19, check character added).

    Raises `ValueError` unless `legacy15` is 15 ASCII digits.
    """
    if len(legacy15) != 15 or not is_ascii_digits(legacy15):
        raise ValueError("a legacy resident ID has exactly 15 ASCII digits")
    first17 = legacy15[:6] + "19" + legacy15[6:]
    return first17 + resident_id_check_char(first17)


def ssn_problem(digits: str) -> str | None:
    """Why 9 ASCII digits are not an SSN the SSA issues, or None when they could be one."""
    if len(digits) != 9 or not is_ascii_digits(digits):
        return "an SSN has exactly 9 digits"
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area == "000" or area == "666" or area[0] == "9":
        return "an SSN's first three digits are never 000, 666 or 900-999"
    if group == "00":
        return "an SSN's middle two digits are never 00"
    if serial == "0000":
        return "an SSN's last four digits are never 0000"
    return None
