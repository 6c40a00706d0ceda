"""Property tests: no input makes a parser raise, every unit yields exactly one outcome,
and generated valid resources/messages/rows keep their codes and values."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medspace.connectors import (
    ConnectorError,
    CsvMappingConnector,
    FhirBundleConnector,
    FhirNdjsonConnector,
    Hl7v2Connector,
    Parsed,
    Rejected,
)
from medspace.connectors.fhir import MAPPERS
from medspace.model import Measurement, Observation

# No deadline: these tests must not depend on machine speed. MEDSPACE_HYPOTHESIS_EXAMPLES
# raises the example count for a deeper run (the default keeps `make test` quick).
EXAMPLES = int(os.environ.get("MEDSPACE_HYPOTHESIS_EXAMPLES", "50"))
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
UNEXPECTED = "structure not understood"


@contextmanager
def file_with(data: bytes, name: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        yield path


def read_all(connector: Any, path: Path) -> list[Any]:
    """All outcomes; a file that starts like gzip but is not may only raise ConnectorError."""
    if path.read_bytes()[:2] == b"\x1f\x8b":
        try:
            return list(connector.read(path))
        except ConnectorError as exc:
            assert "damaged" in str(exc)
            return []
    return list(connector.read(path))


def assert_one_outcome_each(outcomes: list[Any], positions: list[str]) -> None:
    assert [o.position for o in outcomes] == positions
    for o in outcomes:
        if isinstance(o, Rejected):
            assert UNEXPECTED not in o.reason, o.reason


# --- FHIR ------------------------------------------------------------------------------

FIELDS = [
    "id", "subject", "patient", "code", "encounter", "context", "valueQuantity",
    "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger", "valueRange",
    "valueRatio", "valueDateTime", "component", "category", "effectiveDateTime",
    "effectivePeriod", "issued", "onsetDateTime", "onsetPeriod", "recordedDate",
    "clinicalStatus", "medicationCodeableConcept", "medicationReference", "dosageInstruction",
    "dosage", "authoredOn", "status", "gender", "birthDate", "deceasedDateTime",
    "deceasedBoolean", "name", "identifier", "telecom", "address", "class", "period", "type",
    "content", "date", "reaction", "criticality", "performedDateTime", "performedPeriod",
    "referenceRange", "contained", "language", "reference", "coding", "system", "display",
    "text", "value", "unit", "start", "end", "low", "high", "attachment", "data",
    "contentType", "manifestation", "use", "family", "given", "line", "city", "numerator",
    "denominator", "comparator", "doseAndRate", "doseQuantity", "resourceType",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(
        ["Patient/p1", "Encounter/e1", "urn:uuid:u1", "#m", "http://loinc.org", "2020-02-30",
         "2020-01-01T10:00:00Z", "male", "laboratory", "text/plain", "aGVsbG8=", "Medication"]
    ),
)  # fmt: skip
JSON_ISH = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(FIELDS), inner, max_size=4),
    ),
    max_leaves=12,
)
RESOURCES = st.builds(
    lambda rtype, body: {**body, "resourceType": rtype},
    st.sampled_from([*MAPPERS, "Claim", "Bundle"]),
    st.dictionaries(st.sampled_from(FIELDS), JSON_ISH, max_size=6),
)


@SETTINGS
@given(st.lists(st.binary(max_size=120).map(lambda b: b.replace(b"\n", b"")), max_size=12))
def test_ndjson_any_bytes_one_outcome_per_non_blank_line(lines: list[bytes]) -> None:
    data = b"\n".join(lines)
    if data[:2] == b"\x1f\x8b":
        lines[0] = b" " + lines[0]  # gzip magic is covered by test_damaged_gzip_is_a_file_error
        data = b"\n".join(lines)
    with file_with(data, "x.ndjson") as path:
        outcomes = list(FhirNdjsonConnector().read(path))
    expected = []
    for n, line in enumerate(lines, 1):
        unit = line[3:] if n == 1 and line.startswith(b"\xef\xbb\xbf") else line
        if unit.strip():
            expected.append(f"line {n}")
    assert_one_outcome_each(outcomes, expected)


@SETTINGS
@given(st.lists(st.one_of(RESOURCES, JSON_ISH), min_size=1, max_size=8))
def test_ndjson_resource_shaped_junk_never_crashes_the_mapping(docs: list[Any]) -> None:
    data = b"\n".join(json.dumps(d).encode() for d in docs) + b"\n"
    with file_with(data, "x.ndjson") as path:
        outcomes = list(FhirNdjsonConnector().read(path))
    assert_one_outcome_each(outcomes, [f"line {n}" for n in range(1, len(docs) + 1)])


ENTRIES = st.one_of(
    JSON_ISH,
    st.builds(
        lambda url, res: {"fullUrl": url, "resource": res},
        st.sampled_from(["urn:uuid:u1", "urn:uuid:u2", "http://x/fhir/Patient/p1", 7]),
        RESOURCES,
    ),
)


@SETTINGS
@given(st.lists(ENTRIES, max_size=8))
def test_bundle_entries_each_yield_one_outcome(entries: list[Any]) -> None:
    doc = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    with file_with(json.dumps(doc, indent=1).encode(), "b.json") as path:
        outcomes = list(FhirBundleConnector().read(path))
    assert_one_outcome_each(outcomes, [f"entry {n}" for n in range(1, len(entries) + 1)])


@SETTINGS
@given(st.binary(max_size=300))
def test_bundle_reader_never_raises_on_any_bytes(data: bytes) -> None:
    with file_with(data, "b.json") as path:
        read_all(FhirBundleConnector(), path)


KNOWN_SYSTEMS = {
    "http://loinc.org": "LOINC",
    "http://snomed.info/sct": "SNOMED CT",
    "http://hl7.org/fhir/sid/icd-10": "ICD-10",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
}
# NUL is excluded from values that must round-trip: a unit carrying it is quarantined
# (tests/data/bad/*nul_character*), which the bad-input table defends.
CODES = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=20,
)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
TIMESTAMPS = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


@SETTINGS
@given(st.sampled_from(sorted(KNOWN_SYSTEMS)), CODES, FINITE, TIMESTAMPS)
def test_fhir_lab_values_round_trip(system: str, code: str, value: float, when: datetime) -> None:
    resource = {
        "resourceType": "Observation",
        "id": "o1",
        "subject": {"reference": "Patient/p1"},
        "category": [{"coding": [{"code": "laboratory"}]}],
        "code": {"coding": [{"system": system, "code": code}]},
        "effectiveDateTime": when.isoformat().replace("+00:00", "Z"),
        "valueQuantity": {"value": value, "unit": "mg/dL"},
    }
    with file_with(json.dumps(resource).encode(), "o.ndjson") as path:
        (outcome,) = FhirNdjsonConnector().read(path)
    assert isinstance(outcome, Parsed)
    (m,) = outcome.records
    assert isinstance(m, Measurement)
    assert (m.code.system, m.code.code, m.value, m.unit) == (
        KNOWN_SYSTEMS[system],
        code,
        value,
        "mg/dL",
    )
    assert m.time == when


# --- HL7 v2 -----------------------------------------------------------------------------

LINE_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=40
)
_NOT_STARTS = ("MSH", "FHS", "BHS", "BTS", "FTS")
_FRAMING = " \t\x0b\x1c\x00"
OTHER_SEGMENTS = LINE_TEXT.filter(
    lambda s: bool(s.strip(_FRAMING)) and not s.strip(_FRAMING).startswith(_NOT_STARTS)
)
HEADERS = st.builds(
    lambda mtype, ctrl: f"MSH|^~\\&|A|B|C|D|20240101||{mtype}|{ctrl}|P|2.5",
    st.sampled_from(["ADT^A01", "ADT^A08", "ORU^R01", "ADT^A03", "", "x^y"]),
    LINE_TEXT.map(lambda s: s.replace("|", "")),
)


@SETTINGS
@given(st.text(max_size=300))
def test_hl7_any_text_never_raises(text: str) -> None:
    with file_with(text.encode("utf-8", "surrogatepass"), "m.hl7") as path:
        outcomes = read_all(Hl7v2Connector(), path)
    assert len({o.position for o in outcomes}) == len(outcomes)
    for o in outcomes:
        if isinstance(o, Rejected):
            assert UNEXPECTED not in o.reason, o.reason


@SETTINGS
@given(
    st.lists(st.tuples(HEADERS, st.lists(OTHER_SEGMENTS, max_size=5)), min_size=1, max_size=5),
    st.sampled_from(["\r", "\n", "\r\n"]),
)
def test_hl7_every_message_yields_one_outcome(
    messages: list[tuple[str, list[str]]], sep: str
) -> None:
    segments = [seg for header, rest in messages for seg in (header, *rest)]
    with file_with(sep.join(segments).encode(), "m.hl7") as path:
        outcomes = list(Hl7v2Connector().read(path))
    assert len(outcomes) == len(messages)
    for o in outcomes:
        if isinstance(o, Rejected):
            assert UNEXPECTED not in o.reason, o.reason


def hl7_escape(text: str, field: str, comp: str, rep: str, esc: str, sub: str) -> str:
    out = text.replace(esc, f"{esc}E{esc}")
    for char, code in ((field, "F"), (comp, "S"), (rep, "R"), (sub, "T")):
        out = out.replace(char, f"{esc}{code}{esc}")
    return out


DELIMITER_SETS = st.permutations(list("|^~\\&#@!$%*")).map(lambda p: p[:5])
# Values that must round-trip hold no NUL (such messages are quarantined, see above).
TEXT_VALUES = LINE_TEXT.filter(
    lambda s: s.strip(_FRAMING) == s and s not in ("", '""') and "\x00" not in s
)
HL7_CODES = TEXT_VALUES
DECIMALS = st.decimals(
    min_value=-1e6, max_value=1e6, places=3, allow_nan=False, allow_infinity=False
)


@SETTINGS
@given(DELIMITER_SETS, TEXT_VALUES, DECIMALS, st.sampled_from(["LN", "SCT", "I10"]), HL7_CODES)
def test_hl7_values_round_trip_under_any_delimiters(
    delims: list[str], text: str, number: Any, system: str, code: str
) -> None:
    f, c, r, e, s = delims
    esc = lambda v: hl7_escape(v, f, c, r, e, s)  # noqa: E731
    segments = [
        f"MSH{f}{c}{r}{e}{s}{f}A{f}B{f}C{f}D{f}20240101{f}{f}ORU{c}R01{f}CTRL{f}P{f}2.5",
        f"PID{f}1{f}{f}{esc(code)}{f}{f}NAME",
        f"OBX{f}1{f}NM{f}{esc(code)}{c}x{c}{system}{f}{f}{number}{f}u{f}{f}{f}{f}{f}F",
        f"OBX{f}2{f}TX{f}{esc(code)}{c}x{c}{system}{f}{f}{esc(text)}{f}{f}{f}{f}{f}{f}F",
    ]
    with file_with("\r".join(segments).encode(), "m.hl7") as path:
        (outcome,) = Hl7v2Connector().read(path)
    assert isinstance(outcome, Parsed), outcome
    patient, measurement, observation = outcome.records
    assert patient.source_id == code
    assert isinstance(measurement, Measurement) and isinstance(observation, Observation)
    assert measurement.code.code == code and measurement.code.known
    assert math.isclose(measurement.value or 0.0, float(number))
    assert observation.value_text == text


# --- CSV --------------------------------------------------------------------------------

CELLS = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=15
)
MAPPING = """version: 1
tables:
  n.csv:
    kind: note
    columns:
      source_id: ID
      patient_id: PAT
      text: TEXT
