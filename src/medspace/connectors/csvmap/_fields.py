"""Which model fields each record kind takes from a CSV row, their types, and how one row's
values become a record. Field names are the model's, dotted for nested values
(`code.code`, `address.city`); identity fields are given flat (CONTRACTS.md)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from medspace.connectors._dates import as_datetime
from medspace.connectors._unit import UnitRejected
from medspace.model import (
    UNKNOWN_CODE_SYSTEM,
    Address,
    Allergy,
    Code,
    Condition,
    Drug,
    Encounter,
    Identity,
    Measurement,
    Note,
    Observation,
    Patient,
    Procedure,
    Record,
    normalise_system,
)

# Value types of mapped fields.
STR, DATE, DATETIME, WHEN, FLOAT, SEX, ENCOUNTER_KIND, DRUG_KIND = (
    "str", "date", "datetime", "date-or-datetime", "float", "sex", "encounter-kind", "drug-kind"
)  # fmt: skip

_IDENTITY = {
    "family_name": STR,
    "given_name": STR,
    "national_id": STR,
    "national_id_system": STR,
    "mrn": STR,
    "phone": STR,
    "email": STR,
    **{
        f"address.{k}": STR for k in ("line", "district", "city", "state", "postal_code", "country")
    },
}


def _code(prefix: str) -> dict[str, str]:
    return {f"{prefix}.system": STR, f"{prefix}.code": STR, f"{prefix}.display": STR}


_CLINICAL = {"source_id": STR, "patient_id": STR, "encounter_id": STR}

FIELDS: dict[str, dict[str, str]] = {
    "patient": {"source_id": STR, "sex": SEX, "birth_date": DATE, "deceased": WHEN, **_IDENTITY},
    "encounter": {
        "source_id": STR,
        "patient_id": STR,
        "kind": ENCOUNTER_KIND,
        "start": DATETIME,
        "end": DATETIME,
        **_code("code"),
    },
    "condition": {
        **_CLINICAL,
        **_code("code"),
        "onset": WHEN,
        "recorded": WHEN,
        "clinical_status": STR,
    },
    "drug": {
        **_CLINICAL,
        **_code("code"),
        "start": WHEN,
        "end": WHEN,
        "kind": DRUG_KIND,
        "status": STR,
        "dose": STR,
    },
    "measurement": {
        **_CLINICAL,
        **_code("code"),
        "time": WHEN,
        "value": FLOAT,
        "value_text": STR,
        "unit": STR,
        "ref_low": FLOAT,
        "ref_high": FLOAT,
    },
    "observation": {
        **_CLINICAL,
        **_code("code"),
        "time": WHEN,
        "value": FLOAT,
        "value_text": STR,
        **_code("value_code"),
        "unit": STR,
    },
    "procedure": {**_CLINICAL, **_code("code"), "time": WHEN},
    "allergy": {
        "source_id": STR,
        "patient_id": STR,
        **_code("code"),
        "reaction": STR,
        "criticality": STR,
        "recorded": WHEN,
    },
    "note": {**_CLINICAL, "text": STR, "time": WHEN, **_code("kind"), "language": STR},
}

_CODED = ("condition", "drug", "measurement", "observation", "procedure", "allergy")
REQUIRED: dict[str, tuple[str, ...]] = {
    "patient": ("source_id",),
    "encounter": ("source_id", "patient_id"),
    "note": ("source_id", "patient_id", "text"),
    **{kind: ("source_id", "patient_id", "code.code") for kind in _CODED},
}

_CHOICES = {
    SEX: ("male", "female", "other", "unknown"),
    ENCOUNTER_KIND: ("inpatient", "outpatient", "emergency", "unknown"),
    DRUG_KIND: ("request", "statement", "administration"),
}
_FLOAT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_TIME_DIRECTIVES = ("%H", "%I", "%M", "%S", "%f", "%p", "%X", "%c", "%T", "%z")


# Fast paths for common formats: a zero-padded value these patterns match parses the same
# with fromisoformat as with strptime, at a fraction of the cost; anything else (unpadded
# fields, other formats) goes to strptime.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_SPACE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_ISO_T = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
_FAST: dict[str, tuple[re.Pattern[str], Callable[[str], datetime | date]]] = {
    "%Y-%m-%d": (_ISO_DATE, date.fromisoformat),
    "%Y-%m-%d %H:%M:%S": (_ISO_SPACE, datetime.fromisoformat),
    "%Y-%m-%dT%H:%M:%S": (_ISO_T, datetime.fromisoformat),
    "%Y%m%d": (re.compile(r"\d{8}"), lambda t: date(int(t[:4]), int(t[4:6]), int(t[6:]))),
}


@lru_cache(maxsize=1024)
def parse_date(text: str, formats: tuple[str, ...]) -> datetime | date:
    """The first of `formats` that parses `text`: a datetime if that format has a time
    part, else a date. Raises ValueError (never quoting the text)."""
    for fmt in formats:
        fast = _FAST.get(fmt)
        if fast is not None and fast[0].fullmatch(text):
            try:
                return fast[1](text)
            except ValueError:
                continue  # an impossible date: strptime would refuse it too
        try:
            value = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return value if any(d in fmt for d in _TIME_DIRECTIVES) else value.date()
    raise ValueError("no format matched")


def convert(kind: str, value: str, formats: tuple[str, ...], where: str) -> Any:
    """One non-empty source value -> the field's model value; `UnitRejected` names `where`."""
    if kind == STR:
        return value
    if kind in (DATE, DATETIME, WHEN):
        try:
            parsed = parse_date(value, formats)
        except ValueError:
            raise UnitRejected(
                f"{where}: not a date in any of the mapping's date_formats"
            ) from None
        if kind == DATE:
            return parsed.date() if isinstance(parsed, datetime) else parsed
        return as_datetime(parsed) if kind == DATETIME else parsed
    if kind == FLOAT:
        if _FLOAT.fullmatch(value) is None:
            raise UnitRejected(f"{where}: not a number")
        return float(value)
    choices = _CHOICES[kind]
    if value not in choices:
        raise UnitRejected(f"{where}: not one of {'|'.join(choices)} (add a values: map)")
    return value


