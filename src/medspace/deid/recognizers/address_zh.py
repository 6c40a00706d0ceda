"""Chinese addresses: province / city / district / town / road / number (住址, HIPAA B).

An address starts at a province or large-city name from the gazetteer, at an address word
(住址, 家住, 现住), or at a run of administrative units (XX市XX区, XX区XX路); it runs on
over address-like characters and is cut back to its last administrative or building
suffix (市 区 县 镇 路 街 号 栋 室 ...). A six-digit postcode right after it belongs to it.
"""

from __future__ import annotations

import re

from medspace.deid.recognizers.base import alternation, register, wordlist
from medspace.deid.spans import ADDRESS, Span

_REGIONS = wordlist("cn_regions.txt")
_PROVINCE_SUFFIX = r"(?:省|市|自治区|壮族自治区|回族自治区|维吾尔自治区|特别行政区)?"
_H = r"[\u4e00-\u9fff]"

# Where the address is allowed to run: Han, digits, Latin letters (座 A, B栋), '-', '#'.
_BODY_RUN = re.compile(r"[\u4e00-\u9fff0-9A-Za-z#\-]*")
# Suffixes an address may end on.
_END_SUFFIX = re.compile(
    r"(?:省|市|自治州|州|地区|盟|区|县|旗|镇|乡|街道|村|社区|小区|花园|公寓|大厦|广场|新村|家园|苑|庄|里|"
    r"路|街|大街|大道|巷|胡同|弄|号|号楼|栋|幢|座|单元|室|层|楼|户|组)"
)

# Where an address starts, by kind. Separate patterns, not one alternation of named groups:
# each then starts with a fixed set of characters and the engine can skip to them.
_ANCHORS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "word",
        re.compile(
            "住址|地址|家庭住址|家庭地址|联系地址|通讯地址|户籍地址|现住址|现住地址|工作地址|单位地址|"
            "常住地址|居住地址|家住|现住|住在|居住于|居住在|住于|户籍地|户籍|籍贯|出生地|工作地点|寄往"
        ),
    ),
    ("latin", re.compile("住(?=[A-Za-z0-9])")),  # a Latin-script address after 住
    ("region", re.compile("(?:" + alternation(_REGIONS) + ")" + _PROVINCE_SUFFIX)),
    # No gazetteer name: "X市Y区", "Y区Z路", or a road with a number ("建国路88号").
    ("unit", re.compile("(?:市|区|县)(?=" + _H + "{1,6}?(?:区|县|旗|镇|乡|街道|路|街|大道))")),
    ("road", re.compile("(?:路|街|大道|巷|胡同|弄)[0-9]+号")),
)
_FIELD_VALUE = re.compile(r"\s*([^,;。\n\t]{1,80}?)\s*(?=[,;。\n\t]|  |$)")
_POSTCODE = re.compile(r"\s?[0-9]{6}(?![0-9])")
# Characters that end an address run (function words and clinical verbs).
_BREAK = frozenset("的因于在患者入诊伴诉无有曾及与或并就行查示见,.;:!?()")
_BREAK_RE = re.compile("[" + re.escape("".join(sorted(_BREAK))) + "]")
_GAP = 12  # most characters between two suffixes of one address
_MAX_LENGTH = 120
"""Most characters of one address (the longest real ones are ~50): each anchor looks this
far ahead and no further, so a long run of address-like text ("区区区...", a note pasted
without punctuation) costs linear time instead of a rescan of the run per anchor."""
_LEFT_MAX = 8  # most characters of a place name before its first suffix
_STOP_PREFIX = re.compile(
    r"(?:患者|病人|家属|其|于|在|自|从|到|至|往|去|来|住|家住|现住|居住|系|为|是|位于|:|\s)+"
)


class ChineseAddressRecognizer:
    """Chinese addresses by gazetteer anchor, address words and administrative suffixes."""

    name = "address-zh"
    languages = frozenset({"zh"})

    def find(self, text: str) -> list[Span]:
        """Every address-like stretch that ends on an address suffix."""
        spans: list[Span] = []
        for kind, pattern in _ANCHORS:
            for m in pattern.finditer(text):
                span = self._anchored(text, kind, m)
                if span is not None:
                    spans.append(span)
        return spans

    def _anchored(self, text: str, kind: str, m: re.Match[str]) -> Span | None:
        """The address that starts at an anchor of this kind, if any."""
        if kind in ("word", "latin"):
            start = m.end()
            while start < len(text) and text[start] == " ":
                start += 1
            labelled = text.startswith(":", start)
            if labelled or kind == "latin":
                # A labelled field ("现住址: ...") or a Latin-script address: the value up to
                # the end of the field is the address, whatever form it is written in.
                field = _FIELD_VALUE.match(text, start + labelled)
                if field is None or field.end(1) <= field.start(1):
                    return None
                return Span(field.start(1), field.end(1), ADDRESS, 0.9, self.name)
            return self._extend(text, start, min_end=start)
        if kind == "region":
            return self._extend(text, m.start(), min_end=m.end())
        return self._extend(text, self._left_edge(text, m.start()), min_end=m.end())

    @staticmethod
    def _left_edge(text: str, anchor: int) -> int:
        """Walk left from a suffix over the place name's characters."""
        start = anchor
        while (
            start > 0
            and anchor - start < _LEFT_MAX
            and "\u4e00" <= text[start - 1] <= "\u9fff"
            and text[start - 1] not in _BREAK
        ):
            start -= 1
        trimmed = _STOP_PREFIX.match(text, start, anchor)
        return trimmed.end() if trimmed else start

    def _extend(self, text: str, start: int, min_end: int) -> Span | None:
        body = _BODY_RUN.match(text, start, min(len(text), start + _MAX_LENGTH))
        run_end = body.end() if body is not None else start
        stop = _BREAK_RE.search(text, start, run_end)
        if stop is not None:
            run_end = stop.start()
        run_end = max(run_end, min_end)
        end = -1
        last = start
        for sm in _END_SUFFIX.finditer(text, start, run_end):
            if sm.end() - last > _GAP and end > 0:
                break
            end = last = sm.end()
        if end < min_end:
            end = min_end if min_end > start and _END_SUFFIX.search(text, start, min_end) else end
        if end - start < 2:
            return None
        pc = _POSTCODE.match(text, end)
        if pc:
            end = pc.end()
        return Span(start, end, ADDRESS, 0.85, self.name)


register(ChineseAddressRecognizer())
