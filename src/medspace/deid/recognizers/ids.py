"""Identifiers: resident IDs (GB 11643), SSNs, record/insurance/account numbers, cards,
licence plates, device and other unique numbers (HIPAA identifiers G to M and R)."""

from __future__ import annotations

import re

from medspace.deid.checksums import (
    is_old_resident_id,
    is_valid_resident_id,
    looks_like_resident_id,
    luhn_ok,
    ssn_plausible,
)
from medspace.deid.recognizers.base import PatternRecognizer, alternation, register, words
from medspace.deid.spans import ID, Span

_ALNUM = "[0-9A-Za-z]"
_NA = r"(?![0-9A-Za-z])"

# 18 characters, optionally split by single spaces or dashes anywhere (6-8-4, 3-3-4-4-4 ...).
_RESIDENT_ANYWHERE = r"[1-9](?:[ -]?[0-9]){16}[ -]?[0-9Xx]"

_EN_KEYS = (
    r"MRN|MR\s?#|MR\s?No\.?|Med(?:ical)?\s+Rec(?:ord)?\.?|Record|Patient\s*(?:ID|Number)|Pt\.?\s*ID|"
    r"Chart|Acct\.?|Account|Member\s*ID|Member|Subscriber(?:\s*ID)?|Policy(?:\s*ID)?|Group|"
    r"Insurance(?:\s*ID)?|Health\s+Plan(?:\s*ID)?|Beneficiary(?:\s*ID)?|Medicare(?:\s*ID)?|"
    r"Medicaid(?:\s*ID)?|MBI|HICN|Driver'?s\s+Licen[cs]e|DL\s?#|Licen[cs]e|Certificate|Passport|"
    r"License\s+Plate|Plate|VIN|Serial|S/N|Device\s*(?:ID|Serial)|UDI|NPI|DEA|ID|Identifier|Case|"
    r"Claim|Encounter(?:\s*ID)?|Visit(?:\s*ID)?|Accession"
)
_EN_KEYS_RE = (
    r"(?:" + _EN_KEYS + r")(?:\s*(?:number|num\.?|no\.?|#))?\s*(?:is|was|of)?\s*[:#]?\s*"
    r"([A-Za-z0-9]+(?:[-/.][A-Za-z0-9]+)*(?: [0-9]+[Xx]?)*)"
)
# In lower case only the keys that are not everyday words ("record", "group", "case" are).
_LOWER_KEYS = (
    r"mrn|mr\s?#|medical\s+record|med\s+rec|acct\.?|account|member\s*id|subscriber|policy|"
    r"insurance|medicare|medicaid|mbi|hicn|driver'?s\s+licen[cs]e|licen[cs]e|passport|plate|vin|"
    r"serial|s/n|device\s*(?:id|serial)|udi|npi|dea|patient\s*id|pt\.?\s*id|accession|claim"
)
_ZH_KEYS = words(
    "病案号码 病案号 住院号 门诊号 急诊号 病历号 登记号 就诊号 就诊卡号 诊疗卡号 ID号 患者ID"
    " 医保卡号 医保号 医保卡 社保卡号 社保号 社会保障卡号 医疗保险号 保险单号 保单号 新农合号"
    " 身份证号码 身份证号 身份证 公民身份号码 证件号码 证件号 护照号码 护照号 护照 军官证号"
    " 银行卡号 银行账号 卡号 账号 帐号 车牌号码 车牌号 车牌 驾驶证号 驾驶证 许可证号 执业证号"
    " 设备编号 设备序列号 序列号 影像号 检查号 标本号 条码号"
)
_ZH_KEYS_RE = (
    r"(?:" + alternation(_ZH_KEYS) + r")\s*(?:是|为|:)?\s*"
    r"([A-Za-z0-9]+(?:[-/.][A-Za-z0-9]+)*(?: [0-9]+[Xx]?)*)"
)


def _resident(m: re.Match[str]) -> bool:
    if is_valid_resident_id(m[0]):
        return True
    text, s, e = m.string, m.start(), m.end()
    alone = (s == 0 or not text[s - 1].isascii() or not text[s - 1].isalnum()) and (
        e == len(text) or not text[e].isascii() or not text[e].isalnum()
    )
    return alone and looks_like_resident_id(m[0])


def _enough_digits(m: re.Match[str]) -> bool:
    return sum(ch.isdigit() for ch in m.group(1)) >= 3


