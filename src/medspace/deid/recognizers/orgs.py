"""Hospital, employer and other organisation names (工作单位; HIPAA counts employers of the
patient and relatives). Generic references (我院, 本院, the hospital) are not names."""

from __future__ import annotations

import re

from medspace.deid.recognizers.base import alternation, register, words
from medspace.deid.spans import ORGANIZATION, Span

_ZH_SUFFIX = words(
    "人民医院 中医医院 中医院 中西医结合医院 妇幼保健院 儿童医院 医院 卫生院"
    " 诊所 医疗中心 卫生服务中心 社区卫生服务中心 卫生服务站 保健院"
    " 疾病预防控制中心 疾控中心 急救中心 血站 大学 学院 中学 小学 学校 幼儿园"
    " 有限责任公司 股份有限公司 有限公司 公司 集团 银行 研究所 研究院 工厂 厂"
    " 事务所 合作社 分院 院区 门诊部"
)
_ZH_GENERIC = frozenset(
    words(
        "我 本 外 该 此 其 他 某 当地 上级 下级 其他 附近 基层 综合"
        " 专科 定点 私立 公立 三甲 二甲 一家 多家 各级 大型 社区 区级"
        " 县级 市级 省级 乡镇 地方 国内 国外 外地 原 前 同 这家 那家"
        " 一所 首诊 就诊 住院 转入 上述 当时 肿瘤 精神 传染病 专业"
    )
)

_ZH_PREFIX_DROP = re.compile(
    r"^(?:患者|病人|家属|曾在|曾于|曾|先后在|先后|遂至|遂来|遂到|遂|于|在|到|至|赴|往|去|转入|转至|转诊至|转往|"
    r"转|就诊于|就职于|工作于|供职于|任职于|受雇于|来自|来|从|经|由|送至|送往|送|入住|收住|收入|现在|既往在|"
    r"既往|后|并|又|再|即|急诊|门诊|就诊|住院|在职|工作单位|单位|工作|职业|:|\s)+"
)
_ZH_RE = re.compile(r"(?:" + alternation(_ZH_SUFFIX) + r")(?:[\u4e00-\u9fff]{1,8}?(?:分院|院区))?")
_ZH_NAME_CHAR = re.compile(r"[\u4e00-\u9fffA-Za-z0-9()]")
# Characters an organisation name does not contain: they end the walk to the left.
_ZH_BREAK = frozenset("于在至到赴往从自由经送入住收转的与及或并因诉伴、")
_ZH_MAX = 20
_ZH_CONTEXT = re.compile(
    r"(?:工作单位|单位|就职于|任职于|供职于|工作于|受雇于)\s*[:为是]?\s*([\u4e00-\u9fffA-Za-z0-9()]{2,24})"
)

_EN_SUFFIX = (
    "Hospital|Medical Center|Medical Centre|Health Center|Health Centre|Health System|Healthcare|"
    "Health Care|Clinic|Infirmary|Hospice|Nursing Home|Rehabilitation Center|Surgery Center|"
    "Cancer Center|Children's Hospital|Memorial Hospital|Pharmacy|Laboratories|Laboratory|Labs|"
    "University|College|Institute|School|Academy|Foundation|Bank|Inc\\.?|Incorporated|LLC|L\\.L\\.C\\.|Ltd\\.?|"
    "Limited|PLC|Corp\\.?|Corporation|Company|Co\\.|Group|Associates|Partners|& Sons|and Sons|"
    "Enterprises|Industries|Holdings|Systems|Solutions|Services|Technologies|Consulting|Agency|"
    "Department of [A-Z][a-z]+"
)
# The suffix is found first (it starts with a capital, so the engine skips ahead), then the
# name's words are collected leftwards.
_EN_RE = re.compile(
    r"(?:" + _EN_SUFFIX + r")(?![A-Za-z])"
    r"(?:\s+of\s+(?:the\s+)?[A-Z][A-Za-z'.-]*(?:\s+[A-Z][A-Za-z'.-]*){0,3})?"
)
_EN_NAME_WORD = re.compile(r"(?:St\.|Mt\.|[A-Z][A-Za-z'&.-]*|of|the|and|&|for)\s+$")
_EN_MAX_WORDS = 6
_EN_LEAD_DROP = re.compile(
    r"(?:(?:The|A|An|At|In|To|From|Patient|Pt|He|She|They|Was|Is|Seen|Admitted|Transferred|Followed|Works|"
    r"Worked|Employed|Retired|Discharged|Presented|Referred|Called|Per|Via|And|Or|Of|On|By|With|For|"
    r"Outside|Local|Our|This|That|His|Her|Their|Recent|Recently|Previous|Prior|Last|Next|Today|Yesterday|"
    r"Chief|History|Past|Plan|Assessment|Impression|Reason|Follow|Return|Emergency|Department|Inpatient|"
    r"Outpatient|General|Community)\s+)+"
)
_EN_CONTEXT = re.compile(
    r"(?:works at|works for|worked at|worked for|employed at|employed by|"
    r"employer:?|employer is|Employer:|retired from|job at|works as an? [a-z]+ (?:at|for))\s+"
    r"((?:[A-Z][A-Za-z'&.-]*(?:,?\s+(?:and\s+)?|-))*[A-Z][A-Za-z'&.-]*)"
)


