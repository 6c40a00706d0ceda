"""Synthetic hospitals: realistic patients (zh_CN and en_US) with encounters, diagnoses,
drugs, labs, allergies, procedures and notes, some known at several hospitals, written
as FHIR R4, HL7 v2.5 and CSV with the ground truth of the signals planted in them.

Output layout and formats: docs/CONTRACTS.md ("Synthetic hospital output").
"""

from medspace.synth.chart import Chart, GoldNote
from medspace.synth.errors import SynthError
from medspace.synth.generator import HospitalSummary, SynthSummary, generate, iter_charts
from medspace.synth.ids import (
    is_valid_resident_id,
    make_resident_id,
    resident_id_birth_date,
    resident_id_check_digit,
)
from medspace.synth.notes import SPAN_TYPES, Span

__all__ = [
    "SPAN_TYPES",
    "Chart",
    "GoldNote",
    "HospitalSummary",
    "Span",
    "SynthError",
    "SynthSummary",
    "generate",
    "is_valid_resident_id",
    "iter_charts",
    "make_resident_id",
    "resident_id_birth_date",
    "resident_id_check_digit",
]
