"""Hand-written test notes with inline gold markup."""

from __future__ import annotations

import re
from pathlib import Path

from medspace.deid.evaluate import GoldNote
from medspace.deid.spans import Span

DATA = Path(__file__).resolve().parent / "data"
_MARK = re.compile(r"\[\[([A-Z]+)\|(.*?)\]\]", re.S)


def parse_marked(marked: str) -> tuple[str, list[Span]]:
    """Turn '[[TYPE|text]]' markup into plain text and gold spans."""
    out: list[str] = []
    spans: list[Span] = []
    pos = 0
    length = 0
    for m in _MARK.finditer(marked):
        plain = marked[pos : m.start()]
        out.append(plain)
        length += len(plain)
        value = m.group(2)
        spans.append(Span(length, length + len(value), m.group(1), 1.0, "gold"))
        out.append(value)
        length += len(value)
        pos = m.end()
    out.append(marked[pos:])
    return "".join(out), spans


def handwritten_notes(name: str = "handwritten_notes.txt") -> list[GoldNote]:
    """Hand-written notes of tests/deid/data (`heldout_notes.txt`: the held-out set)."""
    raw = (DATA / name).read_text(encoding="utf-8")
    notes: list[GoldNote] = []
    for i, block in enumerate(raw.split("=== ")[1:]):
        header, _, body = block.partition("\n")
        body = "\n".join(line for line in body.splitlines() if not line.startswith("#"))
        text, spans = parse_marked(body.strip("\n"))
        notes.append(GoldNote(f"hand-{i}", header.strip(), text, tuple(spans), f"hp{i}"))
    return notes
