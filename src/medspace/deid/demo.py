"""The de-identification part of `make demo`: a Chinese and an English synthetic note before
and after scrubbing, and a table's re-identification risk before and after k-anonymisation.

All data shown is synthetic (made by `medspace.synth`).
"""

from __future__ import annotations

import json
import tempfile
from datetime import date
from pathlib import Path

from rich.console import Console, Group
from rich.panel import Panel

from medspace.deid.keys import DeidKey
from medspace.deid.scrub import Scrubber
from medspace.deid.table import Table, anonymise, render_reports


def _notes(source: Path) -> dict[str, dict[str, object]]:
    """One short note per language from the synthetic gold files."""
    chosen: dict[str, dict[str, object]] = {}
    for path in sorted(source.glob("h*/notes_gold.jsonl")):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                note = json.loads(line)
                lang = str(note["language"])
                text = str(note["text"])
                best = chosen.get(lang)
                if len(note["spans"]) >= 4 and (best is None or len(text) < len(str(best["text"]))):
                    chosen[lang] = note
    return chosen


def _patient_table(source: Path, as_of: date) -> Table:
    """age, sex, postcode and first diagnosis of every synthetic patient (from FHIR NDJSON)."""
    from medspace.connectors import Parsed, read_any
    from medspace.model import Condition, Patient

    patients: dict[str, Patient] = {}
    diagnosis: dict[str, str] = {}
    for folder in sorted(source.glob("h*/fhir/ndjson")):
        for outcome in read_any(folder):
            if not isinstance(outcome, Parsed):
                continue
            for record in outcome.records:
                if isinstance(record, Patient):
                    patients[record.source_id] = record
                elif isinstance(record, Condition) and record.code.system.startswith("ICD-10"):
                    diagnosis.setdefault(record.patient_id, record.code.code)
    rows = []
    for pid, p in patients.items():
        if p.birth_date is None:
            continue
        born = p.birth_date
        age = as_of.year - born.year - ((as_of.month, as_of.day) < (born.month, born.day))
        address = p.identity.address
        postcode = address.postal_code if address is not None and address.postal_code else ""
        rows.append((str(age), p.sex, postcode, diagnosis.get(pid, "")))
    return Table.from_rows(("age", "sex", "postcode", "diagnosis"), rows)


def demo(console: Console, source: Path | None = None) -> None:
    """Print notes before/after scrubbing and a table's risk before/after 5-anonymisation.

    `source` is a `medspace synth` output directory; without it a small one is made.
    """
    if source is None:
        from medspace.synth import generate

        with tempfile.TemporaryDirectory(prefix="medspace-deid-demo-") as tmp:
            generate(Path(tmp), hospitals=2, patients=250, seed=3, locale="mixed")
            demo(console, Path(tmp))
        return

    key = DeidKey.generate()  # a fresh key: the demo's surrogates are not kept
    tags = Scrubber("hipaa-safe-harbor")
    surrogates = Scrubber("hipaa-safe-harbor", key, mode="surrogate")
    for lang, note in sorted(_notes(source).items()):
        text = str(note["text"])
        pid = str(note.get("patient_id", ""))
        tagged = tags.scrub(text, patient_id=pid)
        faked = surrogates.scrub(text, patient_id=pid)
        counts = ", ".join(f"{t} {n}" for t, n in sorted(tagged.counts().items()))
        console.print(
            Panel(
                Group(
                    "[bold]before[/]",
                    text,
                    "",
                    "[bold]after (hipaa-safe-harbor, tags)[/]",
                    tagged.text,
                    "",
                    "[bold]after (consistent surrogates)[/]",
                    faked.text,
                ),
                title=f"synthetic {lang} note: replaced {counts}",
                title_align="left",
            )
        )
    console.print("$ medspace deid text --lang auto --pack hipaa-safe-harbor < note.txt")

    table = _patient_table(source, date.today())
    console.print(
        f"$ medspace deid table --pack hipaa-safe-harbor --qi age,sex,postcode "
        f"--sensitive diagnosis --k 5 patients.csv released.csv    [dim]# {table.rows} patients[/]"
    )
    result = anonymise(
        table, ["age", "sex", "postcode"], k=5, sensitive="diagnosis", pack="hipaa-safe-harbor"
    )
    render_reports(console, [("before", result.before), ("after", result.after)], title="risk")
    levels = ", ".join(f"{c} level {lvl}" for c, lvl in result.levels.items())
    console.print(
        f"generalised {levels}; suppressed {result.suppressed} records; "
        f"information loss {result.loss:.3f}"
    )