def _code_of(values: dict[str, Any], prefix: str, flags: list[str]) -> Code | None:
    code = values.get(f"{prefix}.code")
    if code is None:
        return None
    system, known = normalise_system(values.get(f"{prefix}.system"))
    if not known and UNKNOWN_CODE_SYSTEM not in flags:
        flags.append(UNKNOWN_CODE_SYSTEM)
    return Code(system, code, values.get(f"{prefix}.display"), known)


def _patient(v: dict[str, Any], flags: list[str]) -> Record:
    address_keys = [k for k in v if k.startswith("address.")]
    address = (
        Address(**{k[len("address.") :]: v[k] for k in address_keys}) if address_keys else None
    )
    identity = Identity(
        **{k: v[k] for k in _IDENTITY if not k.startswith("address.") and k in v},
        address=address,
    )
    if identity.national_id is None and identity.national_id_system is not None:
        # A constant system (`{value: CN-RID}`) says nothing when the row has no id.
        identity = replace(identity, national_id_system=None)
    return Patient(
        v["source_id"],
        v.get("sex") or "unknown",
        v.get("birth_date"),
        v.get("deceased"),
        identity,
        tuple(flags),
    )


def _simple(
    cls: type, names: tuple[str, ...], codes: tuple[str, ...] = ()
) -> Callable[..., Record]:
    def build(v: dict[str, Any], flags: list[str]) -> Record:
        kwargs = {name: v[name] for name in names if v.get(name) is not None}
        for prefix in codes:
            code = _code_of(v, prefix, flags)
            if code is not None:
                kwargs[prefix] = code
        record: Record = cls(**kwargs, flags=tuple(flags))
        return record

    return build


_COMMON = ("source_id", "patient_id", "encounter_id")
BUILDERS: dict[str, Callable[[dict[str, Any], list[str]], Record]] = {
    "patient": _patient,
    "encounter": _simple(Encounter, ("source_id", "patient_id", "kind", "start", "end"), ("code",)),
    "condition": _simple(Condition, (*_COMMON, "onset", "recorded", "clinical_status"), ("code",)),
    "drug": _simple(Drug, (*_COMMON, "start", "end", "kind", "status", "dose"), ("code",)),
    "measurement": _simple(
        Measurement,
        (*_COMMON, "time", "value", "value_text", "unit", "ref_low", "ref_high"),
        ("code",),
    ),
    "observation": _simple(
        Observation, (*_COMMON, "time", "value", "value_text", "unit"), ("code", "value_code")
    ),
    "procedure": _simple(Procedure, (*_COMMON, "time"), ("code",)),
    "allergy": _simple(
        Allergy, ("source_id", "patient_id", "reaction", "criticality", "recorded"), ("code",)
    ),
    "note": _simple(Note, (*_COMMON, "text", "time", "language"), ("kind",)),
}
