"""Connectors: FHIR R4 (NDJSON, Bundle), HL7 v2 (ADT, ORU) and CSV with a mapping file
-> model records. One outcome per source unit (`Parsed | Skipped | Rejected`, see `base`).

Use `read_any(path)`; `detect_format(path)` tells what it will read; connectors are also
available by name through `get_connector`.
"""

from medspace.connectors.base import (
    Connector,
    ConnectorError,
    Outcome,
    Parsed,
    Rejected,
    Skipped,
)
from medspace.connectors.csvmap import CsvMappingConnector
from medspace.connectors.detect import DIRECTORY, detect_format, read_any
from medspace.connectors.fhir import FhirBundleConnector, FhirNdjsonConnector
from medspace.connectors.hl7v2 import Hl7v2Connector
from medspace.connectors.registry import connector_names, get_connector, register_connector

__all__ = [
    "DIRECTORY",
    "Connector",
    "ConnectorError",
    "CsvMappingConnector",
    "FhirBundleConnector",
    "FhirNdjsonConnector",
    "Hl7v2Connector",
    "Outcome",
    "Parsed",
    "Rejected",
    "Skipped",
    "connector_names",
    "detect_format",
    "get_connector",
    "read_any",
    "register_connector",
]
