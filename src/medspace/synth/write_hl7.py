"""HL7 v2.5 output: ADT^A01 per encounter and ORU^R01 per encounter with results.

ADT^A01 carries MSH, EVN, PID, PV1, DG1 (the encounter's diagnoses, DG1-20 = condition
id) and AL1 (the patient's allergies; allergy id = patient id + "-A" + AL1-1). ORU^R01
carries MSH, PID, PV1 (PV1-19 = encounter id) and per order an OBR (OBR-3 = order id)
with its OBX results (result id = order id + "-" + OBX-1). Segments end with \\r; values
are escaped (\\F\\ \\S\\ \\R\\ \\E\\ \\T\\), so a name or department with a delimiter
stays one value.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from medspace.model import Encounter, Measurement, Observation, Patient
from medspace.model.codes import ICD10, LOINC, SNOMED
from medspace.synth.catalog import ALLERGENS
from medspace.synth.chart import Chart

#: HL7 table 0396 coding-system names.
CODING_SYSTEMS = {ICD10: "I10", LOINC: "LN", SNOMED: "SCT"}
_PATIENT_CLASS = {"inpatient": "I", "outpatient": "O", "emergency": "E"}
_SEX = {"male": "M", "female": "F", "other": "O", "unknown": "U"}
_ALLERGEN_TYPE = {"medication": "DA", "food": "FA", "environment": "EA"}
_SEVERITY = {"high": "SV", "low": "MI"}
_COUNTRY = {"zh_CN": "CHN", "en_US": "USA"}
_ID_TYPE = {"CN-RID": "NI", "US-SSN": "SS"}
_ALLERGEN_CATEGORY = {item.concept.code: item.category for item in ALLERGENS.values()}
_ESCAPES = (
    ("\\", "\\E\\"),
    ("|", "\\F\\"),
    ("^", "\\S\\"),
    ("&", "\\T\\"),
    ("~", "\\R\\"),
    # Line-breaking control characters as hex escapes (v2.5 §2.7.5), so no reader that
    # splits on line boundaries can cut a value in two.
    *((chr(code), f"\\X{code:02X}\\") for code in (0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E)),
)


_NEEDS_ESCAPE = re.compile("[" + re.escape("".join(raw for raw, _ in _ESCAPES)) + "]")


def escape(value: str) -> str:
    """Escape HL7 v2 delimiters in a value (v2.5 §2.7): the escape character first."""
    if _NEEDS_ESCAPE.search(value) is None:
        return value
    for raw, escaped in _ESCAPES:
        if raw in value:
            value = value.replace(raw, escaped)
    return value


def timestamp(value: datetime | date | None) -> str:
    """HL7 TS: YYYYMMDD for dates, YYYYMMDDHHMMSS+ZZZZ for aware datetimes."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.microsecond or value.tzinfo is None:
            return value.strftime("%Y%m%d%H%M%S%z")
        iso = value.isoformat()  # 2021-05-25T10:08:00+08:00, much faster than strftime
        return (
            iso[0:4]
            + iso[5:7]
            + iso[8:10]
            + iso[11:13]
            + iso[14:16]
            + iso[17:19]
            + iso[19:22]
            + iso[23:25]
        )
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def _segment(name: str, fields: dict[int, str]) -> str:
    values = [""] * (max(fields) + 1)
    values[0] = name
    for position, value in fields.items():
        values[position] = value
    return "|".join(values) + "\r"


@lru_cache(maxsize=1024)
def _ce(code: str, text: str | None, system: str) -> str:
    return f"{escape(code)}^{escape(text or '')}^{system}"


def _msh(chart: Chart, when: datetime | date | None, kind: str, control: str) -> str:
    hospital = chart.hospital
    return (
        f"MSH|^~\\&|MEDSPACE-SYNTH|{hospital.prefix}|MEDSPACE|MEDSPACE|{timestamp(when)}||"
        f"{kind}|{control}|P|2.5|||AL|NE|{_COUNTRY[hospital.locale]}|UNICODE UTF-8\r"
    )


def _pid(chart: Chart) -> str:
    patient: Patient = chart.patient
    identity = patient.identity
    authority = chart.hospital.prefix
    ids = [f"{patient.source_id}^^^{authority}^PI", f"{identity.mrn}^^^{authority}^MR"]
    if identity.national_id and identity.national_id_system:
        system = identity.national_id_system
        ids.append(f"{escape(identity.national_id)}^^^{system}^{_ID_TYPE[system]}")
    phones = []
    if identity.phone:
        equipment = "CP" if chart.person_locale == "zh_CN" else "PH"
        phones.append(f"{escape(identity.phone)}^PRN^{equipment}")
    if identity.email:
        phones.append(f"^NET^Internet^{escape(identity.email)}")
    address = ""
    if identity.address is not None:
        a = identity.address
        parts = (a.line, "", a.city, a.state, a.postal_code, a.country, "H", a.district)
        address = "^".join(escape(part or "") for part in parts).rstrip("^")
    name = f"{escape(identity.family_name or '')}^{escape(identity.given_name or '')}"
    return _segment(
        "PID",
        {
            1: "1",
            3: "~".join(ids),
            5: name,
            7: timestamp(patient.birth_date),
            8: _SEX[patient.sex],
            11: address,
            13: "~".join(phones),
        },
    )


def _pv1(chart: Chart, encounter: Encounter, department: str) -> str:
    return _segment(
        "PV1",
        {
            1: "1",
            2: _PATIENT_CLASS[encounter.kind],
            3: f"{escape(department)}^^^{chart.hospital.prefix}",
            19: encounter.source_id,
            44: timestamp(encounter.start),
            45: timestamp(encounter.end),
        },
    )


