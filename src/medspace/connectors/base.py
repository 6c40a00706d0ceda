"""What every connector promises: one outcome per source unit, nothing lost.

A *source unit* is one FHIR resource (an NDJSON line or a Bundle entry), one HL7 v2
message, or one CSV row. For each unit a connector yields exactly one of:

- `Parsed`: the unit mapped to one or more model records (an ADT^A01 message maps to a
  patient, an encounter, diagnoses and allergies);
- `Skipped`: a well-formed unit of a type MedSpace does not map yet (Claim, Immunization,
  ADT^A03, ...), counted by type and reported, never quarantined;
- `Rejected`: a malformed unit, kept by the store in quarantine with its raw bytes
  (encrypted) and a reason.

So for every ingest: received = stored + skipped + quarantined. Reasons name the field
and the rule that failed and never quote field values (they may be PHI).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from medspace.errors import MedSpaceError
from medspace.model import Record


class ConnectorError(MedSpaceError):
    """A whole input cannot be read (missing file, unknown format). Single bad units never
    raise: they are yielded as `Rejected`."""

    exit_code = 2
    http_status = 400


@dataclass(frozen=True, slots=True)
class Parsed:
    """A source unit that mapped to model records."""

    source: str  # file path as given
    position: str  # "line 12", "entry 3", "message 2", "row 7"
    records: tuple[Record, ...]


@dataclass(frozen=True, slots=True)
class Skipped:
    """A well-formed source unit of a type MedSpace does not map (yet)."""

    source: str
    position: str
    unit_type: str  # e.g. "Claim", "ADT^A03"


@dataclass(frozen=True, slots=True)
class Rejected:
    """A malformed source unit. `raw` is kept (encrypted) in quarantine; `reason` has no PHI."""

    source: str
    position: str
    reason: str
    raw: bytes


Outcome = Parsed | Skipped | Rejected


class Connector(Protocol):
    """Reads one input file, streaming: memory does not grow with the file's size."""

    name: ClassVar[str]

    def read(self, path: Path) -> Iterator[Outcome]:
        """Yield one outcome per source unit, in file order. Raises `ConnectorError`
        only when the file as a whole cannot be opened."""
        ...
