"""FHIR R4 readers: Bulk Data NDJSON (one resource per line) and JSON Bundles (one unit per
`entry`), streamed so that memory does not grow with the file.

NDJSON is read line by line in binary and each line parsed with `json.loads`. A Bundle is
streamed with `ijson` (`entry.item`); `urn:uuid:` references are resolved against the
entries' `fullUrl`s (see `_refs`). A JSON file holding a single non-Bundle resource is one
unit. Outcomes come in file order, one per line / entry.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import ijson
import orjson

from medspace.connectors._io import open_binary, read_head
from medspace.connectors._unit import UnitRejected, UnitSkipped, reject_nul, unexpected
from medspace.connectors.base import ConnectorError, Outcome, Parsed, Rejected, Skipped
from medspace.connectors.fhir._clinical import (
    map_allergy,
    map_condition,
    map_encounter,
    map_medication_request,
    map_medication_statement,
    map_procedure,
)
from medspace.connectors.fhir._document import map_document_reference
from medspace.connectors.fhir._observation import map_observation
from medspace.connectors.fhir._patient import map_patient
from medspace.connectors.fhir._refs import (
    TARGET_TYPES,
    ReferencePending,
    References,
    split_reference,
)
from medspace.connectors.fhir._types import R4_RESOURCE_TYPES
from medspace.connectors.fhir._values import Json, check_id, concept_to_code
from medspace.connectors.registry import register_connector
from medspace.model import Record

Mapper = Callable[[Json, str, References], tuple[Record, ...]]

MAPPERS: dict[str, Mapper] = {
    "Patient": lambda res, rid, refs: map_patient(res, rid),
    "Encounter": map_encounter,
    "Condition": map_condition,
    "MedicationRequest": map_medication_request,
    "MedicationStatement": map_medication_statement,
    "Observation": map_observation,
    "AllergyIntolerance": map_allergy,
    "Procedure": map_procedure,
    "DocumentReference": map_document_reference,
}

_BOM = b"\xef\xbb\xbf"
#: Whole-file rejections keep at most this much of the file as raw bytes in quarantine.
RAW_LIMIT = 16 * 1024 * 1024
#: Errors ijson (yajl2_c) raises on broken input; its messages quote input and are not kept.
_JSON_STREAM_ERRORS = (ijson.JSONError, ValueError, UnicodeDecodeError)
_BACKENDS = (ijson, ijson.get_backend("python"))


class _NonStandardNumber(ValueError):
    pass


def _no_constants(_: str) -> float:
    raise _NonStandardNumber


def map_resource(
    obj: object, refs: References, fallback_id: str | None = None
) -> tuple[Record, ...]:
    """Map one parsed FHIR resource to records.

    Raises `UnitRejected`, `UnitSkipped` or (inside a Bundle) `ReferencePending`."""
    if not isinstance(obj, dict):
        raise UnitRejected("resource: must be a JSON object")
    rtype = obj.get("resourceType")
    if rtype is None:
        raise UnitRejected("resourceType: missing")
    if not isinstance(rtype, str) or rtype not in R4_RESOURCE_TYPES:
        raise UnitRejected("resourceType: not a FHIR R4 resource type")
    mapper = MAPPERS.get(rtype)
    if mapper is None:
        raise UnitSkipped(rtype)
    rid = obj.get("id")
    if rid is None:
        rid = fallback_id
    return mapper(obj, check_id(rid, f"{rtype}.id"), refs)


def _outcome(
    source: str,
    position: str,
    obj: object,
    raw: bytes | Callable[[], bytes],
    refs: References,
    fallback_id: str | None = None,
) -> Outcome:
    """One outcome for one resource; lets `ReferencePending` through. `raw` may be a
    callable so that Bundle entries are re-serialised only when rejected."""

    def raw_bytes() -> bytes:
        return raw if isinstance(raw, bytes) else raw()

    try:
        if not isinstance(raw, bytes) or b"\\u0000" in raw:
            reject_nul(obj)  # Bundle entries always; NDJSON lines only when escaped NUL is there
        return Parsed(source, position, map_resource(obj, refs, fallback_id))
    except UnitRejected as exc:
        return Rejected(source, position, exc.reason, raw_bytes())
    except UnitSkipped as exc:
        return Skipped(source, position, exc.unit_type)
    except ReferencePending:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError) as exc:
        rtype = obj.get("resourceType") if isinstance(obj, dict) else None
        kind = rtype if isinstance(rtype, str) and rtype in R4_RESOURCE_TYPES else "resource"
        return Rejected(source, position, unexpected(kind, exc), raw_bytes())


def parse_json(data: bytes, what: str = "line") -> object:
    """Parse one NDJSON line (or a whole small file); `UnitRejected` says why it is not
    JSON, naming `what` and never quoting the data.

    orjson (strict RFC 8259, about 3x faster) parses the common case; whatever it refuses
    is parsed again by the standard library, which either accepts it (integers beyond 64
    bits, escaped lone surrogates) or says precisely what is wrong."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnitRejected(f"{what} is not valid UTF-8 (bad byte at offset {exc.start})") from None
    try:
        return json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise UnitRejected(
            f"{what} is not valid JSON ({exc.msg}, column {exc.colno}); is it truncated?"
        ) from None
    except _NonStandardNumber:
        raise UnitRejected(f"{what} is not valid JSON (NaN/Infinity are not numbers)") from None
    except (ValueError, RecursionError):
        raise UnitRejected(
            f"{what} is not valid JSON (number too long or too deeply nested)"
        ) from None


