"""De-identification of FHIR R4 resources (JSON as dicts); the output stays valid R4.

- people (Patient, RelatedPerson, Person, Practitioner): name, telecom, address,
  identifier, birth date follow the pack's identity and date rules; photo, contact and the
  narrative are removed; extensions that identify (mother's maiden name, geolocation) are
  removed and a birth place keeps only state and country;
- every resource: ids and references become keyed tokens (UUIDs stay UUIDs, so
  `urn:uuid:` references inside a Bundle still resolve); identifiers follow the `mrn`
  action; dates follow the pack (an `instant` cannot be a bare year, so optional instants
  are removed under "year"); displays of references to people are removed; free text
  (narratives, annotations, descriptions, text attachments) is scrubbed;
- Bundles: entry fullUrls, request urls and conditional-create queries are rewritten.

Empty arrays and objects left behind are removed (FHIR forbids them).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
from datetime import date
from typing import Any

from medspace.deid.errors import FhirError, KeyMissingError
from medspace.deid.fhir_people import PersonFields, known_values
from medspace.deid.keys import DeidKey, Keyring
from medspace.deid.packs import DEFAULT_PACK, RulePack, get_pack
from medspace.deid.scrub import Scrubber
from medspace.deid.timeshift import FHIR_DATE, DatePolicy

PEOPLE = frozenset({"Patient", "RelatedPerson", "Person", "Practitioner"})
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_REFERENCE = re.compile(
    r"^(?P<base>.*?)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?P<rest>/_history/.*)?$"
)
# Optional FHIR instants (removed under "year"); required ones get January 1st, midnight UTC.
_OPTIONAL_INSTANTS = frozenset({"issued", "lastUpdated", "timestamp"})
_REQUIRED_INSTANTS = frozenset({"recorded", "when"})
_FREE_TEXT = frozenset({"description", "comment", "valueString", "title", "comments", "note"})
_DROP_EXTENSIONS = ("mothersMaidenName", "geolocation", "patient-birthTime")
_NOT_DATES = frozenset({"id", "reference", "system", "code", "value", "url", "version", "display"})


class FhirDeidentifier:
    """De-identifies FHIR R4 resources and Bundles under one pack and key."""

    def __init__(
        self,
        pack: str | RulePack = DEFAULT_PACK,
        key: DeidKey | None = None,
        *,
        as_of: date | None = None,
    ) -> None:
        self.pack = get_pack(pack)
        if key is None:
            raise KeyMissingError(
                "FHIR de-identification makes keyed ids so references still resolve; pass the "
                "node's de-identification key (CLI: --key-file)"
            )
        self._keys = Keyring(key)
        self.dates = DatePolicy(self.pack, self._keys, as_of)
        self.scrubber = Scrubber(self.pack, key)
        self.fields = PersonFields(self.pack, self._keys)
        # Identifying values of each Patient seen (by original id), for scrubbing their notes.
        self._known: dict[str, list[tuple[str, str]]] = {}

    def learn(self, patient: dict[str, Any]) -> None:
        """Remember a Patient's identifying values, so that patient's notes lose them too."""
        if patient.get("resourceType") == "Patient" and isinstance(patient.get("id"), str):
            self._known[patient["id"]] = known_values(patient)

    # ---- ids and references -------------------------------------------------------------
    def new_id(self, old: str) -> str:
        """The keyed id for an original id; a UUID stays UUID-shaped."""
        token = self._keys.token(old, "fhir-id", hex_chars=32)
        if _UUID.fullmatch(old):
            return f"{token[:8]}-{token[8:12]}-{token[12:16]}-{token[16:20]}-{token[20:32]}"
        return token

    def new_reference(self, ref: str) -> str:
        """A reference string with its id replaced (relative, absolute or urn:uuid)."""
        if ref.startswith("urn:uuid:"):
            return "urn:uuid:" + self.new_id(ref[len("urn:uuid:") :])
        if ref.startswith("#"):
            return ref
        if "?" in ref:  # conditional reference "Practitioner?identifier=system|value"
            rtype, query = ref.split("?", 1)
            return (
                f"{rtype}?identifier=urn:medspace:deid:ref|{self._keys.token(query, 'fhir-query')}"
            )
        m = _REFERENCE.match(ref)
        if m is None:
            return "urn:uuid:" + self.new_id(ref)
        return f"{m['base']}{m['type']}/{self.new_id(m['id'])}"

    # ---- entry points -------------------------------------------------------------------
    def resource(self, resource: dict[str, Any], patient: str | None = None) -> dict[str, Any]:
        """A de-identified copy of one resource or Bundle. Raises `FhirError` for a JSON
        value that is not a FHIR resource."""
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise FhirError("not a FHIR resource: a JSON object with a 'resourceType' is expected")
        out = copy.deepcopy(resource)
        self.learn(out)
        if out["resourceType"] == "Bundle":
            self._bundle(out)
        else:
            self._one(out, patient or self._patient_of(out))
        _prune(out)
        return out

    def _bundle(self, bundle: dict[str, Any]) -> None:
        entries = [e for e in bundle.get("entry") or [] if isinstance(e, dict)]
        # Which patient each urn:uuid / id belongs to, so shifts agree across entries.
        patients: dict[str, str] = {}
        for entry in entries:
            res = entry.get("resource")
            if isinstance(res, dict) and res.get("resourceType") == "Patient" and res.get("id"):
                self.learn(res)
                patients[str(res["id"])] = str(res["id"])
                if isinstance(entry.get("fullUrl"), str):
                    patients[entry["fullUrl"]] = str(res["id"])
        lone = next(iter(set(patients.values()))) if len(set(patients.values())) == 1 else None
        for entry in entries:
            res = entry.get("resource")
            if isinstance(res, dict) and isinstance(res.get("resourceType"), str):
                ref = self._patient_ref(res)
                patient = patients.get(ref or "") or (ref.rsplit("/", 1)[-1] if ref else None)
                if res.get("resourceType") == "Bundle":
                    self._bundle(res)
                else:
                    self._one(res, patient or lone or "")
            if isinstance(entry.get("fullUrl"), str):
                entry["fullUrl"] = self.new_reference(entry["fullUrl"])
            request = entry.get("request")
            if isinstance(request, dict):
                if isinstance(request.get("url"), str):
                    url = request["url"].split("?", 1)[0]
                    request["url"] = url if "/" not in url else self.new_reference(url)
                for field in ("ifNoneExist", "ifMatch", "ifNoneMatch"):
                    request.pop(field, None)
            response = entry.get("response")
            if isinstance(response, dict) and isinstance(response.get("location"), str):
                response["location"] = self.new_reference(response["location"])
        if isinstance(bundle.get("id"), str):
            bundle["id"] = self.new_id(bundle["id"])
        self._dates_and_text(bundle, "", "Bundle", top=True)

    def _patient_ref(self, res: dict[str, Any]) -> str | None:
        if res.get("resourceType") == "Patient":
            return str(res.get("id", ""))
        for key in ("subject", "patient", "beneficiary", "individual"):
            ref = res.get(key)
            if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
                return str(ref["reference"])
        return None

    def _patient_of(self, res: dict[str, Any]) -> str:
        ref = self._patient_ref(res) or ""
        if ref.startswith("urn:uuid:"):
            return ref[len("urn:uuid:") :]
        return ref.rsplit("/", 1)[-1]

    # ---- one resource -------------------------------------------------------------------
    def _one(self, res: dict[str, Any], patient: str) -> None:
        rtype = res["resourceType"]
        res.pop("text", None)  # the narrative repeats names and addresses
        if isinstance(res.get("id"), str):
            res["id"] = self.new_id(res["id"])
        if rtype in PEOPLE:
            self._person(res, patient)
        elif "identifier" in res:
            res["identifier"] = self.fields.identifiers(res["identifier"], default="mrn")
        for contained in res.get("contained") or []:
            if isinstance(contained, dict) and isinstance(contained.get("resourceType"), str):
                self._one(contained, patient)
        self._walk(res, patient, rtype)

    def _person(self, res: dict[str, Any], patient: str) -> None:
        for key in ("photo", "contact", "link"):
            res.pop(key, None)
        if "name" in res:
            res["name"] = self.fields.names(res["name"])
        if "telecom" in res:
            res["telecom"] = [
                t for t in (self.fields.telecom(t) for t in res["telecom"] or []) if t
            ]
        if "address" in res:
            res["address"] = [
                a for a in (self.fields.address(a) for a in res["address"] or []) if a
            ]
        if "identifier" in res:
            res["identifier"] = self.fields.identifiers(res["identifier"], default="mrn")
        if isinstance(res.get("birthDate"), str):
            m = FHIR_DATE.fullmatch(res["birthDate"])
            born = date(int(m["y"]), int(m["m"] or 1), int(m["d"] or 1)) if m else None
            if born is not None and self.dates.is_ninety_plus(born):
                res.pop("birthDate")
            else:
                res["birthDate"] = self.dates.fhir(
                    res["birthDate"], patient, mode=self.pack.birth_date
                )
        extensions = []
        for ext in res.get("extension") or []:
            url = str(ext.get("url", "")) if isinstance(ext, dict) else ""
            if any(marker in url for marker in _DROP_EXTENSIONS):
                continue
            if isinstance(ext, dict) and isinstance(ext.get("valueAddress"), dict):
                place = {k: v for k, v in ext["valueAddress"].items() if k in ("state", "country")}
                if not place:
                    continue
                ext["valueAddress"] = place
            extensions.append(ext)
        if "extension" in res:
            res["extension"] = extensions

    # ---- generic walk: references, dates, free text --------------------------------------
    def _walk(self, node: Any, patient: str, rtype: str) -> None:
        if isinstance(node, list):
            for item in node:
                self._walk(item, patient, rtype)
            return
        if not isinstance(node, dict):
            return
        if isinstance(node.get("reference"), str):
            target = node["reference"]
            node["reference"] = self.new_reference(target)
            if _ref_type(target) in PEOPLE or target.startswith("urn:uuid:"):
                node.pop("display", None)
        if isinstance(node.get("contentType"), str) and ("data" in node or "url" in node):
            self._attachment(node, patient)
        self._dates_and_text(node, patient, rtype)
        for key, value in list(node.items()):
            if key in ("contained",):
                continue
            if isinstance(value, (dict, list)):
                self._walk(value, patient, rtype)

    def _dates_and_text(
        self, node: dict[str, Any], patient: str, rtype: str, *, top: bool = False
    ) -> None:
        for key, value in list(node.items()):
            if isinstance(value, str):
                if key in _NOT_DATES:
                    continue
                if key in _OPTIONAL_INSTANTS or (rtype == "DocumentReference" and key == "date"):
                    moved = (
                        self.dates.fhir_instant(value, patient) if FHIR_DATE.match(value) else value
                    )
                    if moved is None:
                        node.pop(key)
                    else:
                        node[key] = moved
                elif key in _REQUIRED_INSTANTS and FHIR_DATE.match(value):
                    moved = self.dates.fhir_instant(value, patient)
                    node[key] = moved if moved is not None else f"{value[:4]}-01-01T00:00:00Z"
                elif FHIR_DATE.fullmatch(value) and key != "birthDate":
                    node[key] = self.dates.fhir(value, patient)
                elif key in _FREE_TEXT or (key == "text" and not top):
                    node[key] = self._scrub(value, patient)
            elif key == "note" and isinstance(value, list):
                for annotation in value:
                    if isinstance(annotation, dict) and isinstance(annotation.get("text"), str):
                        annotation["text"] = self._scrub(annotation["text"], patient)
                        annotation.pop("authorString", None)

    def _scrub(self, text: str, patient: str) -> str:
        return self.scrubber.scrub(
            text, patient_id=patient, known=self._known.get(patient, ())
        ).text

    def _attachment(self, node: dict[str, Any], patient: str) -> None:
        node.pop("url", None)
        data = node.get("data")
        if not isinstance(data, str):
            return
        if not str(node.get("contentType", "")).startswith("text/"):
            node.pop("data")  # binary content cannot be scrubbed; it is not passed on
            node.pop("hash", None)
            node.pop("size", None)
            return
        try:
            text = base64.b64decode(data, validate=True).decode("utf-8", errors="replace")
        except ValueError:
            node.pop("data")
            return
        scrubbed = self._scrub(text, patient).encode("utf-8")
        node["data"] = base64.b64encode(scrubbed).decode("ascii")
        if "size" in node:
            node["size"] = len(scrubbed)
        if "hash" in node:
            node["hash"] = base64.b64encode(hashlib.sha1(scrubbed).digest()).decode(
                "ascii"
            )  # FHIR: SHA-1


def _ref_type(ref: str) -> str:
    """The resource type a reference points at ("" when it cannot be told)."""
    path = ref.split("?", 1)[0]
    if "/" in path:
        return path.split("/")[-2]
    return path if path[:1].isupper() else ""


def _prune(node: Any) -> bool:
    """Remove empty lists, objects and strings in place; True if `node` itself is empty."""
    if isinstance(node, dict):
        for key in list(node):
            if _prune(node[key]):
                del node[key]
        return not node
    if isinstance(node, list):
        node[:] = [x for x in node if not _prune(x)]
        return not node
    return node is None or node == ""


def deidentify_fhir(
    resource: dict[str, Any],
    pack: str | RulePack = DEFAULT_PACK,
    key: DeidKey | None = None,
    *,
    as_of: date | None = None,
) -> dict[str, Any]:
    """De-identify one FHIR R4 resource or Bundle (a dict); the input is not changed.

    Raises `FhirError` for JSON that is not a resource and `KeyMissingError` without a key.
    For many resources build one `FhirDeidentifier`.
    """
    return FhirDeidentifier(pack, key, as_of=as_of).resource(resource)
