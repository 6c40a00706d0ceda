"""FHIR Observation -> `Measurement` or `Observation`.

An Observation is a Measurement when its category is `laboratory` or `vital-signs`, or its
value is a Quantity; otherwise it is an Observation (surveys, social history, ...).
A panel with `component`s (blood pressure) yields one record per component, ids
`<id>#component-<n>`, and a record for the panel itself only when it has its own value.
A Quantity with a comparator ("<5") keeps no numeric value: `value_text` carries it.
"""

from __future__ import annotations

from datetime import date, datetime

from medspace.connectors._unit import UnitRejected
from medspace.connectors.fhir._clinical import encounter_of, required_code, subject
from medspace.connectors.fhir._refs import References
from medspace.connectors.fhir._values import (
    Json,
    concept_codes,
    concept_text,
    concept_to_code,
    first_obj,
    get_datetime,
    get_list,
    get_number,
    get_obj,
    get_str,
    period_start_end,
)
from medspace.model import Code, Measurement, Observation, Record

MEASUREMENT_CATEGORIES = frozenset({"laboratory", "vital-signs"})
#: Flag for a value type MedSpace does not store (SampledData, Attachment, Period, Time).
VALUE_NOT_MAPPED = "value-not-mapped"

_UNMAPPED_VALUES = ("valueTime", "valuePeriod", "valueSampledData", "valueAttachment")


class _Value:
    __slots__ = ("code", "quantity", "text", "unit", "value")

    def __init__(self) -> None:
        self.value: float | None = None
        self.text: str | None = None
        self.code: Code | None = None
        self.unit: str | None = None
        self.quantity = False


def _quantity(q: Json, path: str) -> tuple[float | None, str | None, str | None]:
    """(value, comparator text, unit) of a Quantity."""
    value = get_number(q, "value", path)
    unit = get_str(q, "unit", path) or get_str(q, "code", path)
    comparator = get_str(q, "comparator", path)
    if comparator and value is not None:
        if comparator not in ("<", "<=", ">=", ">"):
            raise UnitRejected(f"{path}.comparator: not one of < <= >= >")
        return None, f"{comparator}{value:g}", unit
    return value, None, unit


def _value(element: Json, path: str, flags: list[str]) -> _Value:
    out = _Value()
    if "valueQuantity" in element:
        q = get_obj(element, "valueQuantity", path)
        assert q is not None
        out.value, out.text, out.unit = _quantity(q, f"{path}.valueQuantity")
        out.quantity = True
    elif "valueCodeableConcept" in element:
        concept = element["valueCodeableConcept"]
        vpath = f"{path}.valueCodeableConcept"
        out.code = concept_to_code(concept, vpath, flags) if concept_codes(concept) else None
        # A coded value's words live in value_code.display; text only when there is no code
        # (or for a Measurement, which has no value_code).
        out.text = concept_text(concept, vpath)
    elif "valueString" in element:
        out.text = get_str(element, "valueString", path)
    elif "valueBoolean" in element:
        flag = element["valueBoolean"]
        if not isinstance(flag, bool):
            raise UnitRejected(f"{path}.valueBoolean: must be true or false")
        out.text = "true" if flag else "false"
    elif "valueInteger" in element:
        number = element["valueInteger"]
        if isinstance(number, bool) or not isinstance(number, int):
            raise UnitRejected(f"{path}.valueInteger: must be an integer")
        out.value = float(number)
    elif "valueRange" in element:
        rng = get_obj(element, "valueRange", path)
        assert rng is not None
        ends = []
        for end in ("low", "high"):
            q = get_obj(rng, end, f"{path}.valueRange")
            number = get_number(q, "value", f"{path}.valueRange.{end}") if q else None
            ends.append("" if number is None else f"{number:g}")
        out.text = "-".join(ends)
    elif "valueRatio" in element:
        ratio = get_obj(element, "valueRatio", path)
        assert ratio is not None
        parts = []
        for part in ("numerator", "denominator"):
            q = get_obj(ratio, part, f"{path}.valueRatio")
            number = get_number(q, "value", f"{path}.valueRatio.{part}") if q else None
            parts.append("" if number is None else f"{number:g}")
        out.text = "/".join(parts)
    elif "valueDateTime" in element:
        get_datetime(element, "valueDateTime", path, flags)  # validates
        out.text = element["valueDateTime"]
    elif any(key in element for key in _UNMAPPED_VALUES):
        flags.append(VALUE_NOT_MAPPED)
    return out


def _reference_range(element: Json, path: str) -> tuple[float | None, float | None]:
    rng = first_obj(element, "referenceRange", path)
    if rng is None:
        return None, None
    rpath = f"{path}.referenceRange[0]"
    low = get_obj(rng, "low", rpath)
    high = get_obj(rng, "high", rpath)
    return (
        get_number(low, "value", f"{rpath}.low") if low else None,
        get_number(high, "value", f"{rpath}.high") if high else None,
    )


def _record(
    element: Json,
    path: str,
    source_id: str,
    code: Code,
    context: tuple[str, str | None, datetime | date | None, bool],
    flags: list[str],
) -> Record:
    patient_id, encounter_id, time, measurement_category = context
    value = _value(element, path, flags)
    if value.quantity or measurement_category:
        low, high = _reference_range(element, path)
        return Measurement(
            source_id,
            patient_id,
            code,
            encounter_id,
            time,
            value.value,
            value.text,
            value.unit,
            low,
            high,
            tuple(flags),
        )
    return Observation(
        source_id,
        patient_id,
        code,
        encounter_id,
        time,
        value.value,
        value.text if value.code is None else None,
        value.code,
        value.unit,
        tuple(flags),
    )


def map_observation(res: Json, rid: str, refs: References) -> tuple[Record, ...]:
    """Observation: subject and code required; effective[x] (or issued) is the time."""
    rtype = "Observation"
    base: list[str] = []
    patient_id = subject(res, rtype, refs)
    time = get_datetime(res, "effectiveDateTime", rtype, base)
    if time is None:
        time = period_start_end(res, "effectivePeriod", rtype, base)[0]
    if time is None:
        time = get_datetime(res, "effectiveInstant", rtype, base)
    if time is None:
        time = get_datetime(res, "issued", rtype, base)
    categories: set[str] = set()
    for i, concept in enumerate(get_list(res, "category", rtype)):
        if not isinstance(concept, dict):
            raise UnitRejected(f"{rtype}.category[{i}]: must be a JSON object")
        categories |= concept_codes(concept)
    context = (
        patient_id,
        encounter_of(res, rtype, refs),
        time,
        bool(categories & MEASUREMENT_CATEGORIES),
    )
    flags = list(base)
    code = required_code(res, "code", rtype, flags)
    components = get_list(res, "component", rtype)
    records: list[Record] = []
    if not components or any(key.startswith("value") for key in res):
        records.append(_record(res, rtype, rid, code, context, flags))
    for i, component in enumerate(components):
        path = f"{rtype}.component[{i}]"
        if not isinstance(component, dict):
            raise UnitRejected(f"{path}: must be a JSON object")
        cflags = list(base)
        ccode = required_code(component, "code", path, cflags)
        records.append(_record(component, path, f"{rid}#component-{i + 1}", ccode, context, cflags))
    return tuple(records)
