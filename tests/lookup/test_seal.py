"""Sealed answers: only the asking node's agreement key opens them, bound to one request
between one responder and one requester."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from medspace.lookup.errors import SealError
from medspace.lookup.seal import Binding, Sealed, open_sealed, seal

BINDING = Binding("8c1f0d1e-4a57-4b4e-9a59-0c8e1f3d2b6a", "h1", "h2")


@given(st.binary(max_size=2048))
def test_sealed_answer_round_trips(plaintext: bytes) -> None:
    key = X25519PrivateKey.generate()
    sealed = Sealed.from_json(seal(plaintext, key.public_key(), BINDING).to_json())
    assert open_sealed(sealed, key, BINDING) == plaintext


def test_the_hub_cannot_read_a_summary_without_the_node_key() -> None:
    asking_node = X25519PrivateKey.generate()
    hub_guess = X25519PrivateKey.generate()
    sealed = seal(b'{"diagnoses": []}', asking_node.public_key(), BINDING)
    with pytest.raises(SealError, match="did not open"):
        open_sealed(sealed, hub_guess, BINDING)


@pytest.mark.parametrize(
    "other",
    [
        Binding(BINDING.request.replace("8c1f", "9c1f"), "h1", "h2"),  # another request
        Binding(BINDING.request, "h1", "h3"),  # relabelled as another hospital's answer
        Binding(BINDING.request, "h4", "h2"),  # meant for another asking node
    ],
)
def test_an_answer_does_not_open_under_another_binding(other: Binding) -> None:
    key = X25519PrivateKey.generate()
    sealed = seal(b"summary", key.public_key(), BINDING)
    with pytest.raises(SealError):
        open_sealed(sealed, key, other)


def test_an_altered_ciphertext_is_refused() -> None:
    key = X25519PrivateKey.generate()
    sealed = seal(b"summary", key.public_key(), BINDING)
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    with pytest.raises(SealError):
        open_sealed(Sealed(sealed.ephemeral, sealed.nonce, flipped), key, BINDING)


@pytest.mark.parametrize(
    "doc",
    [
        {},  # nothing
        {"v": 2, "epk": "", "nonce": "", "ct": ""},  # unknown version
        {"v": 1, "epk": "AA==", "nonce": "AA==", "ct": "AA=="},  # wrong sizes
        {"v": 1, "epk": "!!", "nonce": "AA==", "ct": "AA=="},  # not base64
    ],
)
def test_malformed_sealed_answers_are_refused(doc: dict[str, object]) -> None:
    with pytest.raises(SealError):
        Sealed.from_json(doc)
