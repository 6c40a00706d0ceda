"""Value types the store returns: ingest and rotation reports, stats, quarantine entries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from medspace.store.errors import AccountingError


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What one ingest did. Always `received == stored + skipped + quarantined`.

    `stored` counts source units whose records were written; `records` counts records
    written per kind; `repeated` counts records that repeated an identical record from
    earlier in the same input (HL7 v2 sends the same patient in every message) and so
    needed no write.
    """

    run_id: str
    source: str
    received: int
    stored: int
    skipped: int
    quarantined: int
    skipped_by_type: Mapping[str, int] = field(default_factory=dict)
    records: Mapping[str, int] = field(default_factory=dict)
    repeated: int = 0

    def __post_init__(self) -> None:
        if self.received != self.stored + self.skipped + self.quarantined:
            raise AccountingError(
                f"ingest counts do not balance: received {self.received} != stored "
                f"{self.stored} + skipped {self.skipped} + quarantined {self.quarantined}; "
                "this is a bug in medspace.store, please report it"
            )
        if sum(self.skipped_by_type.values()) != self.skipped:
            raise AccountingError(
                "skipped units by type do not add up to the skipped total; this is a bug "
                "in medspace.store, please report it"
            )


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Rows per table now, and counts summed over every ingest run so far."""

    rows: Mapping[str, int]
    quarantine_rows: int
    runs: int
    received: int
    stored: int
    skipped: int
    quarantined: int
    skipped_by_type: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """A quarantined source unit, without its raw bytes (use `read_quarantine_raw`)."""

    id: int
    run_id: str
    source: str
    position: str
    reason: str
    time: datetime


@dataclass(frozen=True, slots=True)
class RotationReport:
    """A finished key rotation: which KEK replaced which, and how many data keys moved."""

    old_kek_id: str
    new_kek_id: str
    rewrapped: int
