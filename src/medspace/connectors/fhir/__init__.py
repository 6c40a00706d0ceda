"""FHIR R4 connectors: Bulk Data NDJSON and JSON Bundles -> model records."""

from medspace.connectors.fhir._patient import CN_RID_SYSTEM, CN_RID_TYPE, US_SSN_SYSTEM
from medspace.connectors.fhir.reader import (
    MAPPERS,
    FhirBundleConnector,
    FhirNdjsonConnector,
    map_resource,
)

__all__ = [
    "CN_RID_SYSTEM",
    "CN_RID_TYPE",
    "MAPPERS",
    "US_SSN_SYSTEM",
    "FhirBundleConnector",
    "FhirNdjsonConnector",
    "map_resource",
]
