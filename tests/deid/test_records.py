"""De-identification of model records under each rule pack."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from medspace.deid.errors import KeyMissingError
from medspace.deid.keys import DeidKey, Keyring
from medspace.deid.records import AGE_90_PLUS, RecordDeidentifier, deidentify_record, zip3
from medspace.model import Address, Code, Condition, Encounter, Identity, Note, Patient

AS_OF = date(2025, 6, 1)


def _patient(birth: date = date(1961, 4, 2)) -> Patient:
    return Patient(
        source_id="H1-P000123",
        sex="female",
        birth_date=birth,
        identity=Identity(
            family_name="王",
            given_name="秀英",
            national_id="11010519491231002X",
            national_id_system="CN-RID",
            mrn="MRN-778812",
            phone="13812345678",
            email="wxy@example.cn",
            address=Address(
                line="文三路259号",
                district="西湖区",
                city="杭州市",
                state="浙江省",
                postal_code="02139",
                country="CN",
            ),
        ),
    )


def test_hipaa_removes_identity_and_keeps_only_state_and_zip3(key: DeidKey) -> None:
    out = deidentify_record(_patient(), "hipaa-safe-harbor", key, as_of=AS_OF)
    assert isinstance(out, Patient)
    i = out.identity
    assert (i.family_name, i.given_name, i.national_id, i.mrn, i.phone, i.email) == (None,) * 6
    assert i.address == Address(state="浙江省", postal_code="021", country="CN")
    assert out.birth_date == date(1961, 1, 1)
    assert out.source_id != "H1-P000123" and "deid:hipaa-safe-harbor" in out.flags


def test_restricted_zip3_becomes_000() -> None:
    restricted = frozenset({"036", "059"})
    assert zip3("03601", restricted) == "000"
    assert zip3("02139-4307", restricted) == "021"
    assert zip3("310012", restricted) is None  # not a US ZIP: cannot be generalised safely


def test_birth_date_of_someone_over_89_is_removed(key: DeidKey) -> None:
    out = deidentify_record(_patient(date(1930, 1, 1)), "hipaa-safe-harbor", key, as_of=AS_OF)
    assert isinstance(out, Patient)
    assert out.birth_date is None and AGE_90_PLUS in out.flags


def test_pipl_keeps_province_and_city_and_tokenises_the_mrn(key: DeidKey) -> None:
    out = deidentify_record(_patient(), "pipl", key, as_of=AS_OF)
    assert isinstance(out, Patient)
    a = out.identity.address
    assert a is not None and (a.state, a.city, a.district, a.line) == (
        "浙江省",
        "杭州市",
        None,
        None,
    )
    assert out.identity.national_id is None
    assert out.identity.mrn not in (None, "MRN-778812")


def test_gdpr_pseudonyms_reverse_with_the_controllers_key(key: DeidKey) -> None:
    out = deidentify_record(_patient(), "gdpr-pseudonymise", key, as_of=AS_OF)
    assert isinstance(out, Patient)
    keys = Keyring(key)
    assert keys.reidentify(out.identity.national_id or "", "national_id") == "11010519491231002X"
    assert keys.reidentify(out.source_id, "patient") == "H1-P000123"
    assert out.birth_date == date(1961, 4, 2)  # dates are kept under this pack


def test_records_of_one_patient_still_join_after_deidentification(key: DeidKey) -> None:
    deid = RecordDeidentifier("hipaa-safe-harbor", key, as_of=AS_OF)
    patient = deid.record(_patient())
    encounter = deid.record(
        Encounter("H1-E1", "H1-P000123", "inpatient", start=datetime(2024, 3, 5, 8, 30))
    )
    condition = deid.record(
        Condition(
            "H1-C1",
            "H1-P000123",
            Code("ICD-10", "I10"),
            encounter_id="H1-E1",
            onset=date(2024, 3, 5),
        )
    )
    assert isinstance(encounter, Encounter) and isinstance(condition, Condition)
    assert encounter.patient_id == condition.patient_id == patient.source_id
    assert condition.encounter_id == encounter.source_id
    assert encounter.start == datetime(2024, 1, 1) and condition.onset == date(2024, 1, 1)


def test_notes_lose_the_patients_own_identifiers(key: DeidKey) -> None:
    deid = RecordDeidentifier("hipaa-safe-harbor", key, as_of=AS_OF)
    deid.record(_patient())
    note = deid.record(Note("H1-N1", "H1-P000123", "秀英今日复诊，MRN-778812，电话13812345678。"))
    assert isinstance(note, Note)
    assert "秀英" not in note.text and "778812" not in note.text and "138" not in note.text


def test_a_pack_that_makes_tokens_needs_a_key() -> None:
    with pytest.raises(KeyMissingError, match="de-identification key"):
        deidentify_record(_patient(), "hipaa-safe-harbor")