def _card(m: re.Match[str]) -> bool:
    digits = "".join(ch for ch in m.group(0) if ch.isdigit())
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _ssn(m: re.Match[str]) -> bool:
    return ssn_plausible(m.group("a"), m.group("g"), m.group("s"))


ID_RECOGNIZER = (
    PatternRecognizer("ids", ("zh", "en"))
    # A resident ID with a valid check digit is found even glued to other letters or digits;
    # one with a wrong check digit (a typo) when it stands alone.
    .add(_RESIDENT_ANYWHERE, ID, score=1.0, check=_resident)
    .add(
        r"[1-9][0-9]{14}" + _NA,
        ID,
        score=0.7,
        not_after=_ALNUM,
        check=lambda m: is_old_resident_id(m[0]),
    )
    .add(
        r"(?P<a>[0-9]{3})([- ])(?P<g>[0-9]{2})\2(?P<s>[0-9]{4})" + _NA,
        ID,
        score=0.95,
        check=_ssn,
        not_after=_ALNUM,
    )
    .add(
        r"(?:SSN|SS#|Social\s+Security(?:\s+(?:Number|No\.?|#))?)\s*[:#]?\s*"
        r"([0-9]{3}[- ]?[0-9]{2}[- ]?[0-9]{4})" + _NA,
        ID,
        score=1.0,
        group=1,
        not_after="[A-Za-z]",
    )
    .add(_EN_KEYS_RE, ID, score=0.95, group=1, check=_enough_digits, not_after="[A-Za-z]")
    .add(
        _EN_KEYS_RE.replace(_EN_KEYS, _LOWER_KEYS),
        ID,
        score=0.9,
        group=1,
        check=_enough_digits,
        not_after="[A-Za-z]",
    )
    .add(
        _ZH_KEYS_RE,
        ID,
        score=0.95,
        group=1,
        check=_enough_digits,
        needs=("号", "卡", "证", "ID", "照", "码", "牌"),
    )
    # Payment cards and other Luhn-checked numbers, in groups of four or unbroken.
    .add(
        r"[0-9]{4}(?:[ -]?[0-9]{4}){2,3}(?:[ -]?[0-9]{1,3})?" + _NA,
        ID,
        score=0.85,
        check=_card,
        not_after=_ALNUM,
    )
    # Mainland licence plates: province character, letter, five or six characters.
    .add(
        r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼]"
        r"[A-Z][·• ]?[A-HJ-NP-Z0-9]{5,6}" + _NA,
        ID,
        score=0.9,
    )
    # Long unbroken digit runs are identifiers in clinical text (lab values are short).
    .add(r"[0-9]{8,}" + _NA, ID, score=0.4, not_after=_ALNUM)
    # MAC addresses identify devices.
    .add(
        r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}" + _NA, ID, score=0.9, not_after=_ALNUM, needs=(":",)
    )
)

# From a digit, a token with at least five digits (the look-ahead stays inside the token).
_DIGIT_LED = re.compile(r"[0-9](?=(?:[A-Za-z-]*[0-9]){4})[0-9A-Za-z-]*")
_TOKEN_CHAR = re.compile(r"[0-9A-Za-z-]")


class CodeRecognizer:
    """Codes mixing letters and at least five digits (MRNs like H1-P000123, SN4471902AX).

    Found from their first digit and widened to the whole token, so the engine scans for
    digits rather than trying every word.
    """

    name = "codes"
    languages = frozenset({"zh", "en"})

    def find(self, text: str) -> list[Span]:
        """Every letter-and-digit token with five or more digits."""
        out: list[Span] = []
        pos = 0
        while (m := _DIGIT_LED.search(text, pos)) is not None:
            start, end = m.span()
            pos = end
            while start > 0 and _TOKEN_CHAR.match(text, start - 1):
                start -= 1
            token = text[start:end].strip("-")
            if (
                len(token) <= 32
                and sum(ch.isdigit() for ch in token) >= 5
                and any(ch.isalpha() for ch in token)
                and not (end < len(text) and text[end] == "_")
            ):
                lead = len(text[start:end]) - len(text[start:end].lstrip("-"))
                out.append(Span(start + lead, start + lead + len(token), ID, 0.5, self.name))
        return out


register(ID_RECOGNIZER)
register(CodeRecognizer())
