"""De-identified extracts of a node: every record passed through the node's configured
`Deidentifier` (`sharing.json`, `deid.key`), written as one JSON-lines file per kind.

Patients are read first so each patient's own names and numbers are also removed from
their notes. The extract is written into a temporary folder next to `out` and renamed
into place only when complete, so a failure never leaves a partial extract.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from medspace.deid import Deidentifier
from medspace.errors import UsageError
from medspace.model import Note, Record
from medspace.node.directory import open_node
from medspace.node.sharing import deid_key, load_sharing
from medspace.store.extract import KINDS


@dataclass(frozen=True, slots=True)
class ExtractReport:
    """What an extract holds: the pack used, records written per kind, and the folder.

    `notes_left_out` counts notes not written because the node does not scrub notes.
    """

    out: Path
    pack: str
    counts: dict[str, int] = field(default_factory=dict)
    notes_left_out: int = 0

    @property
    def total(self) -> int:
        """Records written over all kinds."""
        return sum(self.counts.values())


def _plain(value: Any) -> Any:
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    raise TypeError(f"cannot write a {type(value).__name__} to an extract")


def record_json(record: Record) -> str:
    """One record as a JSON line (dates ISO 8601, tuples as arrays, no spaces)."""
    doc = dataclasses.asdict(record)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=_plain)


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} already exists and is not an empty folder: pick a new --out")
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent} does not exist: create it or pick another --out")


def export_deidentified(node_dir: Path, out: Path) -> ExtractReport:
    """Write a de-identified extract of the node at `node_dir` into the new folder `out`:
    `<kind>.jsonl` for each record kind (patient, encounter, ..., note).

    Raises `UsageError` when `out` exists and is not empty, `NodeConfigError` for a bad
    `sharing.json`, and the node's own errors when it cannot be opened or read.
    """
    node_dir, out = Path(node_dir), Path(out)
    _check_out(out)
    sharing = load_sharing(node_dir)
    deid = Deidentifier(sharing.pack, deid_key(node_dir))
    counts: dict[str, int] = {}
    left_out = 0
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        with open_node(node_dir) as node:
            for kind in KINDS:  # patients first
                counts[kind] = 0
                with (work / f"{kind}.jsonl").open("w", encoding="utf-8") as sink:
                    for record in node.store.iter_records(kind):
                        if isinstance(record, Note) and not sharing.scrub_notes:
                            left_out += 1
                            continue
                        sink.write(record_json(deid.record(record)) + "\n")
                        counts[kind] += 1
                    sink.flush()
                    os.fsync(sink.fileno())
        if out.exists():
            out.rmdir()  # empty, checked above
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return ExtractReport(out=out, pack=sharing.pack, counts=counts, notes_left_out=left_out)
