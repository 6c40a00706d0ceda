"""Clinical notes with PHI and exact gold spans.

A note is rendered from a template (`templates.py`) and a `NoteFacts`. Every PHI value is
inserted by the renderer, which records its offsets as it builds the text, so
`text[span.start:span.end]` is exactly the inserted item. Span types follow
docs/CONTRACTS.md: PERSON, ID, PHONE, DATE, ADDRESS, ORGANIZATION, EMAIL, AGE. Ages are
PHI only above 89 (HIPAA Safe Harbor); younger ages appear without a span.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from random import Random

from medspace.model import Address, Sex
from medspace.synth.errors import SynthError
from medspace.synth.templates import EN_TEMPLATES, NOTE_KINDS, ZH_TEMPLATES

SPAN_TYPES = ("PERSON", "ID", "PHONE", "DATE", "ADDRESS", "ORGANIZATION", "EMAIL", "AGE")

# Slot name -> gold span type; slots not listed carry clinical text, not PHI.
_PHI_SLOTS: dict[str, str] = {
    "name": "PERSON",
    "family": "PERSON",
    "doctor": "PERSON",
    "doctor2": "PERSON",
    "rid": "ID",
    "mrn": "ID",
    "phone": "PHONE",
    "address": "ADDRESS",
    "hospital": "ORGANIZATION",
    "other_hospital": "ORGANIZATION",
    "email": "EMAIL",
    "birth": "DATE",
    "visit": "DATE",
    "end": "DATE",
    "followup": "DATE",
    "start": "DATE",
}
_OLDEST_UNPROTECTED_AGE = 89

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


@dataclass(frozen=True, slots=True)
class Span:
    """A PHI item in a note: `text[start:end]`, of gold type `type`."""

    start: int
    end: int
    type: str


@dataclass(frozen=True, slots=True)
class NoteFacts:
    """What a note may say. PHI fields that are None make their optional clauses vanish."""

    language: str  # "zh" | "en"
    kind: str  # one of templates.NOTE_KINDS
    full_name: str
    family_name: str
    sex: Sex
    age: int
    birth_date: date
    visit_date: date
    end_date: date | None
    followup_date: date | None
    start_date: date | None
    hospital: str
    other_hospital: str
    doctor: str
    doctor2: str
    department: str
    mrn: str
    national_id: str | None
    phone: str | None
    email: str | None
    address: Address | None
    complaint: str
    diagnoses: tuple[str, ...]
    history: tuple[str, ...]
    drugs: tuple[str, ...]
    labs: tuple[str, ...]
    response: str | None


# --- templates -------------------------------------------------------------------------

# A parsed template is a list of tokens: ("text", str) | ("slot", name) | ("group", tokens).
_Token = tuple[str, object]
_SLOT = re.compile(r"\{([a-z_0-9]+)\}")


def _parse_plain(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    for match in _SLOT.finditer(text):
        if match.start() > position:
            tokens.append(("text", text[position : match.start()]))
        tokens.append(("slot", match.group(1)))
        position = match.end()
    if position < len(text):
        tokens.append(("text", text[position:]))
    return tokens


def parse_template(template: str) -> list[_Token]:
    """Parse a template into tokens. Raises SynthError on unbalanced or nested brackets."""
    tokens: list[_Token] = []
    position = 0
    while position < len(template):
        opening = template.find("[", position)
        if opening < 0:
            tokens.extend(_parse_plain(template[position:]))
            break
        closing = template.find("]", opening)
        nested = template.find("[", opening + 1)
        if closing < 0 or (0 <= nested < closing):
            raise SynthError("template has an unclosed or nested optional group: fix its [ ]")
        tokens.extend(_parse_plain(template[position:opening]))
        tokens.append(("group", _parse_plain(template[opening + 1 : closing])))
        position = closing + 1
    if "]" in "".join(str(value) for kind, value in tokens if kind == "text"):
        raise SynthError("template has a stray closing bracket: remove it or add its [")
    return tokens


def slot_names(tokens: list[_Token]) -> frozenset[str]:
    """The slots a parsed template uses, optional groups included."""
    names: set[str] = set()
    for kind, value in tokens:
        if kind == "slot":
            names.add(str(value))
        elif kind == "group" and isinstance(value, list):
            names |= slot_names(value)
    return frozenset(names)


def _parsed(
    templates: tuple[tuple[frozenset[str], str], ...],
) -> tuple[tuple[frozenset[str], list[_Token], frozenset[str]], ...]:
    return tuple(
        (kinds, tokens, slot_names(tokens))
        for kinds, tokens in ((kinds, parse_template(text)) for kinds, text in templates)
    )


_PARSED = {"zh": _parsed(ZH_TEMPLATES), "en": _parsed(EN_TEMPLATES)}


def templates_for(language: str, kind: str) -> int:
    """How many templates can write a note of `kind` in `language`."""
    return sum(1 for kinds, _, _ in _PARSED[language] if kind in kinds)


# --- formatting ------------------------------------------------------------------------


def format_date(rng: Random, day: date, language: str) -> str:
    """One of the date styles clinicians of the language write."""
    style = rng.randrange(4)
    if language == "zh":
        if style < 2:
            return f"{day.year}年{day.month}月{day.day}日"
        return day.isoformat() if style == 2 else f"{day.year}/{day.month:02d}/{day.day:02d}"
    if style == 0:
        return f"{day.month:02d}/{day.day:02d}/{day.year}"
    if style == 1:
        return day.isoformat()
    if style == 2:
        return f"{_MONTHS[day.month - 1]} {day.day}, {day.year}"
    return f"{day.month}/{day.day}/{day.year}"


def format_phone(rng: Random, phone: str, language: str) -> str:
    """The phone number as written in a note (spacing and punctuation vary)."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    style = rng.randrange(3)
    if language == "zh" and len(digits) == 11:
        if style == 0:
            return digits
        separator = "-" if style == 1 else " "
        return separator.join((digits[:3], digits[3:7], digits[7:]))
    if len(digits) == 10:
        area, exchange, line = digits[:3], digits[3:6], digits[6:]
        return (
            f"{area}-{exchange}-{line}",
            f"({area}) {exchange}-{line}",
            f"{area}.{exchange}.{line}",
        )[style]
    return phone


