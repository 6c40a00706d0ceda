"""Rule packs as data, keys and pseudonyms, the NER plug-in point and the facade."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from medspace.deid import Deidentifier, Scrubber, Span
from medspace.deid.errors import KeyMissingError, PackError, PseudonymError, UnknownPackError
from medspace.deid.keys import DeidKey, Keyring
from medspace.deid.packs import get_pack, load_pack, pack_names, register_pack
from medspace.model import Identity, Note, Patient


def test_the_three_packs_are_registered_and_document_their_identifiers() -> None:
    assert {"hipaa-safe-harbor", "pipl", "gdpr-pseudonymise"} <= set(pack_names())
    hipaa = get_pack("hipaa-safe-harbor")
    assert [r.code for r in hipaa.identifiers] == list("ABCDEFGHIJKLMNOPQR")  # all 18
    assert "036" in hipaa.restricted_zip3 and hipaa.age_top_code == 90
    assert {r.code for r in get_pack("pipl").identifiers} >= {"姓名", "身份证号", "手机号", "住址"}
    assert get_pack("gdpr-pseudonymise").text_mode == "pseudonym"


def test_unknown_pack_lists_the_known_ones() -> None:
    with pytest.raises(UnknownPackError, match=r"choose one of .*hipaa-safe-harbor"):
        get_pack("hipaa")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name: x\n", "has no 'text'"),  # text section missing
        ("name: x\ntext: {entities: {NAME: replace}}\nidentity: {}\ndates: year\n", "unknown type"),
        ("name: x\ntext: {replace: blur}\nidentity: {}\ndates: year\n", "text.replace must be"),
        ("name: x\ntext: {}\nidentity: {phone: hash}\ndates: year\n", "identity.phone must be"),
        ("name: x\ntext: {}\nidentity: {}\ndates: sometimes\n", "dates must be one of"),
        ("- a list\n", "must hold a mapping"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_malformed_pack_files_name_the_problem(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(PackError, match=message):
        load_pack(path)


def test_a_site_pack_can_be_registered(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(
        "name: site-strict\ntext: {replace: tag, entities: {DATE: replace}}\n"
        "identity: {}\ndates: year\nrecord_ids: keep\n",
        encoding="utf-8",
    )
    register_pack(load_pack(path))
    assert Scrubber("site-strict").scrub("seen 2024-03-05").text == "seen [DATE]"


def test_key_files_round_trip_and_short_keys_are_refused(tmp_path: Path) -> None:
    key = DeidKey.generate()
    path = tmp_path / "k"
    key.write(path)
    assert DeidKey.from_file(path) == key
    assert "secret" not in repr(key) and key.secret.hex() not in repr(key)
    with pytest.raises(KeyMissingError, match="at least 32"):
        DeidKey(b"short")
    with pytest.raises(KeyMissingError, match="cannot be read"):
        DeidKey.from_file(tmp_path / "missing")


def test_pseudonyms_do_not_open_with_another_key_or_field(key: DeidKey) -> None:
    token = Keyring(key).pseudonym("11010519491231002X", "national_id")
    with pytest.raises(PseudonymError, match="does not open"):
        Keyring(DeidKey.generate()).reidentify(token, "national_id")
    with pytest.raises(PseudonymError, match="does not open"):
        Keyring(key).reidentify(token, "mrn")
    with pytest.raises(PseudonymError, match="must start"):
        Keyring(key).reidentify("abc", "mrn")


def test_date_offsets_are_keyed_per_patient_and_never_zero(key: DeidKey) -> None:
    keys = Keyring(key)
    offsets = {keys.shift_days(f"p{i}", 30) for i in range(300)}
    assert 0 not in offsets and offsets <= set(range(-30, 31))
    assert len(offsets) > 30
    assert keys.shift_days("p1", 30) == Keyring(key).shift_days("p1", 30)


class _WardNames:
    """A stand-in NER backend: finds one ward nickname the rules cannot know."""

    def find(self, text: str, language: str) -> list[Span]:
        start = text.find("Big Tom")
        return [Span(start, start + 7, "PERSON", 0.99, "test-ner")] if start >= 0 else []


def test_an_ner_backend_adds_its_finds() -> None:
    text = "Big Tom refused breakfast."
    assert Scrubber().scrub(text).text == text
    assert Scrubber(ner=_WardNames()).scrub(text).text == "[PERSON] refused breakfast."


def test_one_deidentifier_serves_notes_records_and_fhir(key: DeidKey) -> None:
    deid = Deidentifier("hipaa-safe-harbor", key, as_of=date(2025, 1, 1))
    assert deid.text("患者王秀英入院").text == "患者[PERSON]入院"
    patient = deid.record(
        Patient("P1", identity=Identity(family_name="Okafor", given_name="Ngozi"))
    )
    note = deid.record(Note("N1", "P1", "Ngozi Okafor called back."))
    assert isinstance(patient, Patient) and isinstance(note, Note)
    assert patient.identity.family_name is None and "Okafor" not in note.text
    assert (
        deid.resource({"resourceType": "Patient", "id": "P1", "birthDate": "1970-02-03"})[
            "birthDate"
        ]
        == "1970"
    )
