"""One patient's chart at one hospital: model records plus notes with gold spans.

The chart is what every writer serialises, so FHIR, HL7 v2 and CSV of one hospital carry
the same ids and values. Record ids derive from the patient id (H1-P000123):
encounters `-E<n>`, conditions `-C<n>`, drugs `-D<n>`, procedures `-X<n>`, allergies
`-A<n>` (n = HL7 AL1 set id), notes `-N<n>`, lab orders `-L<n>` with results `-L<n>-<k>`
(k = HL7 OBX set id) and response assessments `-R<n>-1`, where the order's n is its
encounter's.
"""

from __future__ import annotations

from dataclasses import dataclass

from medspace.model import (
    Allergy,
    Condition,
    Drug,
    Encounter,
    Measurement,
    Note,
    Observation,
    Patient,
    Procedure,
)
from medspace.synth.hospital import Hospital
from medspace.synth.notes import Span
from medspace.synth.profile import Profile


@dataclass(frozen=True, slots=True)
class GoldNote:
    """A note record and the gold spans of the PHI in its text."""

    note: Note
    spans: tuple[Span, ...]


@dataclass(frozen=True, slots=True)
class Chart:
    """Everything one hospital holds about one patient."""

    hospital: Hospital
    person_locale: str  # the locale the patient's identity comes from
    patient: Patient
    encounters: tuple[Encounter, ...]
    departments: tuple[str, ...]  # one per encounter
    conditions: tuple[Condition, ...]
    drugs: tuple[Drug, ...]
    measurements: tuple[Measurement, ...]
    observations: tuple[Observation, ...]
    procedures: tuple[Procedure, ...]
    allergies: tuple[Allergy, ...]
    notes: tuple[GoldNote, ...]
    profile: Profile

    @property
    def record_count(self) -> int:
        """Model records in the chart, the patient included."""
        return 1 + sum(
            len(group)
            for group in (
                self.encounters,
                self.conditions,
                self.drugs,
                self.measurements,
                self.observations,
                self.procedures,
                self.allergies,
                self.notes,
            )
        )