def _ends_generic(name_part: str) -> bool:
    # "本院和当地医院": the words before the suffix end with a generic reference.
    return name_part[-2:] in _ZH_GENERIC or name_part[-3:] in _ZH_GENERIC


class OrganizationRecognizer:
    """Organisation names by suffix (医院, 有限公司, Hospital, Inc.) and employer context."""

    name = "organizations"
    languages = frozenset({"zh", "en"})

    def find(self, text: str) -> list[Span]:
        """Every named organisation; generic mentions are skipped."""
        spans: list[Span] = []
        for m in _ZH_RE.finditer(text):
            s, e = m.span()
            while s > 0 and m.start() - s < _ZH_MAX:
                ch = text[s - 1]
                if ch in _ZH_BREAK or not _ZH_NAME_CHAR.match(ch):
                    break
                s -= 1
            drop = _ZH_PREFIX_DROP.match(text, s, e)
            if drop:
                s = drop.end()
            name_part = text[s : m.start()]
            if len(name_part) < 2 or name_part in _ZH_GENERIC or _ends_generic(name_part):
                continue
            if name_part[:1] in _ZH_GENERIC and len(name_part) < 3:
                continue
            spans.append(Span(s, e, ORGANIZATION, 0.88, self.name))
        for m in _ZH_CONTEXT.finditer(text):
            spans.append(Span(m.start(1), m.end(1), ORGANIZATION, 0.85, self.name))
        for m in _EN_RE.finditer(text):
            if m.start() > 0 and ("a" <= text[m.start() - 1].lower() <= "z"):
                continue
            s, e = self._name_start(text, m.start()), m.end()
            drop = _EN_LEAD_DROP.match(text, s, e)
            if drop:
                s = drop.end()
            while True:  # a name does not start with a joining word
                head = re.match(r"(?:of|the|and|&|for)\s+", text[s:e])
                if not head:
                    break
                s += head.end()
            has_of = " of " in text[m.start() : e]
            if s == m.start() and not has_of:
                continue
            spans.append(Span(s, e, ORGANIZATION, 0.88, self.name))
        for m in _EN_CONTEXT.finditer(text):
            spans.append(Span(m.start(1), m.end(1), ORGANIZATION, 0.85, self.name))
        return spans

    @staticmethod
    def _name_start(text: str, suffix_start: int) -> int:
        """Start of the capitalised words (and of/the/and) right before an English suffix."""
        start = suffix_start
        for _ in range(_EN_MAX_WORDS):
            window = text[max(0, start - 40) : start]
            m = _EN_NAME_WORD.search(window)
            if m is None:
                break
            new_start = start - (len(window) - m.start())
            if new_start > 0 and text[new_start - 1] not in " \n\t(":
                break
            start = new_start
        return start


register(OrganizationRecognizer())