"""


@SETTINGS
@given(st.lists(st.tuples(CELLS, CELLS, CELLS), max_size=10))
def test_csv_rows_each_yield_one_outcome_and_values_round_trip(
    rows: list[tuple[str, str, str]],
) -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([("ID", "PAT", "TEXT"), *rows])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "mapping.yaml").write_text(MAPPING)
        (folder / "n.csv").write_bytes(buffer.getvalue().encode())
        outcomes = list(CsvMappingConnector().read(folder))
    assert [o.position for o in outcomes] == [f"row {n}" for n in range(2, len(rows) + 2)]
    for (sid, pat, text), outcome in zip(rows, outcomes, strict=True):
        if sid.strip() and pat.strip() and text.strip():
            assert isinstance(outcome, Parsed), outcome
            (note,) = outcome.records
            assert (note.source_id, note.patient_id, note.text) == (
                sid.strip(),
                pat.strip(),
                text.strip(),
            )
        else:
            assert isinstance(outcome, Rejected) and outcome.reason.endswith("required but empty")


@SETTINGS
@given(st.binary(max_size=300))
def test_csv_any_body_bytes_never_raise(body: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "mapping.yaml").write_text(MAPPING)
        (folder / "n.csv").write_bytes(b"ID,PAT,TEXT\n" + body)
        outcomes = list(CsvMappingConnector().read(folder))
    for o in outcomes:
        if isinstance(o, Rejected):
            assert UNEXPECTED not in o.reason, o.reason


def test_offsets_in_generated_timestamps_are_kept() -> None:
    # A companion example for the round trip above, with a non-UTC offset.
    when = datetime(2021, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=-5)))
    resource = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1"}]},
        "onsetDateTime": when.isoformat(),
    }
    with file_with(json.dumps(resource).encode(), "c.ndjson") as path:
        (outcome,) = FhirNdjsonConnector().read(path)
    assert (
        outcome.records[0].onset == when
        and outcome.records[0].onset.utcoffset() == when.utcoffset()
    )


def test_damaged_gzip_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "x.ndjson"
    path.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ConnectorError, match="damaged or truncated gzip"):
        list(FhirNdjsonConnector().read(path))


# --- No values in reasons -------------------------------------------------------------------

# A planted value: never part of any reason's fixed wording (reasons have no CJK text).
SECRETS = st.text(
    st.characters(whitelist_categories=("L", "Nd"), blacklist_characters="|^~\\&"),
    min_size=3,
    max_size=12,
).map(lambda s: f"秘{s}")


def fhir_with_secret(where: str, secret: str) -> dict[str, Any]:
    base: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "o1",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "1-8"}]},
    }
    if where == "resourceType":
        base["resourceType"] = secret
    elif where == "id":
        base["id"] = f"{secret} x"
    elif where == "subject":
        base["subject"] = {"reference": f"Group/{secret}"}
    elif where == "quantity":
        base["valueQuantity"] = {"value": secret}
    elif where == "date":
        base["effectiveDateTime"] = secret
    elif where == "json":
        return {"raw": f'{{"resourceType": "Observation", "id": "{secret}'}
    return base


@SETTINGS
@given(st.sampled_from(["resourceType", "id", "subject", "quantity", "date", "json"]), SECRETS)
def test_fhir_reasons_never_quote_the_offending_value(where: str, secret: str) -> None:
    doc = fhir_with_secret(where, secret)
    line = doc["raw"] if "raw" in doc else json.dumps(doc, ensure_ascii=False)
    with file_with(line.encode() + b"\n", "x.ndjson") as path:
        (outcome,) = FhirNdjsonConnector().read(path)
    assert isinstance(outcome, Rejected), outcome
    assert secret not in outcome.reason and secret[:2] not in outcome.reason
    assert secret.encode() in outcome.raw


@SETTINGS
@given(st.sampled_from(["type", "number", "timestamp", "segment"]), SECRETS)
def test_hl7_reasons_never_quote_the_offending_value(where: str, secret: str) -> None:
    msh_type = secret if where == "type" else "ORU^R01"
    obx5 = secret if where == "number" else "1.5"
    obx14 = secret if where == "timestamp" else ""
    segments = [
        f"MSH|^~\\&|A|B|C|D|20240101||{msh_type}|CTRL|P|2.5",
        "PID|1||P1",
        f"OBX|1|NM|1-8^x^LN||{obx5}|u|||||F|||{obx14}",
    ]
    if where == "segment":
        segments.append(secret)
    with file_with("\r".join(segments).encode(), "m.hl7") as path:
        (outcome,) = Hl7v2Connector().read(path)
    assert isinstance(outcome, Rejected), outcome
    assert secret not in outcome.reason and secret[:2] not in outcome.reason


@SETTINGS
@given(st.sampled_from(["date", "number", "sex"]), SECRETS)
def test_csv_reasons_never_quote_the_offending_value(where: str, secret: str) -> None:
    row = {"date": "2020-01-01", "number": "1.5", "sex": "male"}
    row[where] = secret
    mapping = (
        "version: 1\ntables:\n  m.csv:\n    kind: measurement\n    columns:\n"
        "      source_id: ID\n      patient_id: PAT\n      code.code: CODE\n"
        "      time: WHEN\n      value: VAL\n"
        "  p.csv:\n    kind: patient\n    columns:\n      source_id: ID\n      sex: SEX\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "mapping.yaml").write_text(mapping)
        (folder / "m.csv").write_text(
            f"ID,PAT,CODE,WHEN,VAL\nM1,P1,C,{row['date']},{row['number']}\n"
        )
        (folder / "p.csv").write_text(f"ID,SEX\nP1,{row['sex']}\n")
        outcomes = list(CsvMappingConnector().read(folder))
    rejected = [o for o in outcomes if isinstance(o, Rejected)]
    assert len(rejected) == 1
    assert secret not in rejected[0].reason and secret[:2] not in rejected[0].reason
