"""De-identification of `medspace.model` records under a rule pack.

Identity fields follow the pack's `identity` actions; record ids become keyed tokens (or
reversible pseudonyms) the same way for a patient and every record that points at them, so
an extract still joins; dates follow `dates` / `birth_date`; note text and free-text values
are scrubbed. Flags say what was done (no values): "deid:<pack>", "deid:age-90-plus".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from datetime import date

from medspace.deid.errors import KeyMissingError
from medspace.deid.keys import DeidKey, Keyring
from medspace.deid.packs import DEFAULT_PACK, RulePack, get_pack
from medspace.deid.scrub import Scrubber
from medspace.deid.timeshift import DatePolicy
from medspace.model import Address, Identity, Note, Patient, Record

AGE_90_PLUS = "deid:age-90-plus"
_DATE_FIELDS = ("start", "end", "onset", "recorded", "time")
_TEXT_FIELDS = ("value_text",)


def zip3(postal_code: str, restricted: frozenset[str]) -> str | None:
    """HIPAA ZIP rule: the first three digits of a US ZIP, or "000" for a restricted area;
    None for a code that is not a US ZIP (it cannot be generalised safely)."""
    digits = postal_code.strip()
    if len(digits) in (5, 10) and digits[:5].isdigit():
        return "000" if digits[:3] in restricted else digits[:3]
    return None


class RecordDeidentifier:
    """De-identifies model records under one pack and key (reuse it for many records)."""

    def __init__(
        self,
        pack: str | RulePack = DEFAULT_PACK,
        key: DeidKey | None = None,
        *,
        as_of: date | None = None,
    ) -> None:
        self.pack = get_pack(pack)
        if key is None and self.pack.records_need_key():
            raise KeyMissingError(
                f"rule pack {self.pack.name} makes keyed tokens for record ids; pass the node's "
                "de-identification key (CLI: --key-file)"
            )
        self._keys = Keyring(key) if key is not None else None
        self.dates = DatePolicy(self.pack, self._keys, as_of)
        self.scrubber = Scrubber(self.pack, key)
        self._flag = f"deid:{self.pack.name}"
        # Identifying values of each patient seen, so their notes lose them too.
        self._known: dict[str, list[tuple[str, str]]] = {}

    def learn(self, patient: Patient) -> None:
        """Remember a patient's identifying values for scrubbing their notes."""
        i = patient.identity
        values: list[tuple[str, str]] = []
        for value in (i.family_name, i.given_name):
            if value:
                values.append((value, "PERSON"))
        if i.family_name and i.given_name:
            values += [
                (i.family_name + i.given_name, "PERSON"),
                (f"{i.given_name} {i.family_name}", "PERSON"),
            ]
        for value, kind in (
            (i.national_id, "ID"),
            (i.mrn, "ID"),
            (i.phone, "PHONE"),
            (i.email, "EMAIL"),
        ):
            if value:
                values.append((value, kind))
        if i.address is not None and i.address.line:
            values.append((i.address.line, "ADDRESS"))
        self._known[patient.source_id] = values

    def record_id(self, value: str | None, domain: str) -> str | None:
        """A record id under `record_ids` (token, pseudonym or keep)."""
        if value is None or self.pack.record_ids == "keep":
            return value
        assert self._keys is not None
        if self.pack.record_ids == "pseudonym":
            return self._keys.pseudonym(value, domain)
        return self._keys.token(value, domain, hex_chars=24)

    def field(self, name: str, value: str | None) -> str | None:
        """One identity field under its action."""
        if value is None:
            return None
        action = self.pack.identity.get(name, "remove")
        if action == "keep":
            return value
        if action == "remove":
            return None
        if action == "zip3":
            return zip3(value, self.pack.restricted_zip3)
        assert self._keys is not None
        if action == "pseudonym":
            return self._keys.pseudonym(value, name)
        return self._keys.token(value, name, hex_chars=24)

    def identity(self, identity: Identity) -> Identity:
        """The identity with each field under the pack's action."""
        address = None
        if identity.address is not None:
            a = identity.address
            address = Address(
                line=self.field("address.line", a.line),
                district=self.field("address.district", a.district),
                city=self.field("address.city", a.city),
                state=self.field("address.state", a.state),
                postal_code=self.field("address.postal_code", a.postal_code),
                country=self.field("address.country", a.country),
            )
            if not any(dataclasses.astuple(address)):
                address = None
        return Identity(
            family_name=self.field("family_name", identity.family_name),
            given_name=self.field("given_name", identity.given_name),
            national_id=self.field("national_id", identity.national_id),
            national_id_system=self.field("national_id_system", identity.national_id_system),
            mrn=self.field("mrn", identity.mrn),
            phone=self.field("phone", identity.phone),
            email=self.field("email", identity.email),
            address=address,
        )

    def patient(self, patient: Patient) -> Patient:
        """A de-identified patient."""
        flags = [*patient.flags, self._flag]
        birth = patient.birth_date
        if self.dates.is_ninety_plus(birth):
            birth = None
            flags.append(AGE_90_PLUS)
        else:
            birth = self.dates.value(birth, patient.source_id, mode=self.pack.birth_date)
        return dataclasses.replace(
            patient,
            source_id=self.record_id(patient.source_id, "patient") or patient.source_id,
            birth_date=birth,
            deceased=self.dates.value(patient.deceased, patient.source_id),
            identity=self.identity(patient.identity),
            flags=tuple(flags),
        )

    def record(self, record: Record) -> Record:
        """Any model record, de-identified."""
        if isinstance(record, Patient):
            self.learn(record)
            return self.patient(record)
        pid = record.patient_id
        changes: dict[str, object] = {
            "source_id": self.record_id(record.source_id, type(record).__name__.lower()),
            "patient_id": self.record_id(pid, "patient"),
            "flags": (*record.flags, self._flag),
        }
        if getattr(record, "encounter_id", None) is not None:
            changes["encounter_id"] = self.record_id(record.encounter_id, "encounter")  # type: ignore[union-attr]
        for name in _DATE_FIELDS:
            if hasattr(record, name):
                changes[name] = self.dates.value(getattr(record, name), pid)
        known = self._known.get(pid, ())
        if isinstance(record, Note):
            changes["text"] = self.scrubber.scrub(record.text, patient_id=pid, known=known).text
        for name in _TEXT_FIELDS:
            value = getattr(record, name, None)
            if value:
                changes[name] = self.scrubber.scrub(value, patient_id=pid, known=known).text
        return dataclasses.replace(record, **changes)  # type: ignore[arg-type]

    def records(self, records: Iterable[Record]) -> Iterator[Record]:
        """De-identify a stream of records."""
        for record in records:
            yield self.record(record)


def deidentify_record(
    record: Record,
    pack: str | RulePack = DEFAULT_PACK,
    key: DeidKey | None = None,
    *,
    as_of: date | None = None,
) -> Record:
    """De-identify one model record. For many records build one `RecordDeidentifier`.

    Raises `KeyMissingError` when the pack makes tokens, pseudonyms or shifted dates and no
    key is given.
    """
    return RecordDeidentifier(pack, key, as_of=as_of).record(record)
