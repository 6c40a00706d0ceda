"""HIS CSV export + mapping file -> model records, one unit per data row.

Positions are "row N" counting CSV records as a spreadsheet shows them: the header is
row 1, the first data row is row 2. Blank rows are not units. Before the first row is
read, every table file named in the mapping must exist and its header must have every
mapped column (else `ConnectorError`: nothing is half-ingested). Rows are decoded with
the mapping's encoding; a row with bytes invalid in it is rejected on its own.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from medspace.connectors._io import open_binary
from medspace.connectors._unit import UnitRejected, reject_nul, unexpected
from medspace.connectors.base import ConnectorError, Outcome, Parsed, Rejected
from medspace.connectors.csvmap._fields import BUILDERS, FIELDS, REQUIRED, convert
from medspace.connectors.csvmap._mapping import Mapping, Table
from medspace.connectors.registry import register_connector

MAPPING_NAMES = ("mapping.yaml", "mapping.yml")
_SURROGATE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True, slots=True)
class RawRow:
    """One CSV record: its number, fields (None when unreadable), raw bytes, problem."""

    number: int
    fields: list[str] | None
    raw: bytes
    problem: str | None = None


def iter_rows(f: BinaryIO, encoding: str, delimiter: str) -> Iterator[RawRow]:
    """CSV records with the bytes they came from. Undecodable bytes do not stop the file:
    the record holding them comes back with a problem."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="surrogateescape")
    consumed: list[bytes] = []

    def lines() -> Iterator[str]:
        for raw in f:
            consumed.append(raw)
            yield decoder.decode(raw)
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    # strict: an unterminated quote must not swallow the following rows into one field.
    reader = csv.reader(lines(), delimiter=delimiter, strict=True)
    number = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            number += 1
            raw = b"".join(consumed)
            consumed.clear()
            yield RawRow(number, None, raw, f"row is not valid CSV ({exc})")
            continue
        number += 1
        raw = b"".join(consumed)
        consumed.clear()
        if any(_SURROGATE.search(field) for field in fields):
            yield RawRow(number, None, raw, f"row is not valid {encoding} text")
        else:
            yield RawRow(number, fields, raw)


def find_mapping(path: Path) -> Path:
    """The mapping file for `path`: the file itself, or `mapping.yaml` in the folder."""
    if path.is_dir():
        for name in MAPPING_NAMES:
            if (path / name).is_file():
                return path / name
        raise ConnectorError(f"{path}: no mapping.yaml in this folder; add one (CONTRACTS.md)")
    return path


@dataclass(frozen=True, slots=True)
class _Plan:
    table: Table
    path: Path
    indexes: dict[str, int]  # field -> column index
    width: int


def _plan(mapping: Mapping, table: Table) -> _Plan:
    path = mapping.folder / table.file
    if not path.is_file():
        raise ConnectorError(
            f"{path}: named in {mapping.path.name} but not found; add the file or remove "
            "the table from the mapping"
        )
    with open_binary(path) as f:
        first = next(iter_rows(f, mapping.encoding, mapping.delimiter), None)
    if first is None:
        return _Plan(table, path, {}, 0)
    if first.fields is None:
        raise ConnectorError(f"{path}: header row cannot be read ({first.problem})")
    header = [h.strip() for h in first.fields]
    if header:
        header[0] = header[0].lstrip("\ufeff")
    positions: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in positions:
            # Name the position, not the text: a file without a header row would put a
            # patient's data here.
            raise ConnectorError(
                f"{path}: header columns {positions[name] + 1} and {i + 1} have the same "
                "name; rename one (is the header row missing?)"
            )
        positions[name] = i
    missing = [
        c.column for c in table.columns if c.column is not None and c.column not in positions
    ]
    if missing:
        raise ConnectorError(
            f"{path}: header lacks mapped column(s) {', '.join(map(repr, missing))}; "
            f"fix the export or {mapping.path.name}"
        )
    indexes = {c.field: positions[c.column] for c in table.columns if c.column is not None}
    return _Plan(table, path, indexes, len(header))


def _record(plan: _Plan, row: list[str], formats: tuple[str, ...]) -> tuple[Any, ...]:
    table = plan.table
    types = FIELDS[table.kind]
    values: dict[str, Any] = {}
    for column in table.columns:
        if column.column is not None:
            text = row[plan.indexes[column.field]]
            where = f"column {column.column} ({column.field})"
        else:
            text = column.constant or ""
            where = f"constant for {column.field}"
        value_map = table.values.get(column.field)
        if value_map is not None:
            text = value_map.get(text.strip(), text)
        text = text.strip()
        if text:
            values[column.field] = convert(types[column.field], text, formats, where)
    for field in REQUIRED[table.kind]:
        if field not in values:
            source = next(c for c in table.columns if c.field == field)
            raise UnitRejected(
                f"column {source.column or '(constant)'} ({field}): required but empty"
            )
    return (BUILDERS[table.kind](values, []),)


def _rows(plan: _Plan, mapping: Mapping) -> Iterator[Outcome]:
    source = str(plan.path)
    with open_binary(plan.path) as f:
        rows = iter_rows(f, mapping.encoding, mapping.delimiter)
        next(rows, None)  # the header, checked by _plan
        for row in rows:
            position = f"row {row.number}"
            if row.fields is None:
                yield Rejected(source, position, row.problem or "row cannot be read", row.raw)
                continue
            if not row.fields or (len(row.fields) == 1 and not row.fields[0].strip()):
                continue  # a blank line is not a unit
            if len(row.fields) != plan.width:
                yield Rejected(
                    source,
                    position,
                    f"row has {len(row.fields)} columns, the header has {plan.width}",
                    row.raw,
                )
                continue
            try:
                if b"\x00" in row.raw:
                    reject_nul(row.fields)
                yield Parsed(source, position, _record(plan, row.fields, mapping.date_formats))
            except UnitRejected as exc:
                yield Rejected(source, position, exc.reason, row.raw)
            except (TypeError, ValueError, KeyError, IndexError) as exc:
                yield Rejected(source, position, unexpected(plan.table.kind, exc), row.raw)


@register_connector
class CsvMappingConnector:
    """A HIS CSV export described by a mapping file (docs/CONTRACTS.md)."""

    name: ClassVar[str] = "csv-mapping"

    def read(self, path: Path) -> Iterator[Outcome]:
        """`path` is the export folder (holding mapping.yaml) or the mapping file itself.
        Tables are read in the mapping's order, rows in file order."""
        mapping = Mapping.from_file(find_mapping(path))
        plans = [_plan(mapping, table) for table in mapping.tables]
        for plan in plans:
            yield from _rows(plan, mapping)

    @staticmethod
    def table_files(path: Path) -> list[Path]:
        """The CSV files a mapping names (so a directory walk does not read them twice)."""
        mapping = Mapping.from_file(find_mapping(path))
        return [mapping.folder / table.file for table in mapping.tables]
