"""Normalise the identity fields linkage uses, so two hospitals' records of one person agree.

Hospitals write the same person differently: full-width digits, a lower-case "x" at the end
of a resident ID, hyphens in an SSN, "José" and "JOSE", "O'Brien" and "OBrien", family and
given name swapped, "1980-5-7" and "19800507". Every token is computed from the forms made
here, never from raw input:

- national IDs: Unicode NFKC, separators removed; CN-RID (GB 11643, 18 characters, check
  character verified, a 15-digit legacy ID upgraded) and US-SSN (9 digits, SSA rules) are
  validated, other systems only cleaned;
- names: NFKC, case folded, accents stripped; Latin (and other alphabetic) names become a
  set of words (apostrophes are dropped, other punctuation and spaces separate words), so
  family and given name may come in either field or as one full name; Han characters are
  kept as written, family name first, as Chinese names are always written;
- dates of birth: ISO 8601 (YYYY-MM-DD or YYYYMMDD), a real day, not in the future;
- sex: male / female / other, or None when unknown;
- phone numbers: the last 10 digits (so "+86 138 0013 8000", "13800138000" and
  "0086-138-0013-8000" agree, as do "+1 (555) 010-1234" and "555-010-1234");
- addresses: postal code and street line, NFKC, case folded, accents, spaces and
  punctuation removed ("12 Oak St., Apt 3" = "12 oak st apt 3"); city and province are left
  out, since hospitals spell them differently ("北京市" / "北京") and the postal code says
  the same.

Errors name the field and the rule, never the value (`LinkageInputError`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime

from medspace.linkage.checkdigits import (
    is_ascii_digits,
    resident_id_birth_date,
    resident_id_check_char,
    ssn_problem,
    upgrade_resident_id,
)
from medspace.linkage.errors import LinkageInputError

CN_RID = "CN-RID"
US_SSN = "US-SSN"

#: Names a source may give a system by, mapped to the canonical name (compared case-folded).
_SYSTEM_ALIASES = {
    "cn-rid": CN_RID,
    "https://medspace.example/fhir/sid/cn-rid": CN_RID,
    "us-ssn": US_SSN,
    "ssn": US_SSN,
    "http://hl7.org/fhir/sid/us-ssn": US_SSN,
}
_ID_SEPARATORS = str.maketrans("", "", " -_./\t")
_ASCII_WORDS = re.compile(r"[a-z]+")
#: Apostrophes join (O'Brien = OBrien); every other non-letter separates words.
_APOSTROPHES = frozenset("'’ʼ`´")
_DROP_APOSTROPHES = str.maketrans("", "", "".join(_APOSTROPHES))
_EARLIEST_BIRTH = date(1850, 1, 1)
_SEX = {
    "male": "male",
    "m": "male",
    "man": "male",
    "男": "male",
    "female": "female",
    "f": "female",
    "woman": "female",
    "女": "female",
    "other": "other",
    "o": "other",
    "unknown": None,
    "u": None,
    "": None,
}


@dataclass(frozen=True, slots=True)
class NationalId:
    """A national identifier in canonical form: system name and cleaned value."""

    system: str
    value: str


@dataclass(frozen=True, slots=True)
class NormalisedName:
    """A person's name as linkage sees it: alphabetic words (order not significant) and the
    Han characters in writing order (family name first)."""

    words: tuple[str, ...]
    han: str

    @property
    def is_empty(self) -> bool:
        """True when no letter of any script was left."""
        return not self.words and not self.han


def canonical_system(system: str | None) -> str:
    """The canonical name of an identifier system ("CN-RID", "US-SSN", or the source's own,
    upper-cased). Raises `LinkageInputError` when none is given."""
    cleaned = unicodedata.normalize("NFKC", system or "").strip()
    if not cleaned:
        raise LinkageInputError(
            "the national ID has no system: say which one it is (CN-RID, US-SSN, ...)"
        )
    return _SYSTEM_ALIASES.get(cleaned.casefold(), cleaned.upper())


def normalise_national_id(value: str, system: str | None) -> NationalId:
    """Clean and check a national ID of `system`.

    CN-RID: 18 characters (or a 15-digit legacy ID, upgraded), 17 digits and a check
    character that GB 11643 confirms, with a real birth date. US-SSN: 9 digits the SSA
    could have issued. Other systems: letters and digits, separators removed.
    Raises `LinkageInputError` (never quoting the ID).
    """
    canonical = canonical_system(system)
    text = unicodedata.normalize("NFKC", value)
    cleaned = text.translate(_ID_SEPARATORS).upper()
    if canonical == CN_RID:
        return NationalId(CN_RID, _resident_id(cleaned))
    if canonical == US_SSN:
        problem = ssn_problem(cleaned)
        if problem is not None:
            raise LinkageInputError(f"the SSN is not valid: {problem}; check it and retype it")
        return NationalId(US_SSN, cleaned)
    if not cleaned or not cleaned.isascii() or not cleaned.isalnum():
        raise LinkageInputError(
            "the national ID must be letters and digits (spaces and hyphens are ignored)"
        )
    return NationalId(canonical, cleaned)


def _resident_id(cleaned: str) -> str:
    if len(cleaned) == 15 and is_ascii_digits(cleaned):
        cleaned = upgrade_resident_id(cleaned)
    if len(cleaned) != 18 or not is_ascii_digits(cleaned[:17]):
        raise LinkageInputError(
            "the resident ID (CN-RID) must be 18 characters: 17 digits and a check digit "
            "or X (or a 15-digit ID from before 1999); check it and retype it"
        )
    if cleaned[17] != resident_id_check_char(cleaned[:17]):
        raise LinkageInputError(
            "the resident ID's check digit is wrong (GB 11643): a digit was probably "
            "mistyped; check the ID and retype it"
        )
    if resident_id_birth_date(cleaned) is None:
        raise LinkageInputError(
            "the resident ID's birth-date part (digits 7-14) is not a real date: check the "
            "ID and retype it"
        )
    return cleaned


def is_han(ch: str) -> bool:
    """True for a CJK unified ideograph (basic block, extension A-F, compatibility)."""
    code = ord(ch)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0xF900 <= code <= 0xFAFF
        or 0x20000 <= code <= 0x2EBEF
    )


def _fold(text: str) -> str:
    # NFKC first (full-width letters, ligatures), then case folding (ß -> ss), then strip
    # combining marks (é -> e) and recompose, so Hangul syllables survive.
    folded = unicodedata.normalize("NFKC", text).casefold()
    stripped = "".join(
        ch for ch in unicodedata.normalize("NFKD", folded) if unicodedata.category(ch) != "Mn"
    )
    return unicodedata.normalize("NFC", stripped)


def normalise_name(*parts: str | None) -> NormalisedName:
    """The name made of `parts` (family, given, or one full name, in any order for
    alphabetic names; Han names family first). Never raises; an empty result means no
    usable name."""
    words: list[str] = []
    han: list[str] = []
    for part in parts:
        if not part:
            continue
        if part.isascii():  # the common case, without Unicode tables
            words.extend(_ASCII_WORDS.findall(part.lower().translate(_DROP_APOSTROPHES)))
            continue
        word: list[str] = []
        for ch in _fold(part):
            if ch in _APOSTROPHES:
                continue
            if is_han(ch):
                han.append(ch)
            elif unicodedata.category(ch).startswith("L"):
                word.append(ch)
                continue
            if word:
                words.append("".join(word))
                word = []
        if word:
            words.append("".join(word))
    return NormalisedName(tuple(words), "".join(han))


def normalise_birth_date(value: date | datetime | str) -> date:
    """A date of birth from a date or an ISO 8601 text (YYYY-MM-DD or YYYYMMDD).

    Raises `LinkageInputError` for another format, an impossible day, a date before 1850
    or in the future.
    """
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    else:
        text = unicodedata.normalize("NFKC", value).strip()
        if len(text) == 8 and is_ascii_digits(text):
            text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
        try:
            if len(text) != 10:
                raise ValueError
            day = date.fromisoformat(text)
        except ValueError:
            raise LinkageInputError(
                "the date of birth must be a real day written YYYY-MM-DD (e.g. 1980-05-07)"
            ) from None
    if day > date.today():
        raise LinkageInputError("the date of birth is in the future: check the year")
    if day < _EARLIEST_BIRTH:
        raise LinkageInputError("the date of birth is before 1850: check the year")
    return day


def normalise_sex(value: str | None) -> str | None:
    """ "male", "female", "other", or None for unknown. Accepts M/F/O/U, the words in
    English and 男/女. Raises `LinkageInputError` for anything else."""
    key = unicodedata.normalize("NFKC", value or "").strip().casefold()
    if key not in _SEX:
        raise LinkageInputError(
            "sex must be male, female, other or unknown (M, F, O, U, 男, 女 also work)"
        )
    return _SEX[key]


_PHONE_DIGITS = 10
_MIN_PHONE_DIGITS = 7


def normalise_phone(value: str | None) -> str | None:
    """The last 10 digits of a phone number (country code and trunk prefix fall away), or
    None when fewer than 7 digits are given (an extension, a placeholder). Never raises."""
    digits = "".join(ch for ch in unicodedata.normalize("NFKC", value or "") if ch.isdigit())
    if len(digits) < _MIN_PHONE_DIGITS or not digits.isascii():
        return None
    return digits[-_PHONE_DIGITS:]


def _compact(text: str | None) -> str:
    # Letters, digits and Han characters only: punctuation and spacing vary by clerk.
    return "".join(ch for ch in _fold(text or "") if ch.isalnum())


def normalise_address(postal_code: str | None, line: str | None) -> str | None:
    """Postal code and street line in one comparable form ("postal|line"), or None when the
    street line is missing (a postal code alone is shared by too many people to be
    evidence). Never raises."""
    street = _compact(line)
    if not street:
        return None
    return f"{_compact(postal_code)}|{street}"
