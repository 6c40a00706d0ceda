"""Format detection and `read_any`: one entry point for files and folders.

Sniffing (after a UTF-8 BOM and whitespace; gzip is opened transparently):
- a first line that is a JSON object whose top-level resourceType is "Bundle", or a JSON
  document starting `{"resourceType": "Bundle"` -> `fhir-bundle`;
- a first line that is a complete JSON object -> `fhir-ndjson`;
- another JSON object spread over lines (a pretty-printed Bundle or resource) -> `fhir-bundle`;
- `MSH` (or a batch header FHS/BHS), or another HL7 segment (`PID|...`) -> `hl7v2`;
- a `.yaml`/`.yml` mapping file, or a folder holding `mapping.yaml` -> `csv-mapping`.
A folder without a mapping is read entry by entry in sorted order (sub-folders too);
hidden entries are passed over. Empty files yield nothing. When the content is not
recognised, the extension decides (`.ndjson`/`.jsonl`, `.json`, `.hl7`): the connector then
rejects the malformed content unit by unit, which keeps it in quarantine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from medspace.connectors._io import open_binary, read_head
from medspace.connectors.base import Connector, ConnectorError, Outcome
from medspace.connectors.csvmap.reader import MAPPING_NAMES, CsvMappingConnector
from medspace.connectors.registry import connector_names, get_connector

DIRECTORY = "directory"

_LEADING = b" \t\r\n\x0b\x1c\x00"
_BOM = b"\xef\xbb\xbf"
_BUNDLE_START = re.compile(rb'\{\s*"resourceType"\s*:\s*"Bundle"')
_FIRST_LINE_LIMIT = 16 * 1024 * 1024
_YAML = (".yaml", ".yml")
_SEGMENT_START = re.compile(rb"[A-Z][A-Z0-9]{2}[|^~\\&#]")
_BY_SUFFIX = {
    ".ndjson": "fhir-ndjson",
    ".jsonl": "fhir-ndjson",
    ".json": "fhir-bundle",
    ".hl7": "hl7v2",
}


def _first_line(path: Path) -> bytes:
    with open_binary(path) as f:
        try:
            line = f.readline(_FIRST_LINE_LIMIT)
            if line.startswith(_BOM):
                line = line[len(_BOM) :]
            while line and not line.strip(_LEADING):  # leading blank lines
                line = f.readline(_FIRST_LINE_LIMIT)
        except (OSError, EOFError):
            raise ConnectorError(f"{path}: cannot be read (damaged gzip?)") from None
    return line.strip(_LEADING)


def _is_empty(path: Path) -> bool:
    head = read_head(path, 65536)
    return len(head) < 65536 and not head.replace(_BOM, b"", 1).strip(_LEADING)


def detect_format(path: Path) -> str:
    """The format name of `path` (see the module doc), or "directory" for a folder without
    a mapping. Raises `ConnectorError` for a missing, unreadable or unknown input."""
    path = Path(path)
    if path.is_dir():
        if any((path / name).is_file() for name in MAPPING_NAMES):
            return "csv-mapping"
        return DIRECTORY
    if not path.exists():
        raise ConnectorError(f"{path}: not found; check the path")
    if path.suffix.lower() in _YAML:
        return "csv-mapping"
    head = read_head(path, 65536)
    head = head[len(_BOM) :] if head.startswith(_BOM) else head
    head = head.lstrip(_LEADING)
    if head.startswith((b"MSH", b"FHS", b"BHS")) or _SEGMENT_START.match(head):
        return "hl7v2"  # decided on the head: a CR-only HL7 file is one long "line"
    line = _first_line(path) if head.startswith(b"{") else head
    if line.startswith(b"{"):
        if _BUNDLE_START.match(line):
            return "fhir-bundle"
        if line.endswith(b"}"):
            try:
                doc = json.loads(line)
            except (ValueError, RecursionError):
                return "fhir-ndjson"  # a broken first line is that line's problem
            if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
                return "fhir-bundle"
            return "fhir-ndjson"
        return "fhir-bundle"
    if line.startswith(b"["):
        raise ConnectorError(
            f"{path}: a JSON array is neither FHIR NDJSON nor a Bundle; export one resource "
            "per line or a Bundle"
        )
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] in _BY_SUFFIX:
        return _BY_SUFFIX[suffixes[-1]]
    if not line:
        raise ConnectorError(f"{path}: is empty, so its format cannot be told; pass fmt=")
    if path.suffix.lower() == ".csv":
        raise ConnectorError(
            f"{path}: a CSV file needs its mapping; pass the folder holding mapping.yaml "
            "(docs/CONTRACTS.md)"
        )
    raise ConnectorError(
        f"{path}: unknown format (expected FHIR NDJSON or Bundle JSON, HL7 v2 starting with "
        f"MSH, or a CSV folder with mapping.yaml); pass fmt= one of {', '.join(connector_names())}"
    )


def _plan_directory(folder: Path, plan: list[tuple[Connector, Path]]) -> None:
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    taken: set[Path] = set()
    for entry in entries:
        if entry.is_file() and entry.suffix.lower() in _YAML:
            plan.append((get_connector("csv-mapping"), entry))
            taken.update(p.resolve() for p in CsvMappingConnector.table_files(entry))
    for entry in entries:
        if entry.resolve() in taken or (entry.is_file() and entry.suffix.lower() in _YAML):
            continue
        _plan_path(entry, None, plan)


def _plan_path(path: Path, fmt: str | None, plan: list[tuple[Connector, Path]]) -> None:
    if path.is_file() and _is_empty(path):
        return
    name = fmt or detect_format(path)
    if name == DIRECTORY:
        _plan_directory(path, plan)
    elif path.is_dir() and name != "csv-mapping":
        for entry in sorted(p for p in path.rglob("*") if p.is_file()):
            if not any(part.startswith(".") for part in entry.relative_to(path).parts):
                _plan_path(entry, name, plan)
    else:
        plan.append((get_connector(name), path))


def read_any(path: Path, fmt: str | None = None) -> Iterator[Outcome]:
    """Read a file or folder in any supported format: one outcome per source unit.

    Every file is checked (found, readable, known format) before the first outcome, so a
    `ConnectorError` never comes after part of the input was yielded. `fmt` forces a
    format (for every file of a folder)."""
    path = Path(path)
    if fmt is not None:
        get_connector(fmt)  # unknown names fail here, with the known ones listed
    if not path.exists():
        raise ConnectorError(f"{path}: not found; check the path")
    plan: list[tuple[Connector, Path]] = []
    _plan_path(path, fmt, plan)
    return _run(plan)


def _run(plan: list[tuple[Connector, Path]]) -> Iterator[Outcome]:
    for connector, path in plan:
        yield from connector.read(path)
