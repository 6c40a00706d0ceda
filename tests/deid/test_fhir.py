"""De-identification of FHIR R4 resources: shared Synthea sample and hand-made Bundles."""

from __future__ import annotations

import base64
import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from medspace.deid.errors import FhirError, KeyMissingError
from medspace.deid.fhir import FhirDeidentifier, deidentify_fhir
from medspace.deid.keys import DeidKey


def _validate_r4(resource: dict[str, Any]) -> None:
    """Validate with fhir.resources' R4B models (R4B and R4 share these resources)."""
    rtype = resource["resourceType"]
    module = importlib.import_module(f"fhir.resources.R4B.{rtype.lower()}")
    getattr(module, rtype).model_validate(resource)


def _lines(path: Path, limit: int) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:limit]]


_NEEDS_FHIR_RESOURCES = "fhir.resources (bench extra) is the R4 validator"


def test_synthea_output_validates_as_r4(shared_data: Path, key: DeidKey) -> None:
    pytest.importorskip("fhir.resources", reason=_NEEDS_FHIR_RESOURCES)
    folder = shared_data / "fhir-r4-bulk-10-patients"
    deid = FhirDeidentifier("hipaa-safe-harbor", key)
    for name, limit in (("Patient", 13), ("DocumentReference", 40), ("Condition", 40),
                        ("MedicationRequest", 40)):  # fmt: skip
        for resource in _lines(folder / f"{name}.00.ndjson", limit):
            _validate_r4(resource)  # the sample itself is valid
            _validate_r4(deid.resource(resource))
    for pack in ("pipl", "gdpr-pseudonymise"):
        other = FhirDeidentifier(pack, key)
        for resource in _lines(folder / "Patient.00.ndjson", 13):
            _validate_r4(other.resource(resource))


def test_bundles_validate_as_r4(key: DeidKey) -> None:
    pytest.importorskip("fhir.resources", reason=_NEEDS_FHIR_RESOURCES)
    for pack in ("hipaa-safe-harbor", "pipl", "gdpr-pseudonymise"):
        _validate_r4(deidentify_fhir(_bundle(), pack, key))


def test_synthea_resources_lose_identifiers(shared_data: Path, key: DeidKey) -> None:
    folder = shared_data / "fhir-r4-bulk-10-patients"
    deid = FhirDeidentifier("hipaa-safe-harbor", key)
    patients = _lines(folder / "Patient.00.ndjson", 13)
    secrets: dict[str, list[str]] = {}
    for patient in patients:
        out = deid.resource(patient)
        assert "name" not in out and "telecom" not in out and "identifier" not in out
        assert out["id"] != patient["id"]
        for address in out.get("address", []):
            assert set(address) <= {"state", "postalCode", "country", "use", "period"}
            assert len(address.get("postalCode", "000")) == 3
        names = [n for name in patient["name"] for n in [name["family"], *name.get("given", [])]]
        secrets[patient["id"]] = [re.sub(r"[0-9]+$", "", n) for n in names]
    for resource in _lines(folder / "DocumentReference.00.ndjson", 60):
        out = deid.resource(resource)
        owner = resource["subject"]["reference"].split("/")[1]
        assert out["subject"]["reference"] == "Patient/" + deid.new_id(owner)
        note = base64.b64decode(out["content"][0]["attachment"]["data"]).decode("utf-8")
        for name in secrets[owner]:
            assert name not in note
    for resource in _lines(folder / "Condition.00.ndjson", 60):
        out = deid.resource(resource)
        assert re.fullmatch(r"[0-9]{4}", out["onsetDateTime"])  # dates keep only the year


def _bundle() -> dict[str, Any]:
    pid = "6f1e2d3c-4b5a-4978-8a1b-2c3d4e5f6a7b"
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{pid}",
                "resource": {
                    "resourceType": "Patient",
                    "id": pid,
                    "identifier": [{"system": "urn:cn:rid", "value": "11010519491231002X"}],
                    "name": [{"family": "王", "given": ["秀英"], "text": "王秀英"}],
                    "telecom": [{"system": "phone", "value": "13812345678"}],
                    "gender": "female",
                    "birthDate": "1961-04-02",
                    "address": [{"line": ["文三路259号"], "city": "杭州市", "state": "浙江省"}],
                    "text": {"status": "generated", "div": "<div>王秀英</div>"},
                },
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=x|1"},
            },
            {
                "fullUrl": "urn:uuid:0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "note"},
                    "subject": {"reference": f"urn:uuid:{pid}", "display": "王秀英"},
                    "effectiveDateTime": "2024-03-05T08:30:00+08:00",
                    "issued": "2024-03-05T09:00:00+08:00",
                    "valueString": "患者王秀英诉胸闷，电话13812345678。",
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }


def test_bundle_references_still_resolve_and_shifted_dates_keep_intervals(key: DeidKey) -> None:
    bundle = _bundle()
    out = deidentify_fhir(bundle, "pipl", key)
    patient = out["entry"][0]["resource"]
    observation = out["entry"][1]["resource"]
    assert out["entry"][0]["fullUrl"] == "urn:uuid:" + patient["id"]
    assert observation["subject"] == {"reference": out["entry"][0]["fullUrl"]}
    assert "ifNoneExist" not in out["entry"][0]["request"]
    assert "王秀英" not in json.dumps(out, ensure_ascii=False)
    assert "13812345678" not in json.dumps(out, ensure_ascii=False)
    assert patient["birthDate"] == "1961"  # pipl: birth date to the year
    assert observation["effectiveDateTime"] == "2024-03-05T08:30:00+08:00"  # pipl keeps care dates
    assert bundle["entry"][0]["resource"]["name"][0]["family"] == "王"  # input unchanged


def test_year_mode_drops_optional_instants(key: DeidKey) -> None:
    out = deidentify_fhir(_bundle(), "hipaa-safe-harbor", key)
    observation = out["entry"][1]["resource"]
    assert observation["effectiveDateTime"] == "2024"
    assert "issued" not in observation


def test_not_a_resource_is_refused(key: DeidKey) -> None:
    with pytest.raises(FhirError, match="resourceType"):
        deidentify_fhir({"name": "x"}, "hipaa-safe-harbor", key)


def test_fhir_needs_a_key() -> None:
    with pytest.raises(KeyMissingError):
        deidentify_fhir(_bundle(), "hipaa-safe-harbor")
