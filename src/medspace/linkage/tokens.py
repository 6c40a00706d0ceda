"""Linkage tokens: what a node computes from an identity, stores in its index, and sends in
a lookup request instead of the identity.

- `exact`: HMAC-SHA256 under the exact-token sub-key over "system|normalised national ID"
  (the system name separates a resident ID from an SSN with the same digits). Equal
  tokens mean the same ID under the same network key; without the key a token reveals
  nothing and cannot be brute-forced from the small ID space.
- `clk`: the Bloom-filter encoding of name, birth date and sex (`medspace.linkage.bloom`),
  for patients without an ID at one hospital or with a typo.
- `blocks`: keyed hashes (16 bytes) that group records likely to match, so a fuzzy probe
  reads a handful of candidates through an index instead of scanning: `birth` (the full
  birth date: survives any name typo), `cohort` (birth year, sex and the names' initials:
  survives a typo in month or day), `sound` (Soundex of alphabetic names, Han names as
  written: survives a wrong birth date).
- `phone`, `address`: keyed hashes (16 bytes) of the normalised phone number and of postal
  code with street line, under their own sub-key. They are not in the CLK, so a request
  without them scores as before; where both sides have one they are evidence for or against
  a fuzzy candidate (`medspace.linkage.evidence`): two people born the same day whose names
  differ by one character have different phones and addresses, a typo does not.

A `LinkageTokens` travels as JSON (`to_json` / `from_json`): hex and base64 strings plus
the key id and CLK parameters, so a node can tell that tokens were made under another key.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from medspace.linkage.bloom import DEFAULT_SCHEMA, ClkEncoder, ClkSchema, Features, features
from medspace.linkage.errors import LinkageInputError
from medspace.linkage.key import KeyedHash, LinkageKey
from medspace.linkage.normalise import (
    NationalId,
    NormalisedName,
    normalise_address,
    normalise_birth_date,
    normalise_name,
    normalise_national_id,
    normalise_phone,
    normalise_sex,
)
from medspace.model import Patient

BLOCK_KINDS = ("birth", "cohort", "sound")
EXACT_BYTES = 32
BLOCK_BYTES = 16
EVIDENCE_BYTES = 16
_MAX_CLK_BYTES = 1024
_MAX_LABEL = 100  # key id and CLK parameters are short; anything longer is not ours


@dataclass(frozen=True, slots=True)
class LinkageTokens:
    """The tokens of one identity. Fields are None where the identity lacks what they need
    (no national ID: no `exact`; no name and birth date: no `clk`; no phone: no `phone`;
    no street line: no `address`)."""

    key_id: str
    clk_schema: str
    exact: bytes | None
    clk: bytes | None
    blocks: Mapping[str, bytes]
    phone: bytes | None = None
    address: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: hex for the exact token, block keys, phone and address tokens,
        base64 for the CLK. Phone and address appear only when present, so a reader that
        predates them sees the same document as before."""
        doc: dict[str, Any] = {
            "v": 1,
            "key_id": self.key_id,
            "clk_schema": self.clk_schema,
            "exact": None if self.exact is None else self.exact.hex(),
            "clk": None if self.clk is None else base64.b64encode(self.clk).decode("ascii"),
            "blocks": {kind: value.hex() for kind, value in sorted(self.blocks.items())},
        }
        if self.phone is not None:
            doc["phone"] = self.phone.hex()
        if self.address is not None:
            doc["address"] = self.address.hex()
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> LinkageTokens:
        """Parse what `to_json` wrote (a missing phone or address means not given).
        Raises `LinkageInputError` for anything malformed."""
        try:
            if not isinstance(doc, dict) or doc.get("v") != 1:
                raise ValueError
            key_id, schema = doc["key_id"], doc["clk_schema"]
            if not isinstance(key_id, str) or not isinstance(schema, str):
                raise ValueError
            if len(key_id) > _MAX_LABEL or len(schema) > _MAX_LABEL:
                raise ValueError
            exact = None if doc["exact"] is None else bytes.fromhex(doc["exact"])
            clk = None if doc["clk"] is None else base64.b64decode(doc["clk"], validate=True)
            blocks = {str(kind): bytes.fromhex(value) for kind, value in doc["blocks"].items()}
            phone, address = (
                None if doc.get(name) is None else bytes.fromhex(doc[name])
                for name in ("phone", "address")
            )
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error):
            raise LinkageInputError(
                "the linkage tokens are malformed: send what LinkageTokens.to_json() writes"
            ) from None
        if exact is not None and len(exact) != EXACT_BYTES:
            raise LinkageInputError(f"an exact linkage token has {EXACT_BYTES} bytes")
        if clk is not None and not 0 < len(clk) <= _MAX_CLK_BYTES:
            raise LinkageInputError(f"a CLK has 1 to {_MAX_CLK_BYTES} bytes")
        if any(k not in BLOCK_KINDS or len(v) != BLOCK_BYTES for k, v in blocks.items()):
            raise LinkageInputError(
                f"block keys are {', '.join(BLOCK_KINDS)}, each of {BLOCK_BYTES} bytes"
            )
        if any(t is not None and len(t) != EVIDENCE_BYTES for t in (phone, address)):
            raise LinkageInputError(f"phone and address tokens have {EVIDENCE_BYTES} bytes")
        if exact is None and clk is None:
            raise LinkageInputError("linkage tokens need an exact token or a CLK")
        return cls(key_id, schema, exact, clk, blocks, phone, address)


