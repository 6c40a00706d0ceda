"""Check digits of identifiers, so a number that *is* an identifier is told apart from one
that merely looks like it.

- GB 11643-1999 (Chinese citizen identity number): 17 digits, then an ISO 7064 MOD 11-2
  check character; weights are 2^(17-i) mod 11 and a result of 10 is written "X".
- Luhn (ISO/IEC 7812): payment cards and many health-plan and device numbers.
- US SSN: never area 000, 666 or 900-999, group 00, or serial 0000 (SSA rules).
"""

from __future__ import annotations

from datetime import date

_GB11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_GB11643_CHECK = "10X98765432"


def resident_id_check_char(first17: str) -> str:
    """The GB 11643 check character ('0'-'9' or 'X') for 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _GB11643_WEIGHTS, strict=True))
    return _GB11643_CHECK[total % 11]


def _plausible_birth(yyyymmdd: str) -> bool:
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return 1850 <= born.year <= 2100


def is_valid_resident_id(value: str) -> bool:
    """True when `value` (separators allowed) is an 18-character resident ID whose check
    character is right and whose birth date exists. A lower-case 'x' is accepted."""
    compact = "".join(ch for ch in value if ch not in " -")
    if len(compact) != 18 or not compact[:17].isascii() or not compact[:17].isdigit():
        return False
    if not _plausible_birth(compact[6:14]):
        return False
    return resident_id_check_char(compact[:17]) == compact[17].upper()


def looks_like_resident_id(value: str) -> bool:
    """18 characters shaped like a resident ID (region, real birth date, sequence, check
    position), whatever the check digit says: a typo still identifies a person."""
    compact = "".join(ch for ch in value if ch not in " -")
    return (
        len(compact) == 18
        and compact[:17].isascii()
        and compact[:17].isdigit()
        and (compact[17].isdigit() or compact[17] in "Xx")
        and compact[0] != "0"
        and _plausible_birth(compact[6:14])
    )


def is_old_resident_id(value: str) -> bool:
    """A first-generation 15-digit resident ID: region, YYMMDD birth date, sequence."""
    if len(value) != 15 or not value.isdigit() or value[0] == "0":
        return False
    return _plausible_birth("19" + value[6:12])


def luhn_ok(digits: str) -> bool:
    """Luhn check over a string of ASCII digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def ssn_plausible(area: str, group: str, serial: str) -> bool:
    """An SSN the SSA could have issued (not 000/666/9xx, not group 00, not serial 0000)."""
    return (
        area not in ("000", "666")
        and not area.startswith("9")
        and group != "00"
        and serial != "0000"
    )
