"""Answer receipts: a responder's signature over exactly what it answered."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medspace.lookup.receipt import Receipt

KEY = Ed25519PrivateKey.generate()
MATCH = Receipt("req-1", "h1", "h2", "ok", "match", "ab" * 32)


def test_a_receipt_verifies_with_the_responders_key_only() -> None:
    signature = MATCH.sign(KEY)
    assert MATCH.verifies(KEY.public_key(), signature)
    assert not MATCH.verifies(Ed25519PrivateKey.generate().public_key(), signature)


@pytest.mark.parametrize(
    "change",
    [
        {"answer": "no-match", "sealed": None},  # a match turned into "nothing found"
        {"sealed": "cd" * 32},  # another (made-up) sealed answer
        {"request": "req-2"},  # replayed into another lookup
        {"responder": "h3"},  # relabelled as another hospital's
        {"requester": "h4"},  # sent on to another asking node
        {"status": "refused", "answer": None},
    ],
)
def test_any_change_to_what_was_answered_breaks_the_receipt(change: dict[str, object]) -> None:
    signature = MATCH.sign(KEY)
    assert not dataclasses.replace(MATCH, **change).verifies(KEY.public_key(), signature)  # type: ignore[arg-type]


@pytest.mark.parametrize("signature", [None, 7, "", "not base64!", "QUJD", "A" * 500])
def test_a_missing_or_malformed_signature_does_not_verify(signature: object) -> None:
    assert not MATCH.verifies(KEY.public_key(), signature)
