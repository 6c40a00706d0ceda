"""HIS-style CSV export: one file per table, pinyin-initial column names, and the
`mapping.yaml` (docs/CONTRACTS.md) that tells a reader which column is which field.

Chinese hospitals export GB18030 (as many Chinese HIS do), English ones UTF-8; the
mapping says which. Times carry their UTC offset ("2021-05-25 10:08:00+08:00").
"""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from medspace.model.codes import ATC, ICD10, LOINC, SNOMED
from medspace.synth.chart import Chart
from medspace.synth.people import CN_RID, US_SSN, ZH

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S%z"
DATE_FORMATS = [DATETIME_FORMAT, "%Y-%m-%d", "%Y%m%d"]

_SEX = {"male": "1", "female": "2"}
_ID_TYPE = {CN_RID: "01", US_SSN: "11"}
_VISIT_TYPE = {"outpatient": "1", "emergency": "2", "inpatient": "3"}
_CONDITION_STATUS = {"active": "1", "resolved": "2"}
_ORDER_STATUS = {"active": "1", "completed": "2"}
_CRITICALITY = {"low": "1", "high": "2"}


def _invert(table: dict[str, str]) -> dict[str, str]:
    return {code: value for value, code in table.items()}


def _constant(value: str) -> dict[str, str]:
    return {"value": value}


#: Per file: (model kind, [(column, model field or None if unmapped)], constants, value maps)
TABLES: dict[str, tuple[str, list[tuple[str, str | None]], dict[str, str], dict[str, Any]]] = {
    "patients.csv": (
        "patient",
        [
            ("PAT_ID", "source_id"),
            ("BAH", "mrn"),
            ("XING", "family_name"),
            ("MING", "given_name"),
            ("XB", "sex"),
            ("CSRQ", "birth_date"),
            ("ZJLX", "national_id_system"),
            ("ID_NO", "national_id"),
            ("LXDH", "phone"),
            ("DZYX", "email"),
            ("SHENG", "address.state"),
            ("SHI", "address.city"),
            ("QU", "address.district"),
            ("XXDZ", "address.line"),
            ("YZBM", "address.postal_code"),
            ("GJ", "address.country"),
        ],
        {},
        {"sex": _invert(_SEX), "national_id_system": _invert(_ID_TYPE)},
    ),
    "encounters.csv": (
        "encounter",
        [
            ("VISIT_ID", "source_id"),
            ("PAT_ID", "patient_id"),
            ("JZLX", "kind"),
            ("RYSJ", "start"),
            ("CYSJ", "end"),
            ("KSMC", None),
        ],
        {},
        {"kind": _invert(_VISIT_TYPE)},
    ),
    "diagnoses.csv": (
        "condition",
        [
            ("DIAG_ID", "source_id"),
            ("PAT_ID", "patient_id"),
            ("VISIT_ID", "encounter_id"),
            ("ICD_CODE", "code.code"),
            ("ICD_NAME", "code.display"),
            ("DIAG_DATE", "onset"),
            ("LRRQ", "recorded"),
            ("ZDZT", "clinical_status"),
        ],
        {"code.system": ICD10},
        {"clinical_status": _invert(_CONDITION_STATUS)},
    ),
    "drugs.csv": (
        "drug",
        [
            ("YZ_ID", "source_id"),
            ("PAT_ID", "patient_id"),
            ("VISIT_ID", "encounter_id"),
            ("ATC_CODE", "code.code"),
            ("YPMC", "code.display"),
            ("YFYL", "dose"),
            ("KSSJ", "start"),
            ("JSSJ", "end"),
            ("YZZT", "status"),
        ],
        {"code.system": ATC, "kind": "request"},
        {"status": _invert(_ORDER_STATUS)},
    ),
    "labs.csv": (
        "measurement",
        [
            ("JY_ID", "source_id"),
            ("PAT_ID", "patient_id"),
            ("VISIT_ID", "encounter_id"),
            ("LOINC", "code.code"),
            ("XMMC", "code.display"),
            ("JG", "value"),
            ("DW", "unit"),
            ("CKXX", "ref_low"),
            ("CKSX", "ref_high"),
            ("BGSJ", "time"),
        ],
        {"code.system": LOINC},
        {},
    ),
    "observations.csv": (
        "observation",
        [
            ("GC_ID", "source_id"),
            ("PAT_ID", "patient_id"),
            ("VISIT_ID", "encounter_id"),
            ("XM_DM", "code.code"),
            ("XMMC", "code.display"),
            ("JG_DM", "value_code.code"),
            ("JG_MC", "value_code.display"),
            ("GCSJ", "time"),
        ],
        {"code.system": LOINC, "value_code.system": SNOMED},
        {},
    ),
    "procedures.csv": (
        "procedure",
        [
            ("SS_ID", "source_id"),
            ("PAT_ID", "patient_id"),
            ("VISIT_ID", "encounter_id"),
            ("SS_DM", "code.code"),
            ("SS_MC", "code.display"),
            ("SSSJ", "time"),
        ],
        {"code.system": SNOMED},
        {},
    ),
    "allergies.csv": (
        "allergy",
        [
            ("GM_ID", "source_id"),
            ("PAT_ID", "patient_id"),
            ("GMY_DM", "code.code"),
            ("GMY", "code.display"),
            ("GMFY", "reaction"),
            ("YZCD", "criticality"),
            ("JLRQ", "recorded"),
        ],
        {"code.system": SNOMED},
        {"criticality": _invert(_CRITICALITY)},
    ),
    "notes.csv": (
        "note",
        [
            ("BL_ID", "source_id"),
            ("PAT_ID", "patient_id"),
            ("VISIT_ID", "encounter_id"),
            ("BLLX_DM", "kind.code"),
            ("BLLX", "kind.display"),
            ("JLSJ", "time"),
            ("YY", "language"),
            ("BLNR", "text"),
        ],
        {"kind.system": LOINC},
        {},
    ),
}


