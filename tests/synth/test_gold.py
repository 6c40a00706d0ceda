"""notes_gold.jsonl: exact spans that cover every PHI item of the written notes."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from .conftest import csv_rows, gold_notes, hospitals

KEYS = {"note_id", "patient_id", "hospital", "language", "text", "spans"}
TYPES = {"PERSON", "ID", "PHONE", "DATE", "ADDRESS", "ORGANIZATION", "EMAIL", "AGE"}
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y", "%B %d, %Y")
CJK = re.compile(r"[\u4e00-\u9fff]")


def parses_as_date(text: str) -> bool:
    match = re.fullmatch(r"(\d{4})年(\d{1,2})月(\d{1,2})日", text)
    if match:
        return True
    for pattern in DATE_FORMATS:
        try:
            datetime.strptime(text, pattern)
        except ValueError:
            continue
        return True
    return False


def covered(text: str, needle: str, spans: list[dict], types: set[str]) -> bool:
    """Every occurrence of `needle` in `text` lies inside a span of one of `types`."""
    start = text.find(needle)
    while start >= 0:
        end = start + len(needle)
        if not any(s["start"] <= start and end <= s["end"] and s["type"] in types for s in spans):
            return False
        start = text.find(needle, start + 1)
    return True


def test_gold_lines_follow_the_contract(small_run: Path) -> None:
    for hospital in hospitals(small_run):
        notes = gold_notes(small_run, hospital["id"])
        assert len(notes) >= hospital["patients"], "every patient has a note"
        for note in notes:
            assert set(note) == KEYS
            assert note["hospital"] == hospital["id"]
            assert note["language"] == ("zh" if hospital["locale"] == "zh_CN" else "en")
            last_end = 0
            for span in note["spans"]:
                assert set(span) == {"start", "end", "type"} and span["type"] in TYPES
                assert last_end <= span["start"] < span["end"] <= len(note["text"])
                last_end = span["end"]


def test_spans_hold_values_of_their_type(small_run: Path) -> None:
    seen_types: set[str] = set()
    own_hospital_named = 0
    for hospital in hospitals(small_run):
        for note in gold_notes(small_run, hospital["id"]):
            text = note["text"]
            for span in note["spans"]:
                piece = text[span["start"] : span["end"]]
                kind = span["type"]
                seen_types.add(kind)
                assert piece.strip() == piece and piece, (kind, note["note_id"])
                if kind == "DATE":
                    assert parses_as_date(piece), note["note_id"]
                elif kind == "AGE":
                    assert piece.isdigit() and int(piece) > 89
                elif kind == "EMAIL":
                    assert re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", piece)
                elif kind == "PHONE":
                    assert sum(ch.isdigit() for ch in piece) in (10, 11)
                elif kind == "ORGANIZATION":
                    assert piece.endswith(("医院", "Center", "Hospital"))
                    own_hospital_named += piece == hospital["name"]
    assert seen_types == TYPES, "every span type occurs in a 450-patient run"
    assert own_hospital_named > 0


def test_every_identifier_name_and_contact_in_a_note_is_spanned(small_run: Path) -> None:
    for hospital in hospitals(small_run):
        rows = csv_rows(
            small_run / hospital["id"] / "csv" / "patients.csv", hospital["csv_encoding"]
        )
        patients = {row["PAT_ID"]: row for row in rows}
        checked = 0
        for note in gold_notes(small_run, hospital["id"]):
            row = patients[note["patient_id"]]
            text, spans = note["text"], note["spans"]
            chinese = bool(CJK.search(row["XING"]))
            full_name = row["XING"] + row["MING"] if chinese else f"{row['MING']} {row['XING']}"
            for value, types in (
                (row["ID_NO"], {"ID"}),
                (row["BAH"], {"ID"}),
                (full_name, {"PERSON"}),
                (row["LXDH"], {"PHONE"}),
                (row["DZYX"], {"EMAIL"}),
            ):
                if value:
                    assert covered(text, value, spans, types), (note["note_id"], types)
            checked += 1
        assert checked >= hospital["patients"]


def test_gold_text_is_the_note_text_of_the_csv_export(small_run: Path) -> None:
    hospital = hospitals(small_run)[0]
    rows = csv_rows(small_run / "h1" / "csv" / "notes.csv", hospital["csv_encoding"])
    exported = {row["BL_ID"]: row["BLNR"] for row in rows}
    gold = {note["note_id"]: note["text"] for note in gold_notes(small_run, "h1")}
    assert exported == gold
