"""Purposes of use: a closed set of HL7 v3 ActReason codes (PurposeOfUse value set).

Projects name one research or operations purpose; clinical lookups use ETREAT, or BTG
(break the glass) where a node allows it. Codes are the HL7 ones, so they can be put in
FHIR `Consent` / `AuditEvent.purposeOfEvent` without mapping.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType


class Purpose(StrEnum):
    """HL7 v3 ActReason purpose-of-use codes MedSpace understands."""

    HRESCH = "HRESCH"
    CLINTRCH = "CLINTRCH"
    PUBHLTH = "PUBHLTH"
    POPHLTH = "POPHLTH"
    HQUALIMP = "HQUALIMP"
    HOPERAT = "HOPERAT"
    HPAYMT = "HPAYMT"
    TREAT = "TREAT"
    ETREAT = "ETREAT"
    BTG = "BTG"

    @property
    def meaning(self) -> str:
        """What the code means, in a few words."""
        return MEANINGS[self]


MEANINGS = MappingProxyType(
    {
        Purpose.HRESCH: "healthcare research: studies to gain generalisable health knowledge",
        Purpose.CLINTRCH: "clinical trial research under an approved trial protocol",
        Purpose.PUBHLTH: "public health: surveillance, reporting and prevention",
        Purpose.POPHLTH: "population health: managing the health of a defined population",
        Purpose.HQUALIMP: "healthcare quality improvement: measuring and improving care",
        Purpose.HOPERAT: "healthcare operations: running and planning the services",
        Purpose.HPAYMT: "healthcare payment: billing, claims and reimbursement",
        Purpose.TREAT: "treatment: providing care to the patient",
        Purpose.ETREAT: "emergency treatment: urgent care where delay risks harm",
        Purpose.BTG: "break the glass: emergency override of normal access rules, reviewed later",
    }
)

PROJECT_PURPOSES = frozenset(
    {
        Purpose.HRESCH,
        Purpose.CLINTRCH,
        Purpose.PUBHLTH,
        Purpose.POPHLTH,
        Purpose.HQUALIMP,
        Purpose.HOPERAT,
        Purpose.HPAYMT,
    }
)
"""Purposes a project (data-use agreement) may name; the rest are for care of one patient."""

LOOKUP_PURPOSES = frozenset({Purpose.ETREAT, Purpose.BTG})
"""Purposes a clinician's cross-hospital lookup may name."""
