"""Code systems MedSpace knows, by short name, and how sources spell them."""

from __future__ import annotations

ICD10 = "ICD-10"
ICD10CM = "ICD-10-CM"
LOINC = "LOINC"
ATC = "ATC"
RXNORM = "RxNorm"
SNOMED = "SNOMED CT"
CVX = "CVX"
UCUM = "UCUM"

#: FHIR system URIs and HL7 v2 coding-system names (table 0396) -> short name.
SYSTEM_ALIASES: dict[str, str] = {
    "http://hl7.org/fhir/sid/icd-10": ICD10,
    "http://hl7.org/fhir/sid/icd-10-cn": ICD10,
    "http://hl7.org/fhir/sid/icd-10-cm": ICD10CM,
    "http://loinc.org": LOINC,
    "http://www.whocc.no/atc": ATC,
    "http://www.nlm.nih.gov/research/umls/rxnorm": RXNORM,
    "http://snomed.info/sct": SNOMED,
    "http://hl7.org/fhir/sid/cvx": CVX,
    "I10": ICD10,
    "I10C": ICD10CM,
    "ICD10": ICD10,
    "ICD-10": ICD10,
    "ICD10CM": ICD10CM,
    "LN": LOINC,
    "LOINC": LOINC,
    "ATC": ATC,
    "WHOATC": ATC,
    "RXNORM": RXNORM,
    "RXN": RXNORM,
    "SCT": SNOMED,
    "SNM": SNOMED,
    "SNOMED": SNOMED,
    "SNOMEDCT": SNOMED,
    "CVX": CVX,
}

KNOWN_SYSTEMS = frozenset({ICD10, ICD10CM, LOINC, ATC, RXNORM, SNOMED, CVX})

#: Flag put on a record whose code system MedSpace does not know (kept, not dropped).
UNKNOWN_CODE_SYSTEM = "unknown-code-system"


def normalise_system(raw: str | None) -> tuple[str, bool]:
    """Return (short system name, known?) for a source's system URI or name."""
    if not raw:
        return ("unknown", False)
    key = raw.strip()
    short = SYSTEM_ALIASES.get(key) or SYSTEM_ALIASES.get(key.upper())
    if short:
        return (short, True)
    if key in KNOWN_SYSTEMS:
        return (key, True)
    return (key, False)
