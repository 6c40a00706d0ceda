"""One object a node configures once (pack + key) and uses for everything it shares:
notes, model records and FHIR resources."""

from __future__ import annotations

from datetime import date
from functools import cached_property
from typing import Any

from medspace.deid.fhir import FhirDeidentifier
from medspace.deid.keys import DeidKey
from medspace.deid.packs import DEFAULT_PACK, RulePack, get_pack
from medspace.deid.records import RecordDeidentifier
from medspace.deid.scrub import NerBackend, Scrubber, ScrubResult
from medspace.model import Record


class Deidentifier:
    """De-identifies under one rule pack and key; parts are built on first use.

    Raises `KeyMissingError` (on first use of a part) when the pack needs a key and none
    was given, `UnknownPackError` at once for an unknown pack.
    """

    def __init__(
        self,
        pack: str | RulePack = DEFAULT_PACK,
        key: DeidKey | None = None,
        *,
        mode: str | None = None,
        ner: NerBackend | None = None,
        as_of: date | None = None,
    ) -> None:
        self.pack = get_pack(pack)
        self._key = key
        self._mode = mode
        self._ner = ner
        self._as_of = as_of

    @cached_property
    def scrubber(self) -> Scrubber:
        """The note scrubber."""
        return Scrubber(self.pack, self._key, mode=self._mode, ner=self._ner)

    @cached_property
    def records(self) -> RecordDeidentifier:
        """The model-record de-identifier (remembers each patient's identifiers)."""
        return RecordDeidentifier(self.pack, self._key, as_of=self._as_of)

    @cached_property
    def fhir(self) -> FhirDeidentifier:
        """The FHIR de-identifier (remembers each Patient's identifiers)."""
        return FhirDeidentifier(self.pack, self._key, as_of=self._as_of)

    def text(self, text: str, *, lang: str = "auto", patient_id: str | None = None) -> ScrubResult:
        """Scrub one note."""
        return self.scrubber.scrub(text, lang=lang, patient_id=patient_id)

    def record(self, record: Record) -> Record:
        """De-identify one model record (pass a patient before their notes)."""
        return self.records.record(record)

    def resource(self, resource: dict[str, Any]) -> dict[str, Any]:
        """De-identify one FHIR resource or Bundle."""
        return self.fhir.resource(resource)
