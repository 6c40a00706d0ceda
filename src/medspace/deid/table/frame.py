"""A small column table read from and written to CSV (strings, as the file has them)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from medspace.deid.errors import TableError


@dataclass
class Table:
    """Named columns of equal length, values as strings."""

    columns: list[str]
    data: dict[str, list[str]]

    @property
    def rows(self) -> int:
        """Number of rows."""
        return len(self.data[self.columns[0]]) if self.columns else 0

    @classmethod
    def from_rows(cls, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
        """Build from a header and rows (values are turned into strings)."""
        columns = [str(h) for h in header]
        if len(set(columns)) != len(columns):
            raise TableError("the table has two columns with the same name; rename one")
        data: dict[str, list[str]] = {c: [] for c in columns}
        for number, row in enumerate(rows, 2):
            if len(row) != len(columns):
                raise TableError(
                    f"row {number} has {len(row)} fields but the header has {len(columns)}; "
                    "fix the quoting or the delimiter"
                )
            for c, v in zip(columns, row, strict=True):
                data[c].append("" if v is None else str(v))
        return cls(columns, data)

    def column(self, name: str) -> list[str]:
        """The values of one column. Raises `TableError` naming the columns there are."""
        try:
            return self.data[name]
        except KeyError:
            raise TableError(
                f"no column {name!r}; the table has: {', '.join(self.columns)}"
            ) from None

    def without(self, names: Iterable[str]) -> Table:
        """A table without the named columns."""
        drop = set(names)
        keep = [c for c in self.columns if c not in drop]
        return Table(keep, {c: self.data[c] for c in keep})


def read_csv(path: Path, *, encoding: str = "utf-8-sig", delimiter: str = ",") -> Table:
    """Read a CSV file with a header row. Raises `TableError` for unreadable input."""
    try:
        with path.open(newline="", encoding=encoding) as handle:
            reader = csv.reader(handle, delimiter=delimiter, strict=True)
            header = next(reader, None)
            if header is None:
                raise TableError(f"{path.name} is empty; a header row is needed")
            return Table.from_rows(header, reader)
    except UnicodeDecodeError:
        raise TableError(
            f"{path.name} is not {encoding}; pass the file's encoding (e.g. --encoding gb18030)"
        ) from None
    except csv.Error as exc:
        raise TableError(f"{path.name} is not valid CSV ({exc}); check quoting") from None
    except OSError:
        raise TableError(f"cannot read {path.name}; check the path and permissions") from None


def write_csv(table: Table, path: Path) -> None:
    """Write the table as UTF-8 CSV with a header row."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(table.columns)
        writer.writerows(zip(*(table.data[c] for c in table.columns), strict=True))
