"""Identity fields of FHIR people (Patient, RelatedPerson, Person, Practitioner) under a
rule pack: HumanName, ContactPoint, Address and Identifier, and the values that identify a
patient in their own notes."""

from __future__ import annotations

from typing import Any

from medspace.deid.keys import Keyring
from medspace.deid.packs import RulePack
from medspace.deid.records import zip3

#: Identifier type codes (HL7 v2 table 0203) that are national or personal numbers.
_NATIONAL_ID_TYPES = frozenset({"SS", "SB", "NI", "NNxxx", "DL", "PPN", "TAX", "CZ"})


def known_values(patient: dict[str, Any]) -> list[tuple[str, str]]:
    """(value, type) pairs that identify a Patient: names (also without Synthea's digit
    suffixes, "Larue605" -> "Larue"), identifier values, phones and e-mails, street lines."""
    values: list[tuple[str, str]] = []
    for name in patient.get("name") or []:
        if not isinstance(name, dict):
            continue
        for part in [name.get("family"), *(name.get("given") or [])]:
            if isinstance(part, str) and part:
                values.append((part, "PERSON"))
                bare = part.rstrip("0123456789")
                if bare != part and len(bare) >= 2:
                    values.append((bare, "PERSON"))
    for ident in patient.get("identifier") or []:
        if isinstance(ident, dict) and isinstance(ident.get("value"), str):
            values.append((ident["value"], "ID"))
    for telecom in patient.get("telecom") or []:
        if isinstance(telecom, dict) and isinstance(telecom.get("value"), str):
            kind = "EMAIL" if telecom.get("system") == "email" else "PHONE"
            values.append((telecom["value"], kind))
    for address in patient.get("address") or []:
        if isinstance(address, dict):
            for line in address.get("line") or []:
                if isinstance(line, str):
                    values.append((line, "ADDRESS"))
    return values


class PersonFields:
    """Applies a pack's identity actions to FHIR datatypes."""

    def __init__(self, pack: RulePack, keys: Keyring) -> None:
        self.pack = pack
        self._keys = keys

    def names(self, names: list[Any]) -> list[Any]:
        """HumanNames under the family/given actions (text and prefixes dropped)."""
        family_action = self.pack.identity.get("family_name", "remove")
        given_action = self.pack.identity.get("given_name", "remove")
        out = []
        for name in names or []:
            if not isinstance(name, dict):
                continue
            new: dict[str, Any] = {k: v for k, v in name.items() if k in ("use", "period")}
            family = name.get("family")
            given = " ".join(g for g in name.get("given") or [] if isinstance(g, str))
            if isinstance(family, str) and family_action != "remove":
                new["family"] = self.value(family, "family_name", family_action)
            if given and given_action != "remove":
                new["given"] = [self.value(given, "given_name", given_action)]
            if "family" in new or "given" in new:
                out.append(new)
        return out

    def value(self, value: str, field: str, action: str) -> str | None:
        """One value under an action (None: removed)."""
        if action == "keep":
            return value
        if action == "pseudonym":
            return self._keys.pseudonym(value, field)
        if action == "token":
            return self._keys.token(value, field, hex_chars=24)
        if action == "zip3":
            return zip3(value, self.pack.restricted_zip3)
        return None

    def telecom(self, telecom: Any) -> dict[str, Any] | None:
        """A ContactPoint under the phone/email action."""
        if not isinstance(telecom, dict) or not isinstance(telecom.get("value"), str):
            return None
        field = "email" if telecom.get("system") == "email" else "phone"
        value = self.value(telecom["value"], field, self.pack.identity.get(field, "remove"))
        if value is None:
            return None
        return {**telecom, "value": value}

    def address(self, address: Any) -> dict[str, Any] | None:
        """An Address with each part under its action (text and extensions dropped)."""
        if not isinstance(address, dict):
            return None
        out: dict[str, Any] = {k: v for k, v in address.items() if k in ("use", "type", "period")}
        parts = {
            "line": "address.line",
            "district": "address.district",
            "city": "address.city",
            "state": "address.state",
            "postalCode": "address.postal_code",
            "country": "address.country",
        }
        for key, field in parts.items():
            raw = address.get(key)
            action = self.pack.identity.get(field, "remove")
            if key == "line" and isinstance(raw, list):
                lines = [self.value(str(x), field, action) for x in raw]
                kept = [x for x in lines if x]
                if kept:
                    out["line"] = kept
            elif isinstance(raw, str):
                value = self.value(raw, field, action)
                if value:
                    out[key] = value
        return out if set(out) - {"use", "type", "period"} else None

    def identifiers(self, identifiers: Any, *, default: str) -> list[Any]:
        """Identifiers: national numbers under `national_id`, the rest under `default`."""
        out = []
        for ident in identifiers or []:
            if not isinstance(ident, dict) or not isinstance(ident.get("value"), str):
                continue
            codes = {
                c.get("code")
                for c in (ident.get("type") or {}).get("coding") or []
                if isinstance(c, dict)
            }
            system = str(ident.get("system", ""))
            national = (
                bool(codes & _NATIONAL_ID_TYPES)
                or "ssn" in system.lower()
                or "rid" in system.lower()
            )
            field = "national_id" if national else default
            action = self.pack.identity.get(field, "remove")
            value = self.value(ident["value"], field, action)
            if value is None:
                continue
            new = {k: v for k, v in ident.items() if k in ("use", "type", "period")}
            new["system"] = (
                ident.get("system", "") if action == "keep" else f"urn:medspace:deid:{field}"
            )
            new["value"] = value
            out.append(new)
        return out