@register_connector
class FhirNdjsonConnector:
    """FHIR Bulk Data NDJSON: one resource per line; blank lines are not units."""

    name: ClassVar[str] = "fhir-ndjson"

    def read(self, path: Path) -> Iterator[Outcome]:
        """Yield one outcome per non-blank line (`position` "line N")."""
        source = str(path)
        refs = References(in_bundle=False)
        lineno = 0
        with open_binary(path) as f:
            try:
                for line in f:
                    lineno += 1
                    if lineno == 1 and line.startswith(_BOM):
                        line = line[len(_BOM) :]
                    unit = line.strip()
                    if not unit:
                        continue
                    position = f"line {lineno}"
                    try:
                        obj = parse_json(unit)
                    except UnitRejected as exc:
                        yield Rejected(source, position, exc.reason, unit)
                        continue
                    yield _outcome(source, position, obj, unit, refs)
            except (OSError, EOFError):
                raise ConnectorError(
                    f"{path}: reading stopped after line {lineno} (damaged or truncated gzip?); "
                    "outcomes up to that line stand, re-export the file for the rest"
                ) from None


def _fallback_id(full_url: object) -> str | None:
    """The id a Bundle entry without `resource.id` gets from its fullUrl."""
    if not isinstance(full_url, str):
        return None
    if full_url.startswith("urn:uuid:"):
        candidate: str | None = full_url[len("urn:uuid:") :]
    else:
        parts = split_reference(full_url)
        candidate = parts[1] if parts else None
    try:
        return check_id(candidate, "fullUrl") if candidate else None
    except UnitRejected:
        return None


def _register(entry: object, refs: References) -> str | None:
    """Register a Patient/Encounter/Medication entry for references; return the entry's
    fallback id. Never raises: a broken entry is judged when it is mapped."""
    if not isinstance(entry, dict):
        return None
    full_url = entry.get("fullUrl")
    fallback = _fallback_id(full_url)
    resource = entry.get("resource")
    if not isinstance(resource, dict) or resource.get("resourceType") not in TARGET_TYPES:
        return fallback
    rtype = resource["resourceType"]
    rid = resource.get("id", fallback)
    if not isinstance(rid, str):
        return fallback
    if rtype == "Medication":
        try:
            code = concept_to_code(resource.get("code"), "Medication.code", [])
        except UnitRejected:
            return fallback
        refs.register_medication(full_url if isinstance(full_url, str) else None, rid, code)
    elif isinstance(full_url, str):
        refs.register(full_url, rtype, rid)
    return fallback


def _file_raw(path: Path) -> bytes:
    with open_binary(path) as f:
        return f.read(RAW_LIMIT)


