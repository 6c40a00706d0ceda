"""Chinese personal names (HIPAA identifier A; GB/T 37964 姓名).

A surname from the dictionary followed by one or two given-name characters, accepted when
the text around it says it is a name: a role before it (患者, 家属, 主治医师:), a title
after it (先生, 女士, 医生), a "，女，" or "65岁" right after it, or - when it stands alone
between punctuation - only when every given-name character is a common one. A name found
once is then found wherever else it occurs in the same text.
"""

from __future__ import annotations

import re

from medspace.deid.recognizers.base import alternation, occurrences, register, wordlist, words
from medspace.deid.spans import PERSON, Span

_SURNAMES = wordlist("cn_surnames.txt")
_COMPOUND = sorted((s for s in _SURNAMES if len(s) > 1), key=len, reverse=True)
_COMPOUND_BY_FIRST: dict[str, list[str]] = {}
for _c in _COMPOUND:
    _COMPOUND_BY_FIRST.setdefault(_c[0], []).append(_c)
_GIVEN = wordlist("cn_given_chars.txt")
_NOT_NAMES = wordlist("cn_not_names.txt")

# Characters that do not end a given name here (function words, clinical words).
_STOP = frozenset(
    "的了和与及或因于在自从向对被把将已曾现今昨前后年月日时岁男女性是为有无未不也又再并且但而就都才等"
    "诉述称说入出来去到至住院科诊治疗病症患者主经由以行予给用服做作查检术次个位名例约共均各该此其之所"
    "系属即便仍尚较很最更太可能会应须需要想感觉见看听伴突反复持续加重减轻转稳血压糖脂肺肝肾脑胃肠咳痰"
    "热痛晕吐泻胸腹头部侧上下左右内外间面处点分秒周号床室楼层区县市省镇乡村路街道陪签字电话手机联系式"
    "地址身份证码医护士师任先姐教授老某诊断药片针剂毫克升"
)

#: Role words before a name; also used by the English recogniser for Latin names in
#: Chinese notes ("患者Brenda Peterson").
BEFORE_WORDS = words(
    "患者姓名 患者 病人 病患 患儿 姓名 名字 名叫 家属 配偶 丈夫 妻子 爱人"
    " 老伴 儿子 女儿 父亲 母亲 孙子 孙女 兄弟 姐妹 哥哥 姐姐 弟弟 妹妹"
    " 联系人 紧急联系人 监护人 代诉人 陪同人 陪同者 陪同 签名 签字 记录者"
    " 记录人 记录医师 主治医师 主治医生 住院医师 住院医生 经治医师 经治医生"
    " 主管医生 主管医师 管床医生 管床医师 责任护士 上级医师 会诊医师 会诊医生"
    " 报告医师 报告医生 审核医师 审核者 报告人 检查者 操作者 医师签名 医生签名"
    " 护士签名 见证人 告知人 被告知人 委托人 授权人 主刀 术者 助手 麻醉医师"
    " 麻醉师 接诊医生 接诊医师 主任医师 副主任医师 主治 医生 医师 主任 护士"
    " 护士长 教授 转诊医生 介绍人 患方 之妻 之夫 之子 之女 之母 之父 妻子 丈夫"
)
#: Titles after a name ("王先生"); also used for Latin names in Chinese notes.
AFTER_WORDS = words(
    "先生 女士 小姐 医生 医师 大夫 主任 教授 护士 护士长 护师 老师 同志"
    " 师傅 院长 科长 阿姨 大爷 大妈 奶奶 爷爷 老人 患者 之子 之女 之妻"
    " 之夫 签字 签名 陪同 代诉 主诉"
)

# Compound surnames first, then one character class for the single ones (a class is one
# test per position; an alternation of hundreds of literals is hundreds).
_SURNAME_ALT = (
    alternation(_COMPOUND) + "|[" + "".join(sorted(s for s in _SURNAMES if len(s) == 1)) + "]"
)
_BEFORE_RE = re.compile("(?:" + alternation(BEFORE_WORDS) + r")[\s:]*(?=(" + _SURNAME_ALT + "))")
# English titles before a Chinese name in mixed notes ("Mr. 刘", "Dr. 王建国").
_EN_TITLE_RE = re.compile(
    r"(?:Mr|Mrs|Ms|Miss|Dr|Prof|MR|MRS|MS|DR)\.?\s*(?=(" + _SURNAME_ALT + "))"
)
_AFTER_RE = re.compile("(?:" + alternation(AFTER_WORDS) + ")")
# ", 女," / "(男" / ", 65岁" right after a name; the match starts where the name ends.
_SEX_AGE_RE = re.compile(r",\s*[男女]性?\s*[,、(]|\(\s*[男女]|,\s*[0-9]{1,3}\s*岁")

# A short Han run standing alone between non-Han characters, starting with a surname.
_ALONE = re.compile(
    r"[^\u4e00-\u9fff](?:" + _SURNAME_ALT + r")[\u4e00-\u9fff]{1,2}(?![\u4e00-\u9fff])"
)


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


