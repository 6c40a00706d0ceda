"""One HL7 v2 message -> model records (ADT^A01/A04/A08, ORU^R01).

- PID -> Patient; PV1 -> Encounter (id PV1-19, else `<MSH-10>-PV1`);
- DG1 -> Condition, AL1 -> Allergy;
- OBX -> Measurement for numeric values (NM, SN), Observation otherwise (ST, TX, FT, CE,
  CWE, ...; coded values go to `value_code`). The time is OBX-14, else the order's OBR-7;
- a run of NTE segments -> one Note about what precedes it (the OBX, the OBR or the
  patient), id `<that record's id>-NTE`. Comments go to notes, not to observation text,
  because notes are stored encrypted and lab comments often name people.

Record ids, so that re-ingesting a file (or a resent or corrected message) updates the
same records:
- DG1: DG1-20 (diagnosis identifier) when sent, else `<MSH-10>-DG1<set id>`;
- AL1: `<patient id>-A<set id>`: the allergy list is the patient's and every ADT resends
  it, so keying by message would duplicate it;
- OBX: OBX-21 (observation instance identifier) when sent, else `<OBR-3>-<set id>` (the
  filler order number: a corrected result keeps its id), else `<MSH-10>-OBR<n>-OBX<m>`
  or, outside an order, `<MSH-10>-OBX<m>`;
- NTE: `<id of what it annotates>-NTE`.
A missing set id is replaced by the segment's ordinal; a repeated one gets `.2`, `.3`.
Other message types are skipped as "ADT^A03", "SIU^S12", ...
"""

from __future__ import annotations

import re
from datetime import date, datetime

from medspace.connectors._dates import as_datetime
from medspace.connectors._unit import (
    LANGUAGE_GUESSED,
    UnitRejected,
    UnitSkipped,
    guess_language,
)
from medspace.connectors.hl7v2._fields import (
    coded,
    number,
    reference_range,
    structured_numeric,
    timestamp,
)
from medspace.connectors.hl7v2._parse import Message, Segment
from medspace.connectors.hl7v2._patient import map_pid
from medspace.model import Allergy, Condition, Encounter, Measurement, Note, Observation, Record

SUPPORTED = frozenset({("ADT", "A01"), ("ADT", "A04"), ("ADT", "A08"), ("ORU", "R01")})
_MESSAGE_CODE = re.compile(r"[A-Z0-9]{3}")

# HL7 table 0004 patient class -> MedSpace encounter kind.
_PATIENT_CLASS = {"I": "inpatient", "E": "emergency", "O": "outpatient", "R": "outpatient"}
# HL7 table 0128 allergy severity -> FHIR-style criticality.
_SEVERITY = {"SV": "high", "MO": "low", "MI": "low"}
_NUMERIC_TYPES = frozenset({"NM", "SN"})
_CODED_TYPES = frozenset({"CE", "CWE", "CNE", "CF"})


class _Ids:
    """Stable, unique record ids within one message."""

    def __init__(self, control: str) -> None:
        self.control = control
        self.used: set[str] = set()

    def unique(self, key: str) -> str:
        """`key`, or `key.2`, `key.3`, ... when a duplicate set id already used it."""
        candidate, n = key, 2
        while candidate in self.used:
            candidate, n = f"{key}.{n}", n + 1
        self.used.add(candidate)
        return candidate

    def make(self, prefix: str, set_id: str | None, ordinal: int) -> str:
        """`<prefix><set id>`, the segment's ordinal standing in for a missing set id."""
        return self.unique(f"{prefix}{(set_id or '').strip() or ordinal}")


class _Walk:
    """State while walking a message's segments in order."""

    def __init__(self, control: str) -> None:
        self.ids = _Ids(control)
        self.control = control
        self.records: list[Record] = []
        self.patient_id: str | None = None
        self.encounter_id: str | None = None
        self.obr_prefix: str | None = None
        self.obr_order: str | None = None
        self.obr_time: datetime | date | None = None
        self.anchor: tuple[str, datetime | date | None] | None = None
        self.note: list[str] | None = None
        self.counts: dict[str, int] = {}

    def count(self, seg: Segment) -> int:
        self.counts[seg.id] = self.counts.get(seg.id, 0) + 1
        return self.counts[seg.id]

    def need_patient(self, seg: Segment) -> str:
        if self.patient_id is None:
            raise UnitRejected(f"{seg.id} (segment {seg.index}): comes before PID (no patient)")
        return self.patient_id

    def flush_note(self) -> None:
        if self.note is None or self.anchor is None or self.patient_id is None:
            self.note = None
            return
        text = "\n".join(self.note)
        anchor_id, time = self.anchor
        note_id = self.ids.unique(f"{anchor_id}-NTE")
        self.records.append(
            Note(
                note_id,
                self.patient_id,
                text,
                self.encounter_id,
                time,
                None,
                guess_language(text),
                (LANGUAGE_GUESSED,),
            )
        )
        self.note = None


def _pv1(w: _Walk, seg: Segment) -> None:
    patient_id = w.need_patient(seg)
    flags: list[str] = []
    visit = seg.value(19)
    encounter_id = visit.strip() if visit and visit.strip() else w.ids.unique(f"{w.control}-PV1")
    start = timestamp(seg, 44, flags)
    end = timestamp(seg, 45, flags)
    kind = _PATIENT_CLASS.get((seg.value(2) or "").strip().upper(), "unknown")
    w.encounter_id = encounter_id
    w.records.append(
        Encounter(
            encounter_id,
            patient_id,
            kind,
            as_datetime(start) if start is not None else None,
            as_datetime(end) if end is not None else None,
            None,
            tuple(flags),
        )
    )


