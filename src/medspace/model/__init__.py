"""The clinical data model: OMOP-CDM-shaped records that keep source codes with their system."""

from medspace.model.codes import UNKNOWN_CODE_SYSTEM, normalise_system
from medspace.model.records import (
    KIND_OF,
    Address,
    Allergy,
    ClinicalRecord,
    Code,
    Condition,
    Drug,
    Encounter,
    Identity,
    Measurement,
    Note,
    Observation,
    Patient,
    Procedure,
    Record,
    Sex,
)

__all__ = [
    "KIND_OF",
    "UNKNOWN_CODE_SYSTEM",
    "Address",
    "Allergy",
    "ClinicalRecord",
    "Code",
    "Condition",
    "Drug",
    "Encounter",
    "Identity",
    "Measurement",
    "Note",
    "Observation",
    "Patient",
    "Procedure",
    "Record",
    "Sex",
    "normalise_system",
]
