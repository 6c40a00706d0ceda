"""Dates in many written forms, and ages over 89 (HIPAA identifier C).

Years alone are not PHI under Safe Harbor and are not reported. Times written next to a
date are part of the date's span.
"""

from __future__ import annotations

import re
from datetime import date

from medspace.deid.recognizers.base import PatternRecognizer, register
from medspace.deid.spans import AGE, DATE

_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Sept|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
)
_MONTH = r"(?:" + _MONTHS + "|" + _MONTHS.upper() + r")\.?"
_MONTH_ABBR = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|" + (
    "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|SEPT|OCT|NOV|DEC)"
)
_ORD = r"(?:st|nd|rd|th)?"
_YEAR4 = r"(?:1[89][0-9]{2}|20[0-9]{2})"
_TIME = (
    r"(?:(?:[T ]|,\s|\s+at\s+)(?:[01]?[0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]+)?)?"
    r"(?:\s?[AaPp]\.?[Mm]\.?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_ZH_TIME = (
    r"(?:\s*(?:上午|下午|晚上|凌晨|中午|早上|傍晚)?"
    r"\s*[0-9]{1,2}\s*[:时点]\s*(?:[0-9]{1,2}\s*分?)?)?"
)
_CN_DIGIT = "〇零一二三四五六七八九"
_NA = r"(?![0-9A-Za-z])"


def _valid(y: int | None, m: int, d: int | None) -> bool:
    if not 1 <= m <= 12:
        return False
    if d is None:
        return True
    try:
        date(y if y is not None else 2000, m, d)
    except ValueError:
        return False
    return True


def _ymd(m: re.Match[str]) -> bool:
    return _valid(int(m.group("y")), int(m.group("m")), int(m.group("d")))


def _numeric_dmy(m: re.Match[str]) -> bool:
    a, b = int(m.group("a")), int(m.group("b"))
    return _valid(None, a, b) or _valid(None, b, a)


def _zh_ymd(m: re.Match[str]) -> bool:
    d = m.group("d")
    return _valid(None, int(m.group("m")), int(d) if d else None)


def _compact(m: re.Match[str]) -> bool:
    s = m.group(0)
    return _valid(int(s[:4]), int(s[4:6]), int(s[6:8]))


_NOT_AFTER = "[0-9A-Za-z]"

DATE_RECOGNIZER = (
    PatternRecognizer("dates", ("zh", "en"))
    # ISO and year-first: 2024-03-05, 2024/3/5, 2024.03.05, with an optional time.
    .add(
        r"(?P<y>" + _YEAR4 + r")(?P<s>[-/.])(?P<m>[0-9]{1,2})(?P=s)(?P<d>[0-9]{1,2})" + _TIME + _NA,
        DATE,
        score=0.95,
        check=_ymd,
        not_after=_NOT_AFTER,
    )
    # Day and month first with a year: 03/05/2024, 5.3.2024, 3-5-24.
    .add(
        r"(?P<a>[0-9][0-9]?)(?P<s>[-/.])(?P<b>[0-9]{1,2})(?P=s)(?:"
        + _YEAR4
        + r"|[0-9]{2})"
        + _TIME
        + _NA,
        DATE,
        score=0.9,
        check=_numeric_dmy,
        not_after=_NOT_AFTER,
    )
    # Year and month: 2019-08, 2019/8 (not "1817.2", a lab value; not a full date).
    .add(
        r"(?:19|20)[0-9]{2}[-/](?:0?[1-9]|1[0-2])(?![0-9]|[-/.][0-9])",
        DATE,
        score=0.8,
        not_after=_NOT_AFTER,
    )
    # Month and day without a year, after a preposition: "on 3/5".
    .add(
        r"(?:on|since|from|until|till|to|by|dated?|before|after|of)\s+"
        r"((?P<a>[0-9]{1,2})/(?P<b>[0-9]{1,2}))(?![0-9/])",
        DATE,
        score=0.7,
        group=1,
        check=_numeric_dmy,
        not_after="[A-Za-z]",
    )
    # Month names: March 5, 2024 / Mar. 5th / 5 March 2024 / 5th of March / March 2024.
    .add(
        _MONTH + r"\s+[0-9]{1,2}" + _ORD + r"(?:,?\s+" + _YEAR4 + r")?" + _TIME + _NA,
        DATE,
        score=0.9,
        not_after="[A-Za-z]",
    )
    .add(
        r"[0-9][0-9]?"
        + _ORD
        + r"\s+(?:of\s+)?"
        + _MONTH
        + r"(?:,?\s+"
        + _YEAR4
        + r")?(?![A-Za-z])",
        DATE,
        score=0.9,
        not_after=_NOT_AFTER,
    )
    .add(_MONTH + r",?\s+" + _YEAR4 + _NA, DATE, score=0.85, not_after="[A-Za-z]")
    # 05-Mar-2024, 05 MAR 24, 2024-Mar-05.
    .add(
        r"[0-9][0-9]?[-/ ]" + _MONTH_ABBR + r"[-/ ](?:" + _YEAR4 + r"|[0-9]{2})" + _NA,
        DATE,
        score=0.9,
        not_after=_NOT_AFTER,
    )
    .add(
        _YEAR4 + r"[-/ ]" + _MONTH_ABBR + r"[-/ ][0-9]{1,2}" + _NA,
        DATE,
        score=0.9,
        not_after=_NOT_AFTER,
    )
    # Chinese: 2024年3月5日, 2024年3月, 3月5日 / 3月5号, with an optional time of day.
    .add(
        r"[0-9][0-9](?:[0-9][0-9])?\s*年\s*(?P<m>[0-9]{1,2})\s*月(?:\s*(?P<d>[0-9]{1,2})\s*[日号])?"
        + _ZH_TIME,
        DATE,
        score=0.95,
        check=_zh_ymd,
        not_after="[0-9]",
        needs=("年",),
    )
    .add(
        r"(?P<m>[0-9][0-9]?)\s*月\s*(?P<d>[0-9]{1,2})\s*[日号]" + _ZH_TIME,
        DATE,
        score=0.9,
        check=_zh_ymd,
        not_after="[0-9年]",
        needs=("月",),
    )
    .add(
        r"["
        + _CN_DIGIT
        + r"]{2,4}年[一二三四五六七八九十]{1,2}月(?:[一二三四五六七八九十]{1,3}[日号])?",
        DATE,
        score=0.9,
    )
    # Compact 20240305.
    .add(
        r"(?:1[89]|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])" + _NA,
        DATE,
        score=0.6,
        check=_compact,
        not_after=_NOT_AFTER,
    )
)