def format_address(address: Address, language: str) -> str:
    """A one-line postal address: 省市区 + street for Chinese, US style for English."""
    if language == "zh" or address.country == "CN":
        state = "" if address.state == address.city else (address.state or "")
        return f"{state}{address.city or ''}{address.district or ''}{address.line or ''}"
    return f"{address.line}, {address.city}, {address.state} {address.postal_code}"


def _join(items: tuple[str, ...], language: str) -> str:
    if language == "zh":
        return "、".join(items)
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _values(rng: Random, facts: NoteFacts, needed: frozenset[str]) -> dict[str, str | None]:
    zh = facts.language == "zh"

    def day(slot: str, value: date | None) -> str | None:
        if value is None or slot not in needed:
            return None
        return format_date(rng, value, facts.language)

    male = facts.sex == "male"
    if zh:
        sex, honorific = ("男" if male else "女"), ("先生" if male else "女士")
        history = ("有" + _join(facts.history, "zh") + "病史") if facts.history else "体健"
        plan = "予" + _join(facts.drugs, "zh") + "治疗" if facts.drugs else "对症支持治疗"
        labs = "，".join(facts.labs) if facts.labs else "未见明显异常"
        dx_list = "；".join(facts.diagnoses)
    else:
        sex, honorific = ("man" if male else "woman"), ("Mr." if male else "Ms.")
        history = (
            ("history of " + _join(facts.history, "en"))
            if facts.history
            else ("no significant past history")
        )
        plan = _join(facts.drugs, "en") if facts.drugs else "supportive care"
        labs = ", ".join(facts.labs) if facts.labs else "unremarkable"
        dx_list = "; ".join(facts.diagnoses)
    drugs = _join(facts.drugs, facts.language) if facts.drugs else plan
    return {
        "name": facts.full_name,
        "family": facts.family_name,
        "doctor": facts.doctor,
        "doctor2": facts.doctor2,
        "rid": facts.national_id,
        "mrn": facts.mrn,
        "phone": (
            format_phone(rng, facts.phone, facts.language)
            if facts.phone is not None and "phone" in needed
            else None
        ),
        "address": None if facts.address is None else format_address(facts.address, facts.language),
        "hospital": facts.hospital,
        "other_hospital": facts.other_hospital,
        "email": facts.email,
        "birth": day("birth", facts.birth_date),
        "visit": day("visit", facts.visit_date),
        "end": day("end", facts.end_date),
        "followup": day("followup", facts.followup_date),
        "start": day("start", facts.start_date),
        "age": str(facts.age),
        "sex": sex,
        "sex_short": "M" if male else "F",
        "honorific": honorific,
        "dept": facts.department,
        "complaint": facts.complaint,
        "dx1": facts.diagnoses[0],
        "dx_list": dx_list,
        "history": history,
        "drugs": drugs,
        "plan": plan,
        "labs": labs,
        "response": facts.response,
    }


# --- rendering -------------------------------------------------------------------------


def render_note(rng: Random, facts: NoteFacts) -> tuple[str, tuple[Span, ...]]:
    """Write one note for `facts` with a template chosen by `rng`; return (text, spans).

    Raises SynthError for an unknown language or note kind (a programming error).
    """
    if facts.kind not in NOTE_KINDS or facts.language not in _PARSED:
        raise SynthError("unknown note language or kind: use zh/en and templates.NOTE_KINDS")
    choices = [
        (tokens, names) for kinds, tokens, names in _PARSED[facts.language] if facts.kind in kinds
    ]
    tokens, needed = rng.choice(choices)
    values = _values(rng, facts, needed)
    age_type = "AGE" if facts.age > _OLDEST_UNPROTECTED_AGE else None
    pieces: list[str] = []
    spans: list[Span] = []
    length = 0

    def emit(items: list[_Token]) -> None:
        nonlocal length
        for kind, value in items:
            if kind == "text":
                piece, span_type = str(value), None
            else:
                name = str(value)
                piece = values[name] or ""
                span_type = age_type if name == "age" else _PHI_SLOTS.get(name)
            if span_type is not None and piece:
                spans.append(Span(length, length + len(piece), span_type))
            pieces.append(piece)
            length += len(piece)

    for kind, value in tokens:
        if kind == "group":
            group = value if isinstance(value, list) else []
            if all(values[str(name)] for part, name in group if part == "slot"):
                emit(group)
        else:
            emit([(kind, value)])
    return "".join(pieces), tuple(spans)