@dataclass(frozen=True, slots=True)
class LinkageIdentity:
    """The normalised identity fields tokens are made from."""

    national_id: NationalId | None
    name: NormalisedName
    birth_date: date | None
    sex: str | None
    phone: str | None = None  # `normalise_phone`
    address: str | None = None  # `normalise_address`


_SOUNDEX = {
    **dict.fromkeys("bfpv", "1"),
    **dict.fromkeys("cgjkqsxz", "2"),
    **dict.fromkeys("dt", "3"),
    "l": "4",
    **dict.fromkeys("mn", "5"),
    "r": "6",
}


@lru_cache(maxsize=65536)
def soundex(word: str) -> str:
    """American Soundex of a lower-case word (letters outside a-z are ignored); "" if none."""
    letters = [ch for ch in word if "a" <= ch <= "z"]
    if not letters:
        return ""
    code, last = letters[0], _SOUNDEX.get(letters[0], "")
    for ch in letters[1:]:
        digit = _SOUNDEX.get(ch, "")
        if digit and digit != last:
            code += digit
            if len(code) == 4:
                break
        if ch not in "hw":  # h and w do not separate equal codes; vowels do
            last = digit
    return code.ljust(4, "0")


class TokenMaker:
    """Makes linkage tokens under one key and CLK schema (reuse it for many identities)."""

    def __init__(self, key: LinkageKey, schema: ClkSchema = DEFAULT_SCHEMA) -> None:
        self.key_id = key.key_id
        self.schema = schema
        self._tag = schema.tag
        self._exact_hash = KeyedHash(key.derive("exact"))
        self._block_hash = KeyedHash(key.derive("block"))
        self._evidence_hash = KeyedHash(key.derive("evidence"))
        self._encoder = ClkEncoder(key, schema)

    def exact_token(self, national_id: NationalId) -> bytes:
        """HMAC-SHA256 over "system|value" under the exact-token sub-key."""
        message = f"{national_id.system}|{national_id.value}".encode()
        return self._exact_hash(message)

    def evidence_token(self, field: str, normalised: str | None) -> bytes | None:
        """The keyed token of a normalised phone or address (None stays None)."""
        if normalised is None:
            return None
        return self._evidence_hash(f"{field}|{normalised}".encode())[:EVIDENCE_BYTES]

    def _block(self, text: str) -> bytes:
        return self._block_hash(text.encode("utf-8"))[:BLOCK_BYTES]

    def block_keys(self, identity: LinkageIdentity) -> dict[str, bytes]:
        """The block keys an identity has (see the module docstring)."""
        name, born, sex = identity.name, identity.birth_date, identity.sex
        blocks: dict[str, bytes] = {}
        if born is not None:
            blocks["birth"] = self._block(f"birth|{born.isoformat()}")
        if not name.is_empty:
            initials = "".join(sorted(w[0] for w in name.words)) + name.han[:1]
            if born is not None and sex is not None:
                blocks["cohort"] = self._block(f"cohort|{born.year}|{sex}|{initials}")
            sounds = "|".join(sorted(soundex(w) or w for w in name.words))
            blocks["sound"] = self._block(f"sound|{sounds}|{name.han}")
        return blocks

    def make(self, identities: Sequence[LinkageIdentity]) -> list[LinkageTokens]:
        """Tokens for many identities at once (the CLKs are encoded as one batch)."""
        fuzzy: list[Features] = []
        wanted: list[int] = []
        for number, identity in enumerate(identities):
            if _fuzzy_usable(identity):
                wanted.append(number)
                fuzzy.append(features(identity.name, identity.birth_date, identity.sex))
        clks: list[bytes | None] = [None] * len(identities)
        for number, clk in zip(wanted, self._encoder.encode(fuzzy), strict=True):
            clks[number] = clk
        return [
            LinkageTokens(
                key_id=self.key_id,
                clk_schema=self._tag,
                exact=None if i.national_id is None else self.exact_token(i.national_id),
                clk=clk,
                blocks=self.block_keys(i) if clk is not None else {},
                phone=self.evidence_token("phone", i.phone),
                address=self.evidence_token("address", i.address),
            )
            for i, clk in zip(identities, clks, strict=True)
        ]


