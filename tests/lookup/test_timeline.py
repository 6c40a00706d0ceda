"""The clinician's view says which hospitals' records a partial result lacks, and why."""

from __future__ import annotations

from rich.console import Console

from medspace.lookup.answers import UNVERIFIED, NodeAnswer
from medspace.lookup.ask import LookupOutcome
from medspace.lookup.timeline import render


def _printed(outcome: LookupOutcome) -> str:
    console = Console(record=True, width=200)
    render(console, outcome)
    return console.export_text()


def test_a_partial_result_names_each_hospital_left_out_and_why() -> None:
    answers = [
        NodeAnswer("h1", "ok", "no-match"),
        NodeAnswer("h2", "refused", reason="break-glass is not allowed here"),
        NodeAnswer("h4", UNVERIFIED, reason="h4's answer does not carry h4's signed receipt"),
    ]
    outcome = LookupOutcome("req-1", "ETREAT", answers, ["h3"], True, 0.2)
    printed = _printed(outcome)
    assert "partial result: h3 did not answer; h2 refused; h4 unverified" in printed


def test_a_complete_result_says_nothing_of_partial() -> None:
    outcome = LookupOutcome("req-1", "ETREAT", [NodeAnswer("h1", "ok", "no-match")], [], False, 0.1)
    assert "partial" not in _printed(outcome)


def test_a_first_contact_is_pointed_out() -> None:
    answers = [
        NodeAnswer("h1", "ok", "no-match"),
        NodeAnswer("h5", "ok", "no-match", first_contact=True),
    ]
    printed = _printed(LookupOutcome("req-1", "ETREAT", answers, [], False, 0.1))
    assert "first contact with h5" in printed


def test_text_from_the_network_cannot_break_or_restyle_the_view() -> None:
    """A reason or a summary field holding Rich markup or control characters is shown as
    text: '[/x]' used to raise a MarkupError and lose the whole timeline."""
    patient = {
        "match": {"kind": "exact", "score": 1.0},
        "diagnoses": [
            {
                "system": "ICD-10",
                "code": "I10",
                "text": "[/x] [link=http://x]y",
                "date": "2024-01-01",
            }
        ],
        "allergies": [
            {"system": "SNOMED", "code": "1", "text": "\x1b[31mred", "criticality": "high"}
        ],
        "labs": [],
        "drugs": [],
    }
    answers = [
        NodeAnswer("h1", "ok", "match", [patient]),
        NodeAnswer("h2", "refused", reason="[/x] not allowed"),
    ]
    printed = _printed(LookupOutcome("req-1", "ETREAT", answers, [], True, 0.1))
    assert "[/x]" in printed and "\x1b" not in printed


def test_values_a_hospital_withheld_are_pointed_out() -> None:
    """A summary counts the values its node left out (free text or identifiers where a
    code, status or unit belongs); the clinician learns that hospital holds more."""
    patient = {
        "match": {"kind": "fuzzy", "score": 0.91},
        "withheld": 3,
        "diagnoses": [],
        "allergies": [],
        "labs": [],
        "drugs": [],
    }
    answers = [NodeAnswer("h2", "ok", "match", [patient]), NodeAnswer("h1", "ok", "no-match")]
    outcome = LookupOutcome("req-1", "ETREAT", answers, [], False, 0.1)
    assert "h2 withheld 3 value(s)" in _printed(outcome)
    assert "h1 withheld" not in _printed(outcome)