def _surname_at(text: str, i: int) -> int:
    """Length of the surname starting at i (compound first), or 0."""
    if i >= len(text):
        return 0
    for s in _COMPOUND_BY_FIRST.get(text[i], ()):
        if text.startswith(s, i):
            return len(s)
    return 1 if text[i] in _SURNAMES else 0


def _given_after(text: str, i: int, limit: int = 2) -> int:
    """How many given-name characters follow position i (0 to `limit`)."""
    n = 0
    while n < limit and i + n < len(text):
        ch = text[i + n]
        if not _is_han(ch) or ch in _STOP:
            break
        n += 1
    return n


def _bounded_given(text: str, i: int) -> int:
    """1 or 2 when that many Han characters follow i and then a non-Han character."""
    for n in (2, 1):
        run = text[i : i + n]
        closed = i + n == len(text) or not _is_han(text[i + n : i + n + 1])
        if len(run) == n and closed and all(_is_han(ch) for ch in run):
            return n
    return 0


def _plausible(name: str, surname_len: int, *, strict: bool) -> bool:
    if name in _NOT_NAMES or name[:2] in _NOT_NAMES or name[:3] in _NOT_NAMES:
        return False
    given = name[surname_len:]
    if strict:
        return bool(given) and all(ch in _GIVEN for ch in given)
    return True


def _bounded_before(text: str, i: int) -> bool:
    """True when the character before i is not a Han character (start, punctuation, space)."""
    return i == 0 or not _is_han(text[i - 1])


class ChineseNameRecognizer:
    """Chinese names by surname dictionary plus context."""

    name = "names-zh"
    languages = frozenset({"zh"})

    def find(self, text: str) -> list[Span]:
        """Names with context, then every other occurrence of each full name found."""
        spans: list[Span] = []
        for m in _BEFORE_RE.finditer(text):
            start = m.end()
            slen = len(m.group(1))
            glen = _given_after(text, start + slen)
            if glen < 2:
                # A role word on the left and punctuation on the right bound the name, so
                # its characters are taken whatever they are ("患者马想(身份证号...").
                glen = max(glen, _bounded_given(text, start + slen))
            name = text[start : start + slen + glen]
            if glen and _plausible(name, slen, strict=False):
                spans.append(Span(start, start + slen + glen, PERSON, 0.9, self.name))
        for m in _EN_TITLE_RE.finditer(text):
            if m.start() > 0 and "A" <= text[m.start() - 1].upper() <= "Z":
                continue
            start = m.end()
            slen = len(m.group(1))
            glen = _given_after(text, start + slen)
            if _plausible(text[start : start + slen + glen], slen, strict=False):
                spans.append(Span(start, start + slen + glen, PERSON, 0.9, self.name))
        for m in _AFTER_RE.finditer(text):
            found = self._before_anchor(text, m.start(), surname_only_ok=True)
            if found:
                spans.append(found)
        for m in _SEX_AGE_RE.finditer(text):
            if m.start() > 0 and _is_han(text[m.start() - 1]):
                found = self._before_anchor(text, m.start(), surname_only_ok=False)
                if found:
                    spans.append(found)
        for m in _ALONE.finditer("\n" + text):
            s, e = m.start(), m.end() - 1  # in `text`: the leading non-Han char is dropped
            slen = _surname_at(text, s)
            if slen and e - s - slen in (1, 2) and _plausible(text[s:e], slen, strict=True):
                spans.append(Span(s, e, PERSON, 0.7, self.name))
        return spans + self._propagate(text, spans)

    def _before_anchor(self, text: str, anchor: int, *, surname_only_ok: bool) -> Span | None:
        """The name ending right before `anchor` (a title, or ", 女,"), longest first.

        After a sex/age anchor (`surname_only_ok` False) a name standing after punctuation
        is taken whatever its characters: the anchor and the punctuation bound it.
        """
        for length in (4, 3, 2, 1):
            s = anchor - length
            if s < 0:
                continue
            slen = _surname_at(text, s)
            if not slen or slen > length:
                continue
            given = text[s + slen : anchor]
            if len(given) > 2 or any(not _is_han(ch) for ch in given):
                continue
            bounded = _bounded_before(text, s)
            if any(ch in _STOP for ch in given) and not bounded:
                continue
            if not given and not surname_only_ok:
                continue
            if _plausible(text[s:anchor], slen, strict=not bounded and bool(given)):
                return Span(s, anchor, PERSON, 0.85, self.name)
        return None

    def _propagate(self, text: str, spans: list[Span]) -> list[Span]:
        names = {text[s.start : s.end] for s in spans if s.end - s.start >= 2}
        if not names:
            return []
        return [
            Span(start, start + len(name), PERSON, 0.8, self.name)
            for name in names
            for start in occurrences(text, name)
        ]


register(ChineseNameRecognizer())
