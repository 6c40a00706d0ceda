"""Dates written in notes: read them, and write them back generalised to the year or shifted
by a number of days in the same written form (so "March 5, 2024" stays "Month D, YYYY").

Only the forms the date recogniser reports are read; anything else is returned as None and
the scrubber falls back to a tag.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from medspace.deid.normalise import fold
from medspace.deid.recognizers.base import words

_MONTH_NAMES = words(
    "January February March April May June July August September October November December"
)
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTH_INDEX = {name[:3].lower(): i + 1 for i, name in enumerate(_MONTH_NAMES)}
_CN_DIGITS = "〇一二三四五六七八九"
_REF_YEAR = 2000  # a leap year, for dates written without one


@dataclass(frozen=True)
class TextDate:
    """A date read from text: its value, whether the year was written, and how to write it."""

    value: date
    has_year: bool
    has_day: bool
    write: Callable[[date], str]  # renders a date in the original form (rest kept verbatim)
    year_text: Callable[[int], str]  # how this form writes a bare year


def _year(text: str) -> int:
    y = int(text)
    if len(text) == 2:
        y += 2000 if y <= 40 else 1900
    return y


def _cn_number(text: str) -> int:
    """Chinese numerals up to 99 and digit-by-digit years (二〇二四)."""
    text = text.replace("零", "〇")
    if all(ch in _CN_DIGITS for ch in text):
        return int("".join(str(_CN_DIGITS.index(ch)) for ch in text))
    if text == "十":
        return 10
    if text.startswith("十"):
        return 10 + _CN_DIGITS.index(text[1])
    if text.endswith("十"):
        return 10 * _CN_DIGITS.index(text[0])
    tens, units = text.split("十")
    return 10 * _CN_DIGITS.index(tens) + _CN_DIGITS.index(units)


def _cn_write(n: int, *, digitwise: bool = False) -> str:
    if digitwise:
        return "".join(_CN_DIGITS[int(d)] for d in str(n))
    if n < 10:
        return _CN_DIGITS[n]
    tens, units = divmod(n, 10)
    return ("" if tens == 1 else _CN_DIGITS[tens]) + "十" + (_CN_DIGITS[units] if units else "")


def _pad(n: int, like: str) -> str:
    return str(n).zfill(len(like)) if like.startswith("0") or len(like) == 2 else str(n)


def _safe_date(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


_ISO = re.compile(r"(?P<y>[0-9]{4})(?P<s>[-/.])(?P<m>[0-9]{1,2})(?P=s)(?P<d>[0-9]{1,2})")
_NUM = re.compile(
    r"(?P<a>[0-9]{1,2})(?P<s>[-/.])(?P<b>[0-9]{1,2})(?:(?P=s)(?P<y>[0-9]{4}|[0-9]{2}))?"
)
_ZH = re.compile(
    r"(?:(?P<y>[0-9]{4}|[0-9]{2})(?P<s1>\s*年\s*))?(?P<m>[0-9]{1,2})(?P<s2>\s*月)"
    r"(?:(?P<s3>\s*)(?P<d>[0-9]{1,2})(?P<s4>\s*[日号]))?"
)
_ZH_CN = re.compile(
    r"(?P<y>[〇零一二三四五六七八九]{2,4})年(?P<m>[一二三四五六七八九十]{1,2})月(?:(?P<d>[一二三四五六七八九十]{1,3})(?P<u>[日号]))?"
)
_MONTH = r"(?P<mon>[A-Za-z]{3,9})\.?"
_MDY = re.compile(
    r"(?P<wd>[A-Za-z]+day,?\s+)?"
    + _MONTH
    + r"(?P<s1>\s+)(?P<d>[0-9]{1,2})(?P<o>st|nd|rd|th)?(?![0-9])(?:(?P<s2>,?\s+)(?P<y>[0-9]{4}))?"
)
_DMY = re.compile(
    r"(?P<d>[0-9]{1,2})(?P<o>st|nd|rd|th)?(?P<s1>\s+(?:of\s+)?)"
    + _MONTH
    + r"(?:(?P<s2>,?\s+)(?P<y>[0-9]{4}))?"
)
_MY = re.compile(_MONTH + r"(?P<s1>,?\s+)(?P<y>[0-9]{4})")
_DMON = re.compile(
    r"(?P<d>[0-9]{1,2})(?P<s>[-/ ])(?P<mon>[A-Za-z]{3,4})(?P=s)(?P<y>[0-9]{4}|[0-9]{2})"
)
_YMOND = re.compile(r"(?P<y>[0-9]{4})(?P<s>[-/ ])(?P<mon>[A-Za-z]{3,4})(?P=s)(?P<d>[0-9]{1,2})")
_YM = re.compile(r"(?P<y>[0-9]{4})(?P<s>[-/])(?P<m>[0-9]{1,2})")
_COMPACT = re.compile(r"(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})")


def _month_of(name: str) -> int | None:
    return _MONTH_INDEX.get(name[:3].lower())


def _month_like(name: str, m: int) -> str:
    full = _MONTH_NAMES[m - 1]
    out = full if len(name.rstrip(".")) > 3 and name.lower() != "sept" else full[:3]
    if name.isupper():
        out = out.upper()
    return out


def parse(span_text: str) -> TextDate | None:
    """Read a date the recogniser found. Returns None for a form it cannot rewrite."""
    text = fold(span_text)
    for reader in (
        _read_iso,
        _read_zh,
        _read_zh_cn,
        _read_mdy,
        _read_dmy,
        _read_my,
        _read_dmon,
        _read_ymond,
        _read_compact,
        _read_ym,
        _read_num,
    ):
        got = reader(text, span_text)
        if got is not None:
            return got
    return None


def _rest(m: re.Match[str], original: str) -> str:
    return original[m.end() :]


def _read_iso(text: str, original: str) -> TextDate | None:
    m = _ISO.match(text)
    if not m or not (v := _safe_date(int(m["y"]), int(m["m"]), int(m["d"]))):
        return None
    s, mm, dd, rest = m["s"], m["m"], m["d"], _rest(m, original)
    return TextDate(
        v, True, True, lambda d: f"{d.year}{s}{_pad(d.month, mm)}{s}{_pad(d.day, dd)}{rest}", str
    )


def _read_num(text: str, original: str) -> TextDate | None:
    m = _NUM.fullmatch(text) or _NUM.match(text)
    if not m:
        return None
    a, b = int(m["a"]), int(m["b"])
    y = _year(m["y"]) if m["y"] else _REF_YEAR
    month_first = _safe_date(y, a, b) is not None
    v = _safe_date(y, a, b) if month_first else _safe_date(y, b, a)
    if v is None:
        return None
    s, ya, ab, bb, rest = m["s"], m["y"], m["a"], m["b"], _rest(m, original)

    def write(d: date) -> str:
        first, second = (d.month, d.day) if month_first else (d.day, d.month)
        out = f"{_pad(first, ab)}{s}{_pad(second, bb)}"
        if ya:
            out += s + (str(d.year) if len(ya) == 4 else f"{d.year % 100:02d}")
        return out + rest

    return TextDate(v, bool(ya), True, write, str)


def _read_zh(text: str, original: str) -> TextDate | None:
    m = _ZH.match(text)
    if not m:
        return None
    y = _year(m["y"]) if m["y"] else _REF_YEAR
    day = int(m["d"]) if m["d"] else 15
    v = _safe_date(y, int(m["m"]), day)
    if v is None:
        return None
    g, rest = m.groupdict(), _rest(m, original)

    def write(d: date) -> str:
        out = ""
        if g["y"]:
            out += (str(d.year) if len(g["y"]) == 4 else f"{d.year % 100:02d}") + g["s1"]
        out += f"{_pad(d.month, g['m'])}{g['s2']}"
        if g["d"]:
            out += f"{g['s3']}{_pad(d.day, g['d'])}{g['s4']}"
        return out + rest

    return TextDate(v, bool(g["y"]), bool(g["d"]), write, lambda yr: f"{yr}年")


def _read_zh_cn(text: str, original: str) -> TextDate | None:
    m = _ZH_CN.match(text)
    if not m:
        return None
    day = _cn_number(m["d"]) if m["d"] else 15
    v = _safe_date(_cn_number(m["y"]), _cn_number(m["m"]), day)
    if v is None:
        return None
    has_day, unit, rest = bool(m["d"]), m["u"], _rest(m, original)

    def write(d: date) -> str:
        out = f"{_cn_write(d.year, digitwise=True)}年{_cn_write(d.month)}月"
        return out + (f"{_cn_write(d.day)}{unit}" if has_day else "") + rest

    return TextDate(v, True, has_day, write, lambda yr: f"{_cn_write(yr, digitwise=True)}年")


def _read_mdy(text: str, original: str) -> TextDate | None:
    m = _MDY.match(text)
    if not m or not (mon := _month_of(m["mon"])):
        return None
    y = int(m["y"]) if m["y"] else _REF_YEAR
    v = _safe_date(y, mon, int(m["d"]))
    if v is None:
        return None
    g, rest = m.groupdict(), _rest(m, original)

    def write(d: date) -> str:
        out = _WEEKDAYS[d.weekday()] + g["wd"][g["wd"].index("day") + 3 :] if g["wd"] else ""
        out += _month_like(g["mon"], d.month) + ("." if original[m.end("mon")] == "." else "")
        out += f"{g['s1']}{d.day}{_ordinal(d.day) if g['o'] else ''}"
        if g["y"]:
            out += f"{g['s2']}{d.year}"
        return out + rest

    return TextDate(v, bool(g["y"]), True, write, str)


def _ordinal(day: int) -> str:
    if 11 <= day % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _read_dmy(text: str, original: str) -> TextDate | None:
    m = _DMY.match(text)
    if not m or not (mon := _month_of(m["mon"])):
        return None
    y = int(m["y"]) if m["y"] else _REF_YEAR
    v = _safe_date(y, mon, int(m["d"]))
    if v is None:
        return None
    g, rest = m.groupdict(), _rest(m, original)

    def write(d: date) -> str:
        out = f"{d.day}{_ordinal(d.day) if g['o'] else ''}{g['s1']}{_month_like(g['mon'], d.month)}"
        if g["y"]:
            out += f"{g['s2']}{d.year}"
        return out + rest

    return TextDate(v, bool(g["y"]), True, write, str)


def _read_my(text: str, original: str) -> TextDate | None:
    m = _MY.match(text)
    if not m or not (mon := _month_of(m["mon"])):
        return None
    g, rest = m.groupdict(), _rest(m, original)
    return TextDate(
        date(int(g["y"]), mon, 15),
        True,
        False,
        lambda d: f"{_month_like(g['mon'], d.month)}{g['s1']}{d.year}{rest}",
        str,
    )


def _read_dmon(text: str, original: str) -> TextDate | None:
    m = _DMON.match(text)
    if not m or not (mon := _month_of(m["mon"])):
        return None
    v = _safe_date(_year(m["y"]), mon, int(m["d"]))
    if v is None:
        return None
    g, rest = m.groupdict(), _rest(m, original)

    def write(d: date) -> str:
        yr = str(d.year) if len(g["y"]) == 4 else f"{d.year % 100:02d}"
        mon_text = _MONTH_NAMES[d.month - 1][:3]
        mon_text = mon_text.upper() if g["mon"].isupper() else mon_text
        return f"{_pad(d.day, g['d'])}{g['s']}{mon_text}{g['s']}{yr}{rest}"

    return TextDate(v, True, True, write, str)


def _read_ymond(text: str, original: str) -> TextDate | None:
    m = _YMOND.match(text)
    if not m or not (mon := _month_of(m["mon"])):
        return None
    v = _safe_date(int(m["y"]), mon, int(m["d"]))
    if v is None:
        return None
    g, rest = m.groupdict(), _rest(m, original)

    def write(d: date) -> str:
        mon_text = _MONTH_NAMES[d.month - 1][:3]
        mon_text = mon_text.upper() if g["mon"].isupper() else mon_text
        return f"{d.year}{g['s']}{mon_text}{g['s']}{_pad(d.day, g['d'])}{rest}"

    return TextDate(v, True, True, write, str)


def _read_ym(text: str, original: str) -> TextDate | None:
    m = _YM.fullmatch(text)
    if not m or not (v := _safe_date(int(m["y"]), int(m["m"]), 15)):
        return None
    s, mm = m["s"], m["m"]
    return TextDate(v, True, False, lambda d: f"{d.year}{s}{_pad(d.month, mm)}", str)


def _read_compact(text: str, original: str) -> TextDate | None:
    m = _COMPACT.fullmatch(text)
    if not m or not (v := _safe_date(int(m["y"]), int(m["m"]), int(m["d"]))):
        return None
    return TextDate(v, True, True, lambda d: d.strftime("%Y%m%d"), str)


def shifted(span_text: str, days: int) -> str | None:
    """The date moved by `days` in its own written form, or None if it cannot be read."""
    parsed = parse(span_text)
    if parsed is None:
        return None
    try:
        return parsed.write(parsed.value + timedelta(days=days))
    except OverflowError:
        return None


def year_only(span_text: str) -> str | None:
    """Just the year, written as the date wrote years ("2024", "2024年"); None if no year."""
    parsed = parse(span_text)
    if parsed is None or not parsed.has_year:
        return None
    return parsed.year_text(parsed.value.year)