def _dg1(w: _Walk, seg: Segment) -> None:
    patient_id = w.need_patient(seg)
    flags: list[str] = []
    code = coded(seg, 3, flags)
    if code is None:
        raise UnitRejected(f"{seg.where(3)}: diagnosis code missing")
    ordinal = w.count(seg)
    given = (seg.value(20) or "").strip()
    source_id = (
        w.ids.unique(given) if given else w.ids.make(f"{w.control}-DG1", seg.value(1), ordinal)
    )
    onset = timestamp(seg, 5, flags)
    w.records.append(
        Condition(source_id, patient_id, code, w.encounter_id, onset, None, None, tuple(flags))
    )


def _al1(w: _Walk, seg: Segment) -> None:
    patient_id = w.need_patient(seg)
    flags: list[str] = []
    code = coded(seg, 3, flags)
    if code is None:
        raise UnitRejected(f"{seg.where(3)}: allergen code missing")
    source_id = w.ids.make(f"{patient_id}-A", seg.value(1), w.count(seg))
    reactions = [r for r in (seg.components(raw)[0] for raw in seg.repetitions(5)) if r]
    severity = _SEVERITY.get((seg.value(4) or "").strip().upper())
    recorded = timestamp(seg, 6, flags)
    w.records.append(
        Allergy(
            source_id,
            patient_id,
            code,
            "; ".join(reactions) or None,
            severity,
            recorded,
            tuple(flags),
        )
    )


def _obr(w: _Walk, seg: Segment) -> None:
    w.need_patient(seg)
    n = w.count(seg)
    w.obr_prefix = w.ids.make(f"{w.control}-OBR", seg.value(1), n)
    w.obr_order = (seg.value(3) or "").strip() or None
    w.obr_time = timestamp(seg, 7, [])
    w.anchor = (w.obr_order or w.obr_prefix, w.obr_time)


def _obx(w: _Walk, seg: Segment) -> None:
    patient_id = w.need_patient(seg)
    flags: list[str] = []
    code = coded(seg, 3, flags)
    if code is None:
        raise UnitRejected(f"{seg.where(3)}: observation identifier missing")
    ordinal = w.count(seg)
    instance = (seg.value(21) or "").strip()
    if instance:
        source_id = w.ids.unique(instance)
    elif w.obr_order:
        source_id = w.ids.make(f"{w.obr_order}-", seg.value(1), ordinal)
    else:
        prefix = f"{w.obr_prefix}-OBX" if w.obr_prefix else f"{w.control}-OBX"
        source_id = w.ids.make(prefix, seg.value(1), ordinal)
    time = timestamp(seg, 14, flags) or w.obr_time
    value_type = (seg.value(2) or "").strip().upper()
    unit = seg.value(6) or seg.value(6, 2)
    w.anchor = (source_id, time)
    if value_type in _NUMERIC_TYPES:
        if value_type == "NM":
            raw = seg.value(5)
            value = number(raw, seg.where(5), "not a number (value type NM)") if raw else None
            text = None
        else:
            value, text = structured_numeric(seg, 5)
        low, high = reference_range(seg.value(7))
        w.records.append(
            Measurement(
                source_id,
                patient_id,
                code,
                w.encounter_id,
                time,
                value,
                text,
                unit,
                low,
                high,
                tuple(flags),
            )
        )
        return
    value_code = None
    if value_type in _CODED_TYPES:
        value_code = coded(seg, 5, flags)  # its words are value_code.display
        text = None if value_code else seg.value(5, 2)
    else:
        text = seg.text(5)
    w.records.append(
        Observation(
            source_id,
            patient_id,
            code,
            w.encounter_id,
            time,
            None,
            text,
            value_code,
            unit,
            tuple(flags),
        )
    )


def _nte(w: _Walk, seg: Segment) -> None:
    w.need_patient(seg)
    if w.note is None:
        w.note = []
    w.note.append(seg.text(3) or "")


_HANDLERS = {"PV1": _pv1, "DG1": _dg1, "AL1": _al1, "OBR": _obr, "OBX": _obx, "NTE": _nte}


def message_type(msg: Message) -> tuple[str, str | None]:
    """(MSH-9.1, MSH-9.2); rejects a missing or malformed message type."""
    mtype = (msg.msh.value(9) or "").strip()
    event = (msg.msh.value(9, 2) or "").strip() or None
    if _MESSAGE_CODE.fullmatch(mtype) is None or (
        event is not None and _MESSAGE_CODE.fullmatch(event) is None
    ):
        raise UnitRejected("MSH-9: message type missing or not of the form ADT^A01")
    return mtype, event


def map_message(msg: Message) -> tuple[Record, ...]:
    """Map one message; raises `UnitSkipped` for unsupported types, `UnitRejected` for
    malformed content."""
    mtype, event = message_type(msg)
    if (mtype, event) not in SUPPORTED:
        raise UnitSkipped(f"{mtype}^{event}" if event else mtype)
    control = (msg.msh.value(10) or "").strip()
    if not control:
        raise UnitRejected("MSH-10: message control id missing (record ids derive from it)")
    w = _Walk(control)
    for seg in msg.segments[1:]:
        if seg.id != "NTE":
            w.flush_note()
        if seg.id == "PID":
            patient = map_pid(seg)
            w.patient_id, w.encounter_id = patient.source_id, None
            w.obr_prefix, w.obr_order, w.obr_time = None, None, None
            w.anchor = (w.ids.unique(f"{control}-PID{w.count(seg)}"), None)
            w.records.append(patient)
            continue
        handler = _HANDLERS.get(seg.id)
        if handler is not None:
            handler(w, seg)
    w.flush_note()
    if w.patient_id is None:
        raise UnitRejected("PID segment missing (records need a patient)")
    return tuple(w.records)
