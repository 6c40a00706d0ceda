"""Entries: schema, patient-data guard, signing, parsing and signature checks."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medspace.ledger import (
    MAX_ENTRY_BYTES,
    Entry,
    EntryError,
    EntryType,
    KeyRing,
    SignatureError,
    SignedEntry,
    sign_entry,
    utc_timestamp,
    verify_entry,
)

from .conftest import Parties

BASE = {
    "type": "approval",
    "actor": "steward.h1",
    "time": "2025-03-01T10:00:00.000001Z",
    "node": "h1",
    "project": "diabetes-2025",
    "artefacts": {"agreement": "sha256:" + "ab" * 32},
    "details": {"purpose": "HRESCH", "decision": "allow"},
}


def make(**changes: object) -> Entry:
    fields = {**BASE, **changes}
    return Entry(**fields)  # type: ignore[arg-type]


def test_a_valid_entry_round_trips_through_its_signed_body() -> None:
    key = Ed25519PrivateKey.generate()
    ring = KeyRing()
    ring.add("steward.h1", key.public_key())
    signed = sign_entry(make(details={"nodes": ("h1", "h2"), "count": 3, "partial": False}), key)
    parsed = SignedEntry.from_bytes(signed.body)
    assert parsed == signed
    assert parsed.entry.details["nodes"] == ["h1", "h2"]
    assert verify_entry(parsed, ring).principal == "steward.h1"
    assert json.loads(signed.body)["entry"]["type"] == "approval"


def test_timestamps_are_rfc_3339_utc() -> None:
    stamp = utc_timestamp()
    assert stamp.endswith("Z")
    assert make(time=stamp).time == stamp


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"type": "gossip"}, "entry type is not one of"),  # closed set of types
        ({"actor": "Dr Smith"}, "actor must be a registered name"),  # no spaces
        ({"actor": ""}, "actor must be a registered name"),
        ({"project": "x" * 129}, "project must be a registered name"),  # bounded length
        ({"time": "2025-03-01 10:00:00"}, "RFC 3339 UTC"),  # not RFC 3339
        ({"time": "2025-03-01T10:00:00+08:00"}, "RFC 3339 UTC"),  # UTC only
        ({"time": "2025-02-30T10:00:00Z"}, "not a real date"),
        ({"artefacts": {"Agreement": "sha256:" + "ab" * 32}}, "artefact names"),
        ({"artefacts": {"agreement": "ab" * 32}}, "sha256"),  # digests only, no content
        ({"details": {"diagnosis": "E11"}}, "not in the ledger schema"),  # unknown field
        ({"details": {"reason": "patient asked twice"}}, "must be a code"),  # free text
        ({"details": {"reason": "H1-P000123"}}, "no run of 5 digits"),  # a record number
        ({"details": {"reason": "13800138000"}}, "must be a code"),  # a phone number
        ({"details": {"reason": "a@b.example"}}, "must be a code"),  # an email address
        ({"details": {"count": 1.5}}, "whole number"),
        ({"details": {"count": -1}}, "whole number"),
        ({"details": {"count": True}}, "whole number"),  # bool is not a count
        ({"details": {"task": "not-a-uuid"}}, "UUID"),
        ({"details": {"key_id": "AB" * 32}}, "lowercase hex"),
        ({"details": {"partial": "yes"}}, "true or false"),
        ({"details": {"nodes": ["h1"] * 65}}, "at most 64"),
    ],
)
def test_entries_outside_the_schema_are_refused(changes: dict[str, object], match: str) -> None:
    with pytest.raises(EntryError, match=match):
        make(**changes)


@pytest.mark.parametrize("value", ["Zhang San 13800138000", "110101199003077777", "H1-P000123"])
def test_refusals_never_quote_the_refused_value(value: str) -> None:
    with pytest.raises(EntryError) as caught:
        make(details={"reason": value})
    assert value not in str(caught.value)
    with pytest.raises(EntryError) as caught:
        make(details={value: "x"})
    assert value not in str(caught.value)


def test_from_json_needs_exactly_the_schema_fields() -> None:
    good = make().to_json()
    assert Entry.from_json(good) == make()
    with pytest.raises(EntryError, match="exactly"):
        Entry.from_json({**good, "note": "free text"})
    with pytest.raises(EntryError, match="exactly"):
        Entry.from_json({k: v for k, v in good.items() if k != "node"})


def test_bodies_over_64_kib_are_refused_before_parsing() -> None:
    body = b'{"entry":' + b" " * MAX_ENTRY_BYTES + b"}"
    with pytest.raises(EntryError, match="over the ledger limit of 65536"):
        SignedEntry.from_bytes(body)


def test_the_schema_keeps_the_largest_entry_far_below_the_limit() -> None:
    key = Ed25519PrivateKey.generate()
    big = make(
        artefacts={f"a{n:02d}" + "x" * 60: "sha256:" + "0" * 64 for n in range(64)},
        details={"nodes": ["n" + "x" * 63] * 64, "reason": "r" * 64},
    )
    assert len(sign_entry(big, key).body) < MAX_ENTRY_BYTES // 2


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda b: b.replace(b'{"entry":{"actor"', b'{"entry": {"actor"'), "not canonical"),
        (lambda b: b.replace(b'"sig":"', b'"sig":"!'), "not canonical|base64"),
        (lambda b: b.replace(b'"key":"', b'"kid":"'), "not canonical|exactly"),
        (lambda b: b"[]", "exactly: entry, key, sig"),
    ],
)
def test_malformed_bodies_are_refused(mutate, match: str) -> None:
    signed = sign_entry(make(), Ed25519PrivateKey.generate())
    with pytest.raises(EntryError, match=match):
        SignedEntry.from_bytes(mutate(signed.body))


def test_a_signature_by_an_unknown_key_is_refused(parties: Parties) -> None:
    signed = sign_entry(make(actor="h1"), Ed25519PrivateKey.generate())
    with pytest.raises(SignatureError, match="unknown key"):
        verify_entry(signed, parties.ring)


def test_an_entry_signed_by_another_party_than_its_actor_is_refused(parties: Parties) -> None:
    signed = sign_entry(make(actor="h1"), parties.signers["h2"])
    with pytest.raises(SignatureError, match="another principal than its actor"):
        verify_entry(signed, parties.ring)


def test_an_altered_entry_fails_its_signature(parties: Parties) -> None:
    signed = parties.entry(1)
    body = signed.body.replace(b'"count":1', b'"count":2')
    with pytest.raises(SignatureError, match="does not verify"):
        verify_entry(SignedEntry.from_bytes(body), parties.ring)
    sig = bytearray(signed.signature)
    sig[0] ^= 1
    with pytest.raises(SignatureError, match="does not verify"):
        verify_entry(SignedEntry(signed.entry, signed.key_id, bytes(sig)), parties.ring)


def test_the_signature_covers_a_domain_separated_message(parties: Parties) -> None:
    signed = parties.entry(1)
    assert signed.signed_message.startswith(b"medspace/ledger-entry/v1\n")
    # The raw canonical entry (without the context) is not what was signed.
    public = parties.signers["h1"].public_key()
    with pytest.raises(InvalidSignature):
        public.verify(signed.signature, signed.entry.canonical())
    assert base64.b64decode(json.loads(signed.body)["sig"]) == signed.signature


def test_entry_types_are_a_closed_string_set() -> None:
    assert EntryType("break_glass") is EntryType.BREAK_GLASS
    assert {t.value for t in EntryType} >= {
        "request",
        "approval",
        "denial",
        "task",
        "access",
        "compute",
        "result",
        "export",
        "lookup",
        "break_glass",
        "key_rotation",
    }