def _when(value: datetime | date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")  # 2021-05-25 10:08:00+08:00, which %z parses
    return value.isoformat()


def encoding_for(locale: str) -> str:
    """The export's text encoding: GB18030 for Chinese hospitals, UTF-8 otherwise."""
    return "gb18030" if locale == ZH else "utf-8"


def mapping_document(locale: str) -> dict[str, Any]:
    """The mapping.yaml content of a hospital of `locale`."""
    tables: dict[str, Any] = {}
    for file_name, (kind, columns, constants, values) in TABLES.items():
        mapped: dict[str, Any] = {field: column for column, field in columns if field}
        mapped.update({field: _constant(value) for field, value in constants.items()})
        table: dict[str, Any] = {"kind": kind, "columns": mapped}
        if values:
            table["values"] = values
        tables[file_name] = table
    return {
        "version": 1,
        "encoding": encoding_for(locale),
        "delimiter": ",",
        "date_formats": DATE_FORMATS,
        "tables": tables,
    }


def _float(value: float | None) -> str:
    return "" if value is None else repr(value)


def _rows(chart: Chart) -> dict[str, list[list[str]]]:
    patient, identity = chart.patient, chart.patient.identity
    address = identity.address
    pid = patient.source_id
    place = (
        [
            address.state or "",
            address.city or "",
            address.district or "",
            address.line or "",
            address.postal_code or "",
            address.country or "",
        ]
        if address is not None
        else [""] * 6
    )
    return {
        "patients.csv": [
            [
                pid,
                identity.mrn or "",
                identity.family_name or "",
                identity.given_name or "",
                _SEX[patient.sex],
                patient.birth_date.strftime("%Y%m%d") if patient.birth_date else "",
                _ID_TYPE[identity.national_id_system] if identity.national_id_system else "",
                identity.national_id or "",
                identity.phone or "",
                identity.email or "",
                *place,
            ]
        ],
        "encounters.csv": [
            [e.source_id, pid, _VISIT_TYPE[e.kind], _when(e.start), _when(e.end), department]
            for e, department in zip(chart.encounters, chart.departments, strict=True)
        ],
        "diagnoses.csv": [
            [
                c.source_id,
                pid,
                c.encounter_id or "",
                c.code.code,
                c.code.display or "",
                _when(c.onset),
                _when(c.recorded),
                _CONDITION_STATUS[c.clinical_status or "active"],
            ]
            for c in chart.conditions
        ],
        "drugs.csv": [
            [
                d.source_id,
                pid,
                d.encounter_id or "",
                d.code.code,
                d.code.display or "",
                d.dose or "",
                _when(d.start),
                _when(d.end),
                _ORDER_STATUS[d.status or "active"],
            ]
            for d in chart.drugs
        ],
        "labs.csv": [
            [
                m.source_id,
                pid,
                m.encounter_id or "",
                m.code.code,
                m.code.display or "",
                _float(m.value),
                m.unit or "",
                _float(m.ref_low),
                _float(m.ref_high),
                _when(m.time),
            ]
            for m in chart.measurements
        ],
        "observations.csv": [
            [
                o.source_id,
                pid,
                o.encounter_id or "",
                o.code.code,
                o.code.display or "",
                o.value_code.code if o.value_code else "",
                (o.value_code.display or "") if o.value_code else "",
                _when(o.time),
            ]
            for o in chart.observations
        ],
        "procedures.csv": [
            [
                p.source_id,
                pid,
                p.encounter_id or "",
                p.code.code,
                p.code.display or "",
                _when(p.time),
            ]
            for p in chart.procedures
        ],
        "allergies.csv": [
            [
                a.source_id,
                pid,
                a.code.code,
                a.code.display or "",
                a.reaction or "",
                _CRITICALITY[a.criticality or "low"],
                _when(a.recorded),
            ]
            for a in chart.allergies
        ],
        "notes.csv": [
            [
                g.note.source_id,
                pid,
                g.note.encounter_id or "",
                g.note.kind.code if g.note.kind else "",
                (g.note.kind.display or "") if g.note.kind else "",
                _when(g.note.time),
                g.note.language or "",
                g.note.text,
            ]
            for g in chart.notes
        ],
    }


def write_mapping(root: Path, locale: str) -> None:
    """Write `csv/mapping.yaml` for a hospital of `locale` under `root`."""
    folder = root / "csv"
    folder.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(mapping_document(locale), allow_unicode=True, sort_keys=False)
    (folder / "mapping.yaml").write_text(text, encoding="utf-8")


def write_headers(root: Path, locale: str) -> None:
    """Start every `csv/*.csv` under `root` with its header row (rows are appended later)."""
    folder = root / "csv"
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, (_, columns, _, _) in TABLES.items():
        with open(folder / file_name, "w", encoding=encoding_for(locale), newline="") as handle:
            csv.writer(handle, lineterminator="\r\n").writerow([column for column, _ in columns])


class CsvWriter:
    """Streams charts of one hospital as rows appended to `csv/*.csv` under `root`
    (headers and mapping come from `write_headers` and `write_mapping`)."""

    def __init__(self, root: Path, locale: str) -> None:
        folder = root / "csv"
        folder.mkdir(parents=True, exist_ok=True)
        encoding = encoding_for(locale)
        self._handles: list[TextIO] = []
        self._writers: dict[str, Any] = {}
        for file_name in TABLES:
            handle = open(folder / file_name, "a", encoding=encoding, newline="")  # noqa: SIM115
            self._handles.append(handle)
            self._writers[file_name] = csv.writer(handle, lineterminator="\r\n")

    def write(self, chart: Chart) -> None:
        """Append the chart's rows to every table."""
        for file_name, rows in _rows(chart).items():
            if rows:
                self._writers[file_name].writerows(rows)

    def close(self) -> None:
        """Flush and close every table."""
        for handle in self._handles:
            handle.close()
