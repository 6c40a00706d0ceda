"""CSV connector: a HIS CSV export plus a mapping file (docs/CONTRACTS.md) -> model records."""

from medspace.connectors.csvmap._fields import FIELDS, REQUIRED
from medspace.connectors.csvmap._mapping import Column, Mapping, Table
from medspace.connectors.csvmap.reader import CsvMappingConnector, find_mapping

__all__ = [
    "FIELDS",
    "REQUIRED",
    "Column",
    "CsvMappingConnector",
    "Mapping",
    "Table",
    "find_mapping",
]
