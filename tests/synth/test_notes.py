"""Note templates and gold spans, tested on the renderer directly."""

from __future__ import annotations

from datetime import date
from random import Random

import pytest

from medspace.model import Address
from medspace.synth import SynthError
from medspace.synth.notes import SPAN_TYPES, NoteFacts, parse_template, render_note, templates_for
from medspace.synth.templates import EN_TEMPLATES, NOTE_KINDS, ZH_TEMPLATES

ADDRESS_ZH = Address(
    line="人民路12号",
    district="西湖区",
    city="杭州市",
    state="浙江省",
    postal_code="310013",
    country="CN",
)
ADDRESS_EN = Address(
    line="12 Elm Street", city="Boston", state="MA", postal_code="02115", country="US"
)


def facts(language: str, kind: str, **changes: object) -> NoteFacts:
    zh = language == "zh"
    base = {
        "language": language,
        "kind": kind,
        "full_name": "王秀英" if zh else "Mary Jones",
        "family_name": "王" if zh else "Jones",
        "sex": "female",
        "age": 93,
        "birth_date": date(1930, 2, 3),
        "visit_date": date(2023, 3, 5),
        "end_date": date(2023, 3, 12),
        "followup_date": date(2023, 4, 2),
        "start_date": date(2022, 12, 1),
        "hospital": "杭州安康医院" if zh else "Summit Boston Medical Center",
        "other_hospital": "南京博济医院" if zh else "Harbor Austin General Hospital",
        "doctor": "李明" if zh else "John Carter",
        "doctor2": "赵敏" if zh else "Ann Lee",
        "department": "肝胆胰外科" if zh else "Oncology",
        "mrn": "12345678",
        "national_id": "11010519491231002X" if zh else "123-45-6789",
        "phone": "13812345678" if zh else "617-555-0142",
        "email": "12345678@qq.com" if zh else "mary.jones1@gmail.com",
        "address": ADDRESS_ZH if zh else ADDRESS_EN,
        "complaint": "右上腹隐痛3个月" if zh else "right upper quadrant pain for 3 months",
        "diagnoses": ("肝细胞癌",) if zh else ("Liver cell carcinoma",),
        "history": ("原发性高血压",) if zh else ("Essential (primary) hypertension",),
        "drugs": ("索拉非尼",) if zh else ("sorafenib",),
        "labs": ("甲胎蛋白 812.5 ng/mL",) if zh else ("AFP 812.5 ng/mL",),
        "response": "病情好转" if zh else "stable disease",
    }
    base.update(changes)
    return NoteFacts(**base)  # type: ignore[arg-type]


PHI_BY_TYPE = {
    "zh": {
        "PERSON": {"王秀英", "王", "李明", "赵敏"},
        "ID": {"11010519491231002X", "12345678"},
        "ORGANIZATION": {"杭州安康医院", "南京博济医院"},
        "EMAIL": {"12345678@qq.com"},
        "ADDRESS": {"浙江省杭州市西湖区人民路12号"},
        "AGE": {"93"},
    },
    "en": {
        "PERSON": {"Mary Jones", "Jones", "John Carter", "Ann Lee"},
        "ID": {"123-45-6789", "12345678"},
        "ORGANIZATION": {"Summit Boston Medical Center", "Harbor Austin General Hospital"},
        "EMAIL": {"mary.jones1@gmail.com"},
        "ADDRESS": {"12 Elm Street, Boston, MA 02115"},
        "AGE": {"93"},
    },
}
PHONE_DIGITS = {"zh": "13812345678", "en": "6175550142"}
DATES = {date(1930, 2, 3), date(2023, 3, 5), date(2023, 3, 12), date(2023, 4, 2), date(2022, 12, 1)}


def date_strings(day: date) -> set[str]:
    months = [
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
    return {
        f"{day.year}年{day.month}月{day.day}日",
        day.isoformat(),
        f"{day.year}/{day.month:02d}/{day.day:02d}",
        f"{day.month:02d}/{day.day:02d}/{day.year}",
        f"{months[day.month - 1]} {day.day}, {day.year}",
        f"{day.month}/{day.day}/{day.year}",
    }


ALL_DATES = set().union(*(date_strings(day) for day in DATES))


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("kind", NOTE_KINDS)
def test_every_span_is_exactly_an_inserted_phi_item(language: str, kind: str) -> None:
    rng = Random(0)
    for _ in range(60):
        text, spans = render_note(rng, facts(language, kind))
        for span in spans:
            piece = text[span.start : span.end]
            assert span.type in SPAN_TYPES
            if span.type == "DATE":
                assert piece in ALL_DATES
            elif span.type == "PHONE":
                assert "".join(ch for ch in piece if ch.isdigit()) == PHONE_DIGITS[language]
            else:
                assert piece in PHI_BY_TYPE[language][span.type], (span.type, piece)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_spans_are_sorted_and_do_not_overlap(language: str) -> None:
    rng = Random(1)
    for kind in NOTE_KINDS:
        for _ in range(30):
            text, spans = render_note(rng, facts(language, kind))
            ends = 0
            for span in spans:
                assert ends <= span.start < span.end <= len(text)
                ends = span.end


@pytest.mark.parametrize("language", ["zh", "en"])
def test_young_ages_are_not_spans_but_old_ones_are(language: str) -> None:
    rng = Random(2)
    young = [render_note(rng, facts(language, "admission", age=64))[1] for _ in range(40)]
    old = [render_note(rng, facts(language, "admission", age=91))[1] for _ in range(40)]
    assert not any(span.type == "AGE" for spans in young for span in spans)
    assert any(span.type == "AGE" for spans in old for span in spans)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_missing_phi_removes_its_clause_and_leaves_no_gap(language: str) -> None:
    rng = Random(3)
    for kind in NOTE_KINDS:
        for _ in range(30):
            missing = facts(language, kind, phone=None, national_id=None, email=None, address=None)
            text, spans = render_note(rng, missing)
            assert not any(span.type in ("PHONE", "EMAIL", "ADDRESS") for span in spans)
            assert "{" not in text and "[" not in text and "]" not in text
            assert "None" not in text


def test_there_are_at_least_eight_templates_per_language_and_every_kind_has_two() -> None:
    assert len(ZH_TEMPLATES) >= 8 and len(EN_TEMPLATES) >= 8
    for language in ("zh", "en"):
        for kind in NOTE_KINDS:
            assert templates_for(language, kind) >= 2


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("a [b [c] d]", "nested"),  # nested optional groups
        ("a [b {name}", "unclosed"),
        ("a ] b", "stray"),
    ],
)
def test_malformed_templates_are_refused(template: str, message: str) -> None:
    with pytest.raises(SynthError, match=message):
        parse_template(template)


def test_an_unknown_note_kind_is_refused() -> None:
    with pytest.raises(SynthError, match="unknown note language or kind"):
        render_note(Random(0), facts("en", "autopsy"))