@register_connector
class FhirBundleConnector:
    """A FHIR JSON document: a Bundle (batch, transaction, collection, searchset, ...) read
    entry by entry, or a single resource."""

    name: ClassVar[str] = "fhir-bundle"

    def read(self, path: Path) -> Iterator[Outcome]:
        """Yield one outcome per Bundle entry ("entry N"), or one for a single resource
        ("resource"). Broken JSON yields a `Rejected` for the part that cannot be read."""
        if not read_head(path, 4096).strip():
            return
        source = str(path)
        try:
            rtype = self._top_level_type(path)
        except _JSON_STREAM_ERRORS:
            yield Rejected(
                source, "file", "file is not valid JSON; fix or re-export it", _file_raw(path)
            )
            return
        if rtype == "Bundle":
            yield from self._entries(path, source)
        elif rtype is None:
            yield Rejected(
                source,
                "file",
                "resourceType: missing at the top level (not a FHIR resource)",
                _file_raw(path),
            )
        else:
            raw = _file_raw(path)
            refs = References(in_bundle=False)
            try:
                obj = parse_json(raw, what="file")
            except UnitRejected as exc:
                yield Rejected(source, "resource", exc.reason, raw)
                return
            yield _outcome(source, "resource", obj, raw, refs)

    @staticmethod
    def _top_level_type(path: Path) -> str | None:
        """The top-level resourceType; stops reading as soon as it is seen (it is usually
        the first key)."""
        for backend in _BACKENDS:
            try:
                with open_binary(path) as f:
                    for prefix, event, value in backend.parse(f):
                        if prefix == "resourceType" and event == "string":
                            return str(value)
                return None
            except _JSON_STREAM_ERRORS:
                if backend is _BACKENDS[-1]:
                    raise
        return None

    def _entries(self, path: Path, source: str) -> Iterator[Outcome]:
        refs = References(in_bundle=True)
        pending: deque[tuple[str, object, str | None]] = deque()
        count = 0
        broken = False
        # yajl2_c is fast but refuses some valid JSON (integers beyond 64 bits); on a parse
        # error the pure-Python backend re-reads the file, skipping the entries already seen,
        # so only JSON that both reject counts as broken.
        for backend in _BACKENDS:
            broken = False
            seen = 0
            with open_binary(path) as f:
                items = backend.items(f, "entry.item", use_float=True)
                while True:
                    try:
                        entry = next(items)
                    except StopIteration:
                        break
                    except (*_JSON_STREAM_ERRORS, OSError, EOFError):
                        broken = True
                        break
                    seen += 1
                    if seen <= count:
                        continue
                    count += 1
                    fallback = _register(entry, refs)
                    pending.append((f"entry {count}", entry, fallback))
                    yield from self._drain(pending, refs, source)
            if not broken:
                break
        refs.final = True
        yield from self._drain(pending, refs, source)
        if broken:
            yield Rejected(
                source,
                f"entry {count + 1}",
                f"Bundle is not valid JSON after entry {count} (truncated?); the rest of the "
                "file cannot be read, fix or re-export it",
                _file_raw(path),
            )

    @staticmethod
    def _drain(
        pending: deque[tuple[str, object, str | None]], refs: References, source: str
    ) -> Iterator[Outcome]:
        """Map held entries from the front, in order, until one still waits for a target."""
        while pending:
            position, entry, fallback = pending[0]
            try:
                outcome = _entry_outcome(source, position, entry, refs, fallback)
            except ReferencePending:
                return
            pending.popleft()
            yield outcome


def _entry_outcome(
    source: str, position: str, entry: object, refs: References, fallback: str | None
) -> Outcome:
    def raw() -> bytes:
        return json.dumps(entry, ensure_ascii=False, default=str).encode("utf-8")

    if not isinstance(entry, dict):
        return Rejected(source, position, "Bundle.entry: must be a JSON object", raw())
    resource = entry.get("resource")
    if resource is None:
        return Skipped(source, position, "Bundle.entry without resource")
    return _outcome(source, position, resource, raw, refs, fallback)
