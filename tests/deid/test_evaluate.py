"""Scores on synthetic notes with the generator's gold spans (recorded when it inserted each
item, independently of our rules), and the evaluation's own arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from medspace.deid.demo import demo
from medspace.deid.errors import DeidError
from medspace.deid.evaluate import EvalReport, GoldNote, evaluate, read_gold, score_note
from medspace.deid.spans import Span


def _gold(synthetic: Path) -> list[GoldNote]:
    notes = [n for path in sorted(synthetic.glob("h*/notes_gold.jsonl")) for n in read_gold(path)]
    assert len(notes) >= 150
    return notes


def test_synthetic_notes_meet_the_issue_targets(synthetic: Path) -> None:
    notes = _gold(synthetic)
    assert {n.language for n in notes} == {"zh", "en"}
    report = evaluate(notes)
    assert report.invalid_gold == 0
    for entity in ("ID", "PHONE", "DATE"):
        assert report.by_type[entity].recall >= 0.99, (entity, report.by_type[entity].as_dict())
    for entity in ("PERSON", "ADDRESS"):
        assert report.by_type[entity].recall >= 0.95, (entity, report.by_type[entity].as_dict())
    assert report.overall.f2 >= 0.90
    for language in ("zh", "en"):
        total = sum(s.gold for s in report.by_language[language].values())
        assert total > 100, language


def test_recall_counts_a_gold_span_only_when_fully_covered() -> None:
    note = GoldNote("n", "en", "Call John Smith now", (Span(5, 15, "PERSON"),))
    partial = EvalReport()
    score_note(note, [Span(5, 9, "PERSON")], partial)
    assert partial.by_type["PERSON"].recall == 0.0
    assert partial.by_type["PERSON"].precision == 1.0
    full = EvalReport()
    score_note(note, [Span(5, 15, "ID"), Span(0, 4, "PERSON")], full)
    assert full.by_type["PERSON"].recall == 1.0  # found, though typed as ID
    assert full.by_type["PERSON"].precision == 0.0  # "Call" is not PHI
    assert full.overall.f2 == pytest.approx(5 * 0.5 * 1 / (4 * 0.5 + 1))


def test_a_malformed_gold_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "notes_gold.jsonl"
    path.write_text(
        json.dumps({"note_id": "a", "text": "x", "spans": []}) + "\n{\n", encoding="utf-8"
    )
    with pytest.raises(DeidError, match="line 2"):
        list(read_gold(path))


def test_demo_shows_notes_and_risk_before_and_after(synthetic: Path) -> None:
    console = Console(record=True, width=140)
    demo(console, synthetic)
    shown = console.export_text()
    assert "synthetic zh note" in shown and "synthetic en note" in shown
    assert "k (smallest class)" in shown and "after" in shown