def _fuzzy_usable(identity: LinkageIdentity) -> bool:
    # A CLK without both a name and a birth date matches too many people to be useful.
    return not identity.name.is_empty and identity.birth_date is not None


def identity_from_input(
    *,
    national_id: str | None = None,
    id_system: str | None = None,
    family_name: str | None = None,
    given_name: str | None = None,
    name: str | None = None,
    birth_date: date | str | None = None,
    sex: str | None = None,
    phone: str | None = None,
    postal_code: str | None = None,
    address_line: str | None = None,
) -> LinkageIdentity:
    """Normalise what a user typed. Raises `LinkageInputError` for a bad ID, date or sex,
    or when neither an ID nor a name with a birth date is given (a phone or an address
    alone is not enough: they only confirm or contradict a fuzzy candidate)."""
    nid = None
    if national_id is not None and national_id.strip():
        nid = normalise_national_id(national_id, id_system)
    identity = LinkageIdentity(
        national_id=nid,
        name=normalise_name(family_name, given_name, name),
        birth_date=None if birth_date in (None, "") else normalise_birth_date(birth_date),
        sex=normalise_sex(sex),
        phone=normalise_phone(phone),
        address=normalise_address(postal_code, address_line),
    )
    if nid is None and not _fuzzy_usable(identity):
        raise LinkageInputError(
            "give a national ID, or a name together with a date of birth (sex helps): "
            "with less, a lookup would match too many people"
        )
    return identity


def identity_of_patient(patient: Patient) -> LinkageIdentity:
    """The linkage identity of a stored patient. Never raises: an ID that fails its check
    (a source error) or a nonsense birth date is left out, as if the source had not sent it."""
    ident = patient.identity
    nid = None
    if ident.national_id:
        try:
            nid = normalise_national_id(ident.national_id, ident.national_id_system)
        except LinkageInputError:
            nid = None
    born = None
    if patient.birth_date is not None:
        try:
            born = normalise_birth_date(patient.birth_date)
        except LinkageInputError:
            born = None
    try:
        sex = normalise_sex(patient.sex)
    except LinkageInputError:
        sex = None
    where = ident.address
    return LinkageIdentity(
        nid,
        normalise_name(ident.family_name, ident.given_name),
        born,
        sex,
        phone=normalise_phone(ident.phone),
        address=None if where is None else normalise_address(where.postal_code, where.line),
    )


def tokens_for(
    key: LinkageKey,
    *,
    national_id: str | None = None,
    id_system: str | None = None,
    family_name: str | None = None,
    given_name: str | None = None,
    name: str | None = None,
    birth_date: date | str | None = None,
    sex: str | None = None,
    phone: str | None = None,
    postal_code: str | None = None,
    address_line: str | None = None,
    schema: ClkSchema = DEFAULT_SCHEMA,
) -> LinkageTokens:
    """Linkage tokens for an identity a clinician typed (`--id`, `--name`, `--dob`, `--sex`,
    optionally `--phone`).

    `name` is a full name in any order ("John Smith", "Smith, John", "张伟"); `family_name`
    and `given_name` may be given instead or too. Raises `LinkageInputError` for a wrong
    check digit, an impossible date, an unknown sex, or too little to link on.
    """
    identity = identity_from_input(
        national_id=national_id,
        id_system=id_system,
        family_name=family_name,
        given_name=given_name,
        name=name,
        birth_date=birth_date,
        sex=sex,
        phone=phone,
        postal_code=postal_code,
        address_line=address_line,
    )
    return TokenMaker(key, schema).make([identity])[0]


def tokens_for_patients(
    key: LinkageKey | TokenMaker, patients: Iterable[Patient]
) -> list[LinkageTokens | None]:
    """Tokens per stored patient, None for a patient with nothing to link on."""
    maker = key if isinstance(key, TokenMaker) else TokenMaker(key)
    identities = [identity_of_patient(p) for p in patients]
    made = maker.make(identities)
    return [t if t.exact is not None or t.clk is not None else None for t in made]