def adt_a01(chart: Chart, encounter: Encounter, department: str, pid: str | None = None) -> str:
    """The ADT^A01 message of one encounter (`pid`: the chart's PID segment, if built)."""
    segments = [
        _msh(chart, encounter.start, "ADT^A01^ADT_A01", f"A{encounter.source_id}"),
        f"EVN|A01|{timestamp(encounter.start)}\r",
        pid or _pid(chart),
        _pv1(chart, encounter, department),
    ]
    conditions = [c for c in chart.conditions if c.encounter_id == encounter.source_id]
    for number, condition in enumerate(conditions, start=1):
        code = condition.code
        fields = {
            1: str(number),
            3: _ce(code.code, code.display, CODING_SYSTEMS[code.system]),
            5: timestamp(condition.onset),
            6: "F",
            20: condition.source_id,
        }
        segments.append(_segment("DG1", fields))
    for number, allergy in enumerate(chart.allergies, start=1):
        kind = _ALLERGEN_TYPE[_ALLERGEN_CATEGORY[allergy.code.code]]
        fields = {
            1: str(number),
            2: kind,
            3: _ce(allergy.code.code, allergy.code.display, CODING_SYSTEMS[allergy.code.system]),
            4: _SEVERITY[allergy.criticality or "low"],
            5: escape(allergy.reaction or ""),
            6: timestamp(allergy.recorded),
        }
        segments.append(_segment("AL1", fields))
    return "".join(segments)


def _range(m: Measurement) -> str:
    if m.ref_low is not None and m.ref_high is not None:
        return f"{m.ref_low!r}-{m.ref_high!r}"
    if m.ref_high is not None:
        return f"<{m.ref_high!r}"
    if m.ref_low is not None:
        return f">{m.ref_low!r}"
    return ""


def _flag(m: Measurement) -> str:
    if m.value is None:
        return ""
    if m.ref_high is not None and m.value > m.ref_high:
        return "H"
    if m.ref_low is not None and m.value < m.ref_low:
        return "L"
    return "N"


def _obx_numeric(number: int, m: Measurement, when: str) -> str:
    # OBX-1 set id, -2 type, -3 code, -5 value, -6 unit, -7 range, -8 flag, -11 status,
    # -14 time: written out directly, this runs for every lab result.
    code = _ce(m.code.code, m.code.display, CODING_SYSTEMS[m.code.system])
    unit = escape(m.unit or "")
    return f"OBX|{number}|NM|{code}||{m.value!r}|{unit}^^UCUM|{_range(m)}|{_flag(m)}|||F|||{when}\r"


def _obx_coded(number: int, o: Observation) -> str:
    assert o.value_code is not None
    value = o.value_code
    fields = {
        1: str(number),
        2: "CWE",
        3: _ce(o.code.code, o.code.display, CODING_SYSTEMS[o.code.system]),
        5: _ce(value.code, value.display, CODING_SYSTEMS[value.system]),
        11: "F",
        14: timestamp(o.time),
    }
    return _segment("OBX", fields)


def _order_id(source_id: str) -> str:
    return source_id.rsplit("-", 1)[0]


def oru_r01(
    chart: Chart, encounter: Encounter, department: str, pid: str | None = None
) -> str | None:
    """The ORU^R01 message of one encounter's results, or None when it has none."""
    labs = [m for m in chart.measurements if m.encounter_id == encounter.source_id]
    coded = [o for o in chart.observations if o.encounter_id == encounter.source_id]
    if not labs and not coded:
        return None
    when = (labs[0].time if labs else coded[0].time) or encounter.start
    segments = [
        _msh(chart, when, "ORU^R01^ORU_R01", f"O{encounter.source_id}"),
        pid or _pid(chart),
        _pv1(chart, encounter, department),
    ]
    order_number = 0
    if labs:
        order_number += 1
        fields = {
            1: str(order_number),
            3: _order_id(labs[0].source_id),
            4: "LAB^Laboratory results^L",
            7: timestamp(labs[0].time),
            25: "F",
        }
        segments.append(_segment("OBR", fields))
        times: dict[object, str] = {}  # one chart, one zone: equal times format equally
        for n, m in enumerate(labs, start=1):
            stamp = times.get(m.time)
            if stamp is None:
                stamp = times[m.time] = timestamp(m.time)
            segments.append(_obx_numeric(n, m, stamp))
    for observation in coded:
        order_number += 1
        code = observation.code
        fields = {
            1: str(order_number),
            3: _order_id(observation.source_id),
            4: _ce(code.code, code.display, CODING_SYSTEMS[code.system]),
            7: timestamp(observation.time),
            25: "F",
        }
        segments.append(_segment("OBR", fields))
        segments.append(_obx_coded(1, observation))
    return "".join(segments)


class Hl7Writer:
    """Streams charts of one hospital to `hl7v2/adt_a01.hl7` and `hl7v2/oru_r01.hl7`."""

    def __init__(self, root: Path) -> None:
        folder = root / "hl7v2"
        folder.mkdir(parents=True, exist_ok=True)
        # newline="" keeps the \r segment terminators as they are on every platform.
        self._adt = open(folder / "adt_a01.hl7", "w", encoding="utf-8", newline="")  # noqa: SIM115
        self._oru = open(folder / "oru_r01.hl7", "w", encoding="utf-8", newline="")  # noqa: SIM115

    def write(self, chart: Chart) -> None:
        """Write one ADT^A01 per encounter and one ORU^R01 per encounter with results."""
        pid = _pid(chart)
        for encounter, department in zip(chart.encounters, chart.departments, strict=True):
            self._adt.write(adt_a01(chart, encounter, department, pid))
            message = oru_r01(chart, encounter, department, pid)
            if message is not None:
                self._oru.write(message)

    def close(self) -> None:
        """Flush and close both files."""
        self._adt.close()
        self._oru.close()