_TEMPERATURE_WORDS = re.compile(r"(?:emp|T:|T |Tmax|Tm|°|fever|febrile|体温)", re.IGNORECASE)


def _not_temperature(m: re.Match[str]) -> bool:
    before = m.string[max(0, m.start() - 14) : m.start()]
    return _TEMPERATURE_WORDS.search(before) is None


# Ages over 89 only: younger ages are not identifiers. The span is the number.
_AGE_NUM = r"(9[0-9]|1[0-4][0-9])"
AGE_RECOGNIZER = (
    PatternRecognizer("ages", ("zh", "en"))
    .add(
        _AGE_NUM
        + r"(?:\s*|-)(?:years?|yrs?|y|Years?|YEARS?)(?:\s*|-)(?:of\s+age|old|OLD)(?![A-Za-z])",
        AGE,
        group=1,
        not_after=_NOT_AFTER,
    )
    .add(
        _AGE_NUM + r"\s*(?:y/o|yo|y\.o\.|yr-old|Y/O|YO)(?![A-Za-z])",
        AGE,
        group=1,
        score=0.8,
        not_after=_NOT_AFTER,
    )
    .add(
        r"(?:aged?|Aged?|AGED?|age:|Age:|AGE:|age of|Age of)\s*" + _AGE_NUM + _NA,
        AGE,
        group=1,
        not_after="[A-Za-z]",
    )
    # "93F," / "101 M;" in triage shorthand; not a temperature ("Temp 99F").
    .add(
        _AGE_NUM + r" ?[MF](?=[,;:)]|\s)",
        AGE,
        group=1,
        score=0.7,
        not_after=r"[0-9A-Za-z.°]",
        check=_not_temperature,
    )
    .add(
        r"in\s+(?:his|her|their)\s+(9[0-9]s|nineties)(?![A-Za-z])",
        AGE,
        group=1,
        not_after="[A-Za-z]",
    )
    .add(_AGE_NUM + r"\s*(?:周岁|岁)", AGE, group=1, not_after="[0-9]", needs=("岁",))
    .add(r"(?:年龄|享年|终年)\s*[:为]?\s*" + _AGE_NUM + r"(?![0-9])", AGE, group=1, needs=("年",))
)

register(DATE_RECOGNIZER)
register(AGE_RECOGNIZER)
