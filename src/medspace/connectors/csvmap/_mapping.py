"""The CSV mapping file (`mapping.yaml`, format in docs/CONTRACTS.md), loaded and checked
once, before any row is read: every problem is a `ConnectorError` that names the key."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from medspace.connectors.base import ConnectorError
from medspace.connectors.csvmap._fields import FIELDS, REQUIRED

DEFAULT_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y%m%d")


@dataclass(frozen=True, slots=True)
class Column:
    """One model field and where its value comes from: a source column or a constant."""

    field: str
    column: str | None = None
    constant: str | None = None


@dataclass(frozen=True, slots=True)
class Table:
    """One CSV file of the export and how its columns map to one record kind."""

    file: str
    kind: str
    columns: tuple[Column, ...]
    values: dict[str, dict[str, str]]


@dataclass(frozen=True, slots=True)
class Mapping:
    """A parsed, checked mapping file."""

    path: Path
    encoding: str
    delimiter: str
    date_formats: tuple[str, ...]
    tables: tuple[Table, ...]

    @property
    def folder(self) -> Path:
        """The folder table file names are relative to."""
        return self.path.parent

    @classmethod
    def from_file(cls, path: Path) -> Mapping:
        """Load and check `path`; raises `ConnectorError` naming the offending key."""
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise ConnectorError(f"{path}: mapping file not found; check the path") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConnectorError(
                f"{path}: mapping file cannot be read ({type(exc).__name__}); save it as UTF-8"
            ) from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConnectorError(f"{path}: not valid YAML{where}; fix the mapping file") from None
        return cls._from_doc(path, doc)

    @classmethod
    def _from_doc(cls, path: Path, doc: Any) -> Mapping:
        def fail(key: str, rule: str) -> ConnectorError:
            return ConnectorError(f"{path}: {key}: {rule} (see docs/CONTRACTS.md)")

        if not isinstance(doc, dict):
            raise fail("top level", "must be a mapping with version and tables")
        if doc.get("version") != 1:
            raise fail("version", "must be 1")
        encoding = doc.get("encoding", "utf-8")
        try:
            encoding = codecs.lookup(str(encoding)).name
        except LookupError:
            raise fail("encoding", "unknown encoding; use utf-8, utf-8-sig or gb18030") from None
        delimiter = doc.get("delimiter", ",")
        if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
            raise fail("delimiter", "must be one character other than a quote or newline")
        formats = doc.get("date_formats", list(DEFAULT_DATE_FORMATS))
        if (
            not isinstance(formats, list)
            or not formats
            or not all(isinstance(f, str) and "%" in f for f in formats)
        ):
            raise fail("date_formats", "must be a non-empty list of strptime formats")
        tables = doc.get("tables")
        if not isinstance(tables, dict) or not tables:
            raise fail("tables", "must map at least one CSV file name to its columns")
        parsed = tuple(_table(str(name), spec, fail) for name, spec in tables.items())
        return cls(path, encoding, delimiter, tuple(formats), parsed)


def _table(name: str, spec: Any, fail: Any) -> Table:
    key = f"tables.{name}"
    if "/" in name or "\\" in name or name in ("", ".", ".."):
        raise fail(key, "must be a plain file name next to the mapping file")
    if not isinstance(spec, dict):
        raise fail(key, "must be a mapping with kind and columns")
    kind = spec.get("kind")
    if kind not in FIELDS:
        raise fail(f"{key}.kind", f"must be one of {'|'.join(FIELDS)}")
    columns_spec = spec.get("columns")
    if not isinstance(columns_spec, dict) or not columns_spec:
        raise fail(f"{key}.columns", "must map model fields to source columns")
    allowed = FIELDS[kind]
    columns = []
    for field, source in columns_spec.items():
        if field not in allowed:
            raise fail(
                f"{key}.columns.{field}", f"not a field of {kind}; use one of {', '.join(allowed)}"
            )
        if isinstance(source, dict):
            if set(source) != {"value"} or source["value"] is None:
                raise fail(f"{key}.columns.{field}", "a constant is written {value: ...}")
            columns.append(Column(str(field), constant=str(source["value"])))
        elif isinstance(source, str | int) and str(source):
            columns.append(Column(str(field), column=str(source)))
        else:
            raise fail(f"{key}.columns.{field}", "must be a column name or {value: constant}")
    missing = [f for f in REQUIRED[kind] if f not in columns_spec]
    if missing:
        raise fail(f"{key}.columns", f"{kind} needs {', '.join(missing)}")
    values_spec = spec.get("values", {}) or {}
    if not isinstance(values_spec, dict):
        raise fail(f"{key}.values", "must map fields to {source value: model value}")
    values: dict[str, dict[str, str]] = {}
    for field, table in values_spec.items():
        if field not in columns_spec or not isinstance(table, dict):
            raise fail(f"{key}.values.{field}", "must be a value map for a mapped field")
        values[str(field)] = {str(k): str(v) for k, v in table.items()}
    return Table(name, str(kind), tuple(columns), values)
