"""Precision, recall and F2 of PHI detection against gold spans.

Gold notes follow the `notes_gold.jsonl` contract (docs/CONTRACTS.md): the generator records
each PHI item when it inserts it, independently of the scrubbing rules.

How finds are counted (stated so numbers can be compared):

- **recall** of a gold span: found when every letter and digit inside it is covered by some
  predicted span, whatever type the prediction gave it (what matters for de-identification
  is that nothing of it is left in the clear);
- **precision** of a predicted span: correct when it overlaps some gold span;
- per-type recall is grouped by the gold type, per-type precision by the predicted type;
- **F2** = 5PR / (4P + R), weighting recall twice as much as precision.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from medspace.deid.errors import DeidError
from medspace.deid.spans import Span

Predict = Callable[[str, str], list[Span]]  # (text, language) -> spans


@dataclass(frozen=True)
class GoldNote:
    """One labelled note."""

    note_id: str
    language: str
    text: str
    spans: tuple[Span, ...]
    patient_id: str = ""
    hospital: str = ""


def read_gold(path: Path) -> Iterator[GoldNote]:
    """Read a `notes_gold.jsonl` file. Raises `DeidError` naming the line of a bad record."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                text = data["text"]
                spans = tuple(
                    Span(int(s["start"]), int(s["end"]), str(s["type"]), 1.0, "gold")
                    for s in data["spans"]
                )
                yield GoldNote(
                    str(data["note_id"]),
                    str(data.get("language", "")),
                    text,
                    spans,
                    str(data.get("patient_id", "")),
                    str(data.get("hospital", "")),
                )
            except (ValueError, KeyError, TypeError):
                raise DeidError(
                    f"{path.name} line {number} is not a gold note (note_id, language, text, "
                    "spans with start/end/type); regenerate the synthetic data"
                ) from None


@dataclass
class TypeScore:
    """Counts and scores for one entity type (or all types)."""

    gold: int = 0
    found: int = 0
    predicted: int = 0
    correct: int = 0

    @property
    def recall(self) -> float:
        """Share of gold spans fully covered (1.0 when there is no gold span)."""
        return self.found / self.gold if self.gold else 1.0

    @property
    def precision(self) -> float:
        """Share of predicted spans that overlap a gold span (1.0 when nothing predicted)."""
        return self.correct / self.predicted if self.predicted else 1.0

    @property
    def f2(self) -> float:
        """F-beta with beta 2."""
        p, r = self.precision, self.recall
        return 5 * p * r / (4 * p + r) if p + r else 0.0

    def add(self, other: TypeScore) -> None:
        """Accumulate another score's counts."""
        self.gold += other.gold
        self.found += other.found
        self.predicted += other.predicted
        self.correct += other.correct

    def as_dict(self) -> dict[str, float | int]:
        """Counts and scores, for JSON."""
        return {
            "gold": self.gold,
            "found": self.found,
            "predicted": self.predicted,
            "correct": self.correct,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f2": round(self.f2, 4),
        }


@dataclass
class EvalReport:
    """Scores per entity type, per language and overall."""

    notes: int = 0
    characters: int = 0
    invalid_gold: int = 0
    by_type: dict[str, TypeScore] = field(default_factory=lambda: defaultdict(TypeScore))
    by_language: dict[str, dict[str, TypeScore]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(TypeScore))
    )
    missed_examples: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def overall(self) -> TypeScore:
        """Micro-averaged over all types."""
        total = TypeScore()
        for score in self.by_type.values():
            total.add(score)
        return total

    def as_dict(self) -> dict[str, object]:
        """The whole report, for JSON."""
        return {
            "notes": self.notes,
            "characters": self.characters,
            "invalid_gold_spans": self.invalid_gold,
            "overall": self.overall.as_dict(),
            "by_type": {t: s.as_dict() for t, s in sorted(self.by_type.items())},
            "by_language": {
                lang: {t: s.as_dict() for t, s in sorted(types.items())}
                for lang, types in sorted(self.by_language.items())
            },
        }


def _covered(text: str, start: int, end: int, mask: bytearray) -> bool:
    return all(mask[i] or not text[i].isalnum() for i in range(start, end))


def score_note(note: GoldNote, predicted: list[Span], report: EvalReport) -> None:
    """Add one note's counts to `report`."""
    text = note.text
    mask = bytearray(len(text))
    for p in predicted:
        for i in range(max(0, p.start), min(len(text), p.end)):
            mask[i] = 1
    gold_mask = bytearray(len(text))
    valid: list[Span] = []
    for g in note.spans:
        if not 0 <= g.start < g.end <= len(text):
            report.invalid_gold += 1
            continue
        valid.append(g)
        for i in range(g.start, g.end):
            gold_mask[i] = 1
    lang = note.language or "unknown"
    for g in valid:
        found = _covered(text, g.start, g.end, mask)
        for bucket in (report.by_type[g.type], report.by_language[lang][g.type]):
            bucket.gold += 1
            bucket.found += found
    for p in predicted:
        correct = any(gold_mask[i] for i in range(max(0, p.start), min(len(text), p.end)))
        for bucket in (report.by_type[p.type], report.by_language[lang][p.type]):
            bucket.predicted += 1
            bucket.correct += correct
    report.notes += 1
    report.characters += len(text)


def evaluate(notes: Path | Iterable[GoldNote], predict: Predict | None = None) -> EvalReport:
    """Score `predict` (default: the built-in recognisers) on gold notes or a gold file."""
    if predict is None:
        from medspace.deid.scrub import find_phi

        def predict(text: str, language: str) -> list[Span]:
            return find_phi(text)

    source = read_gold(notes) if isinstance(notes, Path) else notes
    report = EvalReport()
    for note in source:
        score_note(note, predict(note.text, note.language), report)
    return report
