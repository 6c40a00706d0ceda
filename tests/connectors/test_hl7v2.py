"""HL7 v2: ADT and ORU mapping, delimiters, escapes, separators, charsets, stable ids."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from medspace.connectors import Hl7v2Connector, Parsed, Rejected, Skipped
from medspace.connectors.hl7v2 import reader as hl7_reader
from medspace.model import Allergy, Condition, Encounter, Measurement, Note, Observation, Patient

WriteHl7 = Callable[..., Path]

MSH = "MSH|^~\\&|HIS|H1|MEDSPACE|H1|20240101120000||{type}|{ctrl}|P|2.5.1"
PID = (
    "PID|1||110101199003071234^^^CHN^NNCHN~H1-P000123^^^H1^MR||WANG^XIAOMING^J||19900307|F|||"
    "1 Main St^Apt 2^Beijing^BJ^100000^CHN^H^^Chaoyang||010-5555^PRN^PH~^NET^Internet^w@example.cn"
)
PV1 = "PV1|1|I|W1^101^1||||||||||||||||V-0001|||||||||||||||||||||||||20240101100000|20240105090000"
ADT = [
    MSH.format(type="ADT^A01^ADT_A01", ctrl="CTRL-1"),
    "EVN|A01|20240101120000",
    PID,
    PV1,
    "DG1|1||E11.9^Type 2 diabetes mellitus^I10||20240101",
    "DG1|2||I10^Hypertension^I10",
    "AL1|1|DA|70618^Penicillin^RXNORM|SV|Hives~Rash|20230101",
    "OBX|1|NM|8302-2^Body height^LN||170.5|cm|||||F",
]


def read(path: Path) -> list[Any]:
    return list(Hl7v2Connector().read(path))


def parsed(write_hl7: WriteHl7, *segments: str, **kw: Any) -> tuple[Any, ...]:
    (outcome,) = read(write_hl7(*segments, **kw))
    assert isinstance(outcome, Parsed), outcome
    return outcome.records


def test_adt_a01_maps_patient_encounter_diagnoses_allergy_and_result(write_hl7: WriteHl7) -> None:
    patient, encounter, dm, htn, allergy, height = parsed(write_hl7, *ADT)
    assert isinstance(patient, Patient)
    assert patient.source_id == "H1-P000123"  # the MR identifier, not the first repetition
    assert (patient.sex, patient.birth_date) == ("female", date(1990, 3, 7))
    ident = patient.identity
    assert (ident.family_name, ident.given_name, ident.mrn) == ("WANG", "XIAOMING J", "H1-P000123")
    assert (ident.national_id, ident.national_id_system) == ("110101199003071234", "CN-RID")
    assert (ident.phone, ident.email) == ("010-5555", "w@example.cn")
    assert ident.address is not None
    assert (ident.address.line, ident.address.city, ident.address.district) == (
        "1 Main St, Apt 2",
        "Beijing",
        "Chaoyang",
    )
    assert isinstance(encounter, Encounter)
    assert (encounter.source_id, encounter.patient_id, encounter.kind) == (
        "V-0001",
        "H1-P000123",
        "inpatient",
    )
    assert (encounter.start, encounter.end) == (datetime(2024, 1, 1, 10), datetime(2024, 1, 5, 9))
    assert isinstance(dm, Condition) and isinstance(htn, Condition)
    assert (dm.source_id, dm.code.system, dm.code.code, dm.onset) == (
        "CTRL-1-DG11",
        "ICD-10",
        "E11.9",
        date(2024, 1, 1),
    )
    assert (htn.source_id, htn.encounter_id) == ("CTRL-1-DG12", "V-0001")
    assert isinstance(allergy, Allergy)
    assert (allergy.code.system, allergy.reaction, allergy.criticality) == (
        "RxNorm",
        "Hives; Rash",
        "high",
    )
    assert isinstance(height, Measurement)
    assert (height.source_id, height.code.system, height.value, height.unit) == (
        "CTRL-1-OBX1",
        "LOINC",
        170.5,
        "cm",
    )


@pytest.mark.parametrize("event", ["A01", "A04", "A08"])
def test_adt_events_that_carry_demographics_are_mapped(write_hl7: WriteHl7, event: str) -> None:
    records = parsed(write_hl7, MSH.format(type=f"ADT^{event}", ctrl="C"), PID)
    assert [type(r) for r in records] == [Patient]


@pytest.mark.parametrize("message_type", ["ADT^A03", "SIU^S12", "ORM^O01", "ACK"])
def test_other_message_types_are_skipped_by_type(write_hl7: WriteHl7, message_type: str) -> None:
    (outcome,) = read(write_hl7(MSH.format(type=message_type, ctrl="C"), PID))
    assert isinstance(outcome, Skipped) and outcome.unit_type == message_type


ORU = [
    MSH.format(type="ORU^R01", ctrl="LAB-7"),
    PID,
    "OBR|1|ORD1||57021-8^CBC^LN|||20240102080000",
    "NTE|1|L|Specimen slightly hemolysed",
    "OBX|1|NM|718-7^Hemoglobin^LN||13.5|g/dL|12.0-16.0|N|||F",
    "OBX|2|ST|1234^Local^99LOCAL^5778-6^Color of Urine^LN||Yellow||||||F|||20240102093000+0800",
    "NTE|1|L|Checked twice.",
    "NTE|2|L|Second line \\T\\ more",
    "OBX|3|CWE|600-7^Bacteria identified^LN||3092008^Staphylococcus aureus^SCT||||||F",
    "OBX|4|SN|2160-0^Creatinine^LN||<^0.5|mg/dL|<1.2",
    "OBX|5|SN|33762-6^NT-proBNP^LN||^125|pg/mL",
    "OBX|6|SN|5403-1^Titer^LN||^1^:^128",
    "OBR|2|ORD2||24323-8^CMP^LN|||20240102081500",
    "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|3.9-6.1",
]


def test_oru_r01_maps_results_notes_and_order_context(write_hl7: WriteHl7) -> None:
    records = parsed(write_hl7, *ORU)
    by_id = {r.source_id: r for r in records}
    assert list(by_id) == [
        "H1-P000123",
        "LAB-7-OBR1-NTE",
        "LAB-7-OBR1-OBX1",
        "LAB-7-OBR1-OBX2",
        "LAB-7-OBR1-OBX2-NTE",
        "LAB-7-OBR1-OBX3",
        "LAB-7-OBR1-OBX4",
        "LAB-7-OBR1-OBX5",
        "LAB-7-OBR1-OBX6",
        "LAB-7-OBR2-OBX1",
    ]
    hgb = by_id["LAB-7-OBR1-OBX1"]
    assert isinstance(hgb, Measurement)
    assert (hgb.value, hgb.unit, hgb.ref_low, hgb.ref_high) == (13.5, "g/dL", 12.0, 16.0)
    assert hgb.time == datetime(2024, 1, 2, 8)  # no OBX-14: the order's OBR-7
    color = by_id["LAB-7-OBR1-OBX2"]
    assert isinstance(color, Observation)
    # The local primary code is passed over for the LOINC alternate triplet.
    assert (color.code.system, color.code.code, color.value_text) == ("LOINC", "5778-6", "Yellow")
    assert color.time == datetime(2024, 1, 2, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    note = by_id["LAB-7-OBR1-OBX2-NTE"]
    assert isinstance(note, Note)
    assert note.text == "Checked twice.\nSecond line & more"
    assert (note.patient_id, note.time) == ("H1-P000123", color.time)
    bug = by_id["LAB-7-OBR1-OBX3"]
    assert isinstance(bug, Observation) and bug.value_code is not None
    assert (bug.value_code.system, bug.value_code.code, bug.value_code.display) == (
        "SNOMED CT",
        "3092008",
        "Staphylococcus aureus",
    )
    assert bug.value_text is None  # the words of a coded value are its display
    creat, bnp, titer = by_id["LAB-7-OBR1-OBX4"], by_id["LAB-7-OBR1-OBX5"], by_id["LAB-7-OBR1-OBX6"]
    assert (creat.value, creat.value_text, creat.ref_high) == (None, "<0.5", 1.2)
    assert (bnp.value, bnp.value_text) == (125.0, None)
    assert (titer.value, titer.value_text) == (None, "1:128")
    assert by_id["LAB-7-OBR2-OBX1"].time == datetime(2024, 1, 2, 8, 15)


def test_reading_twice_gives_identical_records(write_hl7: WriteHl7) -> None:
    path = write_hl7(*ORU)
    assert read(path) == read(path)


def test_duplicate_set_ids_still_give_unique_ids(write_hl7: WriteHl7) -> None:
    records = parsed(write_hl7, *ADT[:3], "DG1|1||E11.9^^I10", "DG1|1||I10^^I10", "DG1|||J45^^I10")
    assert [r.source_id for r in records[1:]] == ["CTRL-1-DG11", "CTRL-1-DG11.2", "CTRL-1-DG13"]


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n", "\n\r\n"], ids=["cr", "lf", "crlf", "mixed"])
def test_any_segment_separator_gives_the_same_outcome(write_hl7: WriteHl7, sep: str) -> None:
    baseline = [o.records for o in read(write_hl7(*ADT, *ORU, name="base.hl7"))]
    assert [o.records for o in read(write_hl7(*ADT, *ORU, sep=sep))] == baseline
    assert len(baseline) == 2


def test_segments_split_across_read_chunks(
    write_hl7: WriteHl7, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_hl7(*ADT, *ORU, sep="\r\n")
    baseline = read(path)
    monkeypatch.setattr(hl7_reader, "_CHUNK", 7)
    assert read(path) == baseline


def test_mllp_framing_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "mllp.hl7"
    path.write_bytes(b"\x0b" + "\r".join(ADT).encode() + b"\r\x1c\r")
    (outcome,) = read(path)
    assert isinstance(outcome, Parsed) and len(outcome.records) == 6


def test_content_before_the_first_msh_is_one_rejected_unit(write_hl7: WriteHl7) -> None:
    outcomes = read(write_hl7("garbage line", "PID|1||X", *ADT))
    assert [type(o) for o in outcomes] == [Rejected, Parsed]
    assert outcomes[0].reason.startswith("no MSH segment")
    assert outcomes[0].raw == b"garbage line\rPID|1||X"
    assert outcomes[1].position == "message 2 (line 3)"


def test_a_bad_message_does_not_affect_its_neighbours(write_hl7: WriteHl7) -> None:
    bad = [MSH.format(type="ORU^R01", ctrl="BAD"), PID, "OBX|1|NM|718-7^Hgb^LN||abc"]
    outcomes = read(write_hl7(*ADT, *bad, *ORU))
    assert [type(o) for o in outcomes] == [Parsed, Rejected, Parsed]
    assert outcomes[1].raw == "\r".join(bad).encode()


def test_batch_envelope_segments_are_not_units(write_hl7: WriteHl7) -> None:
    outcomes = read(write_hl7("FHS|^~\\&|HIS", "BHS|^~\\&|HIS", *ADT, "BTS|1", "FTS|1"))
    assert [type(o) for o in outcomes] == [Parsed]


@pytest.mark.parametrize(
    ("segments", "why"),
    [
        ([MSH.format(type="ADT^A01", ctrl=""), PID], r"^MSH-10: message control id missing"),
        ([MSH.format(type="", ctrl="C"), PID], r"^MSH-9: message type missing"),
        (
            [MSH.format(type="adt^a01", ctrl="C"), PID],
            r"^MSH-9: message type missing or not of the form",
        ),
        (["MSH"], r"^MSH-1: field separator missing$"),
        (["MSHA^~\\&"], r"^MSH-1: field separator must be a punctuation character$"),
        (["MSH||"], r"^MSH-2: encoding characters missing$"),
        (["MSH|^^\\&|X"], r"^MSH-2: encoding characters must be distinct punctuation$"),
        ([MSH.format(type="ADT^A01", ctrl="C")], r"^PID segment missing"),
        (
            [MSH.format(type="ADT^A01", ctrl="C"), "PID|1||"],
            r"^PID-3 \(segment 2\): patient identifier list is empty$",
        ),
        (
            [MSH.format(type="ADT^A01", ctrl="C"), PID, "DG1|1||^no code"],
            r"^DG1-3 \(segment 3\): diagnosis code missing$",
        ),
        (
            [MSH.format(type="ADT^A01", ctrl="C"), PID, "AL1|1|DA|"],
            r"^AL1-3 \(segment 3\): allergen code missing$",
        ),
        (
            [MSH.format(type="ADT^A01", ctrl="C"), PID, "PV1|1|I" + "|" * 42 + "20240230"],
            r"^PV1-44 \(segment 3\): not a valid HL7 timestamp",
        ),
        (
            [MSH.format(type="ORU^R01", ctrl="C"), PID, "OBX|1|NM|||1"],
            r"^OBX-3 \(segment 3\): observation identifier missing$",
        ),
        (
            [MSH.format(type="ORU^R01", ctrl="C"), PID, "OBX|1|SN|1^x^LN||abc^1"],
            r"^OBX-5 \(segment 3\): not a structured numeric",
        ),
        (
            [MSH.format(type="ORU^R01", ctrl="C"), PID, "OBR|1|||x^y^LN|||20241301"],
            r"^OBR-7 \(segment 3\): not a valid HL7 timestamp",
        ),
    ],
)
def test_malformed_messages_are_rejected_with_the_field(
    write_hl7: WriteHl7, segments: list[str], why: str
) -> None:
    (outcome,) = read(write_hl7(*segments))
    assert isinstance(outcome, Rejected), outcome
    assert re.search(why, outcome.reason), outcome.reason


def test_pv1_44_partial_timestamp_is_flagged_not_rejected(write_hl7: WriteHl7) -> None:
    _, encounter = parsed(
        write_hl7, MSH.format(type="ADT^A01", ctrl="C"), PID, "PV1|1|O" + "|" * 42 + "2024"
    )
    assert (encounter.start, encounter.flags, encounter.source_id) == (
        datetime(2024, 1, 1),
        ("partial-date",),
        "C-PV1",
    )


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f", "a|b^c~d\\e&f"),
        ("line one\\.br\\line two", "line one\nline two"),
        ("\\H\\bold\\N\\ text", "bold text"),
        ("caf\\XC3A9\\", "café"),
        ("unknown \\Q\\ kept", "unknown \\Q\\ kept"),
    ],
)
def test_escape_sequences_are_resolved(write_hl7: WriteHl7, raw: str, text: str) -> None:
    _, obs = parsed(
        write_hl7, MSH.format(type="ORU^R01", ctrl="C"), PID, f"OBX|1|FT|8251-1^Note^LN||{raw}"
    )
    assert obs.value_text == text


def test_placeholder_demographics_keep_the_message_and_flag_the_patient(
    write_hl7: WriteHl7,
) -> None:
    (patient,) = parsed(
        write_hl7, MSH.format(type="ADT^A08", ctrl="C"), "PID|||MRN||LAST^FIRST||DOB|SEX"
    )
    assert (patient.birth_date, patient.sex) == (None, "unknown")
    assert patient.flags == ("invalid-birth-date", "invalid-sex")


def test_msh_18_charset_decodes_the_message(write_hl7: WriteHl7) -> None:
    msh = MSH.format(type="ADT^A01", ctrl="C") + "||||||8859/1"
    (patient,) = parsed(write_hl7, msh, "PID|||P1||MÜLLER^JÖRG", encoding="latin-1")
    assert patient.identity.family_name == "MÜLLER"
    msh = MSH.format(type="ADT^A01", ctrl="C") + "||||||GB 18030-2000"
    (patient,) = parsed(write_hl7, msh, "PID|||P1||王^小明", encoding="gb18030")
    assert patient.identity.family_name == "王"


def test_undeclared_non_utf8_bytes_are_rejected_with_advice(write_hl7: WriteHl7) -> None:
    (outcome,) = read(
        write_hl7(MSH.format(type="ADT^A01", ctrl="C"), "PID|||P1||MÜLLER", encoding="latin-1")
    )
    assert isinstance(outcome, Rejected)
    assert outcome.reason.startswith(
        "message is not valid UTF-8 and MSH-18 names no other character set"
    )
    (outcome,) = read(write_hl7(MSH.format(type="ADT^A01", ctrl="C") + "||||||EBCDIC", "PID|||P1"))
    assert isinstance(outcome, Rejected) and outcome.reason.startswith(
        "MSH-18: character set not supported"
    )


def test_segments_before_pid_are_rejected(write_hl7: WriteHl7) -> None:
    (outcome,) = read(write_hl7(MSH.format(type="ORU^R01", ctrl="C"), "OBX|1|NM|1^x^LN||1", PID))
    assert isinstance(outcome, Rejected)
    assert outcome.reason == "OBX (segment 2): comes before PID (no patient)"


def test_an_empty_file_yields_nothing(write_hl7: WriteHl7) -> None:
    assert read(write_hl7("", sep="\r\n")) == []


def test_identifiers_sent_in_the_message_become_the_record_ids(write_hl7: WriteHl7) -> None:
    pid = "PID|1||24892900^^^H1^MR~H1-P000001^^^H1^PI||WANG^XIAOMING"
    adt = parsed(
        write_hl7,
        MSH.format(type="ADT^A01", ctrl="A-1"),
        pid,
        "PV1|1|O" + "|" * 17 + "H1-P000001-E1",
        "DG1|1||I21.9^AMI^I10||20240426|F" + "|" * 14 + "H1-P000001-C1",
        "AL1|1|DA|70618^Penicillin^RXNORM|SV",
        name="adt.hl7",
    )
    patient, encounter, condition, allergy = adt
    # PI (the internal record key) is the patient id; MR is the mrn.
    assert (patient.source_id, patient.identity.mrn) == ("H1-P000001", "24892900")
    assert (encounter.source_id, condition.source_id) == ("H1-P000001-E1", "H1-P000001-C1")
    # Every ADT resends the allergy list: ids key on the patient, not the message.
    assert allergy.source_id == "H1-P000001-A1"
    oru = parsed(
        write_hl7,
        MSH.format(type="ORU^R01", ctrl="O-1"),
        pid,
        "OBR|1||H1-P000001-L1|LAB^Lab^L|||20240426",
        "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L",
        "NTE|1|L|fasting",
        "OBX|2|NM|718-7^Hgb^LN||13.5|g/dL" + "|" * 15 + "RESULT-77",
        name="oru.hl7",
    )
    # OBR-3 (filler order number) + OBX-1, or OBX-21 when sent.
    assert [r.source_id for r in oru[1:]] == ["H1-P000001-L1-1", "H1-P000001-L1-1-NTE", "RESULT-77"]


@pytest.mark.parametrize(
    "address",
    [
        "南宁路99号^^上海市^上海市^200030^CN^H^徐汇区",
        "南宁路99号^^上海市^上海市^200030^CN^H^^徐汇区",
    ],
)
def test_district_is_xad_8_or_else_xad_9(write_hl7: WriteHl7, address: str) -> None:
    (patient,) = parsed(
        write_hl7, MSH.format(type="ADT^A08", ctrl="C"), f"PID|1||P1||||||||{address}"
    )
    assert patient.identity.address.district == "徐汇区"
