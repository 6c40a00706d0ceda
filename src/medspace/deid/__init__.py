"""De-identification: rule packs (HIPAA Safe Harbor, PIPL / GB/T 37964, GDPR pseudonymisation),
free-text PHI scrubbing for Chinese and English notes, and privacy measurement of tables.

Other components use the names below; everything else in this package is internal.
"""

from medspace.deid.deidentifier import Deidentifier
from medspace.deid.errors import (
    DeidError,
    FhirError,
    KeyMissingError,
    PackError,
    PseudonymError,
    TableError,
    UnknownPackError,
)
from medspace.deid.evaluate import EvalReport, GoldNote, TypeScore, evaluate, read_gold
from medspace.deid.fhir import FhirDeidentifier, deidentify_fhir
from medspace.deid.keys import DeidKey, Keyring
from medspace.deid.packs import (
    DEFAULT_PACK,
    RulePack,
    get_pack,
    load_pack,
    pack_names,
    register_pack,
)
from medspace.deid.recognizers import Recognizer, register
from medspace.deid.records import RecordDeidentifier, deidentify_record
from medspace.deid.scrub import (
    NerBackend,
    Scrubber,
    ScrubResult,
    detect_language,
    find_phi,
    scrub_text,
)
from medspace.deid.spans import ENTITY_TYPES, Span

__all__ = [
    "DEFAULT_PACK",
    "ENTITY_TYPES",
    "DeidError",
    "DeidKey",
    "Deidentifier",
    "EvalReport",
    "FhirDeidentifier",
    "FhirError",
    "GoldNote",
    "KeyMissingError",
    "Keyring",
    "NerBackend",
    "PackError",
    "PseudonymError",
    "Recognizer",
    "RecordDeidentifier",
    "RulePack",
    "ScrubResult",
    "Scrubber",
    "Span",
    "TableError",
    "TypeScore",
    "UnknownPackError",
    "deidentify_fhir",
    "deidentify_record",
    "detect_language",
    "evaluate",
    "find_phi",
    "get_pack",
    "load_pack",
    "pack_names",
    "read_gold",
    "register",
    "register_pack",
    "scrub_text",
]
