"""Telephone and fax numbers: mainland mobile and landline, North American, international
(E.164 with a leading +), and any number after a phone keyword (HIPAA identifiers D and E)."""

from __future__ import annotations

import re

from medspace.deid.recognizers.base import PatternRecognizer, Validator, register
from medspace.deid.spans import PHONE

_NOT_AFTER = "[0-9A-Za-z+]"
_NA = r"(?![0-9])"
_EXT = r"(?:\s?(?:ext\.?|extension|x|转|分机)\s?[0-9]{1,5})?"
_NANP = r"(?:\([2-9][0-9]{2}\)\s?|[2-9][0-9]{2}[ .-]?)[2-9][0-9]{2}[ .-]?[0-9]{4}"
_KEYWORDS = (
    r"Tel|Telephone|Phone|Ph|Cell|Mobile|Fax|Pager|Contact number|Home|Work|TEL|PHONE|CELL|"
    r"MOBILE|FAX|tel|telephone|phone|cell|mobile|fax|pager|"
    r"电话号码|联系电话|电话|手机号码|手机号|手机|联系方式|传真|座机|固话"
)


def _digit_count(low: int, high: int, group: int = 0) -> Validator:
    def check(m: re.Match[str]) -> bool:
        n = sum(ch.isdigit() for ch in m.group(group))
        return low <= n <= high

    return check


PHONE_RECOGNIZER = (
    PatternRecognizer("phones", ("zh", "en"))
    # Mainland mobile: 1[3-9]x xxxx xxxx, split by spaces or dashes; +86 / 0086 prefix.
    .add(r"1[3-9][0-9](?:[ -]?[0-9]{4}){2}" + _NA, PHONE, score=0.95, not_after=_NOT_AFTER)
    .add(r"(?:\+|00)86[ -]?1[3-9][0-9](?:[ -]?[0-9]{4}){2}" + _NA, PHONE, score=0.95, needs=("86",))
    # Mainland landline: area code 0xx(x) (optionally in brackets or after +86), 7-8 digits.
    .add(
        r"(?:\(0[1-9][0-9]{1,2}\)|0[1-9][0-9]{1,2})[ -]?[2-9][0-9]{2,3}[ -]?[0-9]{4}" + _EXT + _NA,
        PHONE,
        score=0.9,
        not_after=_NOT_AFTER,
    )
    .add(
        r"(?:\+|00)86[ -]?[1-9][0-9]{1,2}[ -]?[2-9][0-9]{6,7}" + _NA,
        PHONE,
        score=0.95,
        needs=("86",),
    )
    .add(r"[48]00[ -]?[0-9]{3}[ -]?[0-9]{4}" + _NA, PHONE, score=0.8, not_after=_NOT_AFTER)
    # North American Numbering Plan: (NXX) NXX-XXXX, optionally +1, and an extension.
    .add(r"(?:\+1|1)[ .-]?" + _NANP + _EXT + _NA, PHONE, score=0.9, not_after=_NOT_AFTER)
    .add(_NANP + _EXT + _NA, PHONE, score=0.9, not_after=_NOT_AFTER)
    # International: + country code, then 2-5 groups; 8-15 digits in all (E.164).
    .add(
        r"\+[1-9][0-9]{0,2}(?:[ .-]?\(?[0-9]{1,5}\)?){2,5}" + _NA,
        PHONE,
        score=0.9,
        check=_digit_count(8, 15),
        not_after="[0-9A-Za-z]",
        needs=("+",),
    )
    # Anything number-like after a phone keyword.
    .add(
        r"(?:" + _KEYWORDS + r")\.?\s*(?:No\.?|number|#)?\s*(?:是|为)?\s*[:#]?\s*"
        r"(\+?[0-9(][0-9() .-]{5,22}[0-9])" + _EXT,
        PHONE,
        score=0.95,
        group=1,
        check=_digit_count(7, 15, 1),
        not_after="[A-Za-z]",
    )
)

register(PHONE_RECOGNIZER)
