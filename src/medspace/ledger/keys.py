"""Who may sign ledger entries: a key ring of (principal, Ed25519 public key) and the check
that an entry's signature is valid and made by its own actor."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medspace.ledger.entry import SignedEntry, entry_key_id
from medspace.ledger.errors import SignatureError


@dataclass(frozen=True)
class SignerKey:
    """A public key and the principal (user or node name) it belongs to."""

    principal: str
    public_key: Ed25519PublicKey

    @property
    def key_id(self) -> str:
        """The key's id as entries name it."""
        return entry_key_id(self.public_key)

    @property
    def raw(self) -> bytes:
        """The 32 raw public key bytes."""
        return self.public_key.public_bytes_raw()


class KeyResolver(Protocol):
    """Finds the key behind a key id (identity's key registry, or a `KeyRing`)."""

    def resolve(self, key_id: str) -> SignerKey | None:
        """The key with this id, or None when it is unknown."""
        ...


class KeyRing:
    """An in-memory `KeyResolver`. Holds every key that ever signed (retired keys too: old
    entries stay verifiable after a key rotation)."""

    def __init__(self, keys: Iterable[SignerKey] = ()) -> None:
        self._keys: dict[str, SignerKey] = {}
        for key in keys:
            self._keys[key.key_id] = key

    def add(self, principal: str, public_key: Ed25519PublicKey) -> str:
        """Register a key for `principal`; returns its key id."""
        key = SignerKey(principal, public_key)
        self._keys[key.key_id] = key
        return key.key_id

    def resolve(self, key_id: str) -> SignerKey | None:
        """The key with this id, or None."""
        return self._keys.get(key_id)

    def __iter__(self) -> Iterator[SignerKey]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)


def verify_entry(signed: SignedEntry, keys: KeyResolver) -> SignerKey:
    """Check that `signed` carries a valid signature by a known key of its own actor.

    Returns the signer's key. Raises `SignatureError` for an unknown key, a key of another
    principal, or a signature that does not verify.
    """
    key = keys.resolve(signed.key_id)
    if key is None:
        raise SignatureError(
            f"entry is signed by unknown key {signed.key_id[:16]}…; register the signer's "
            "public key before appending or auditing"
        )
    if key.principal != signed.entry.actor:
        raise SignatureError(
            "entry is signed by a key of another principal than its actor; the acting party "
            "must sign its own entries"
        )
    try:
        key.public_key.verify(signed.signature, signed.signed_message)
    except InvalidSignature:
        raise SignatureError(
            f"entry signature by key {signed.key_id[:16]}… does not verify; the entry was "
            "altered or signed with another key"
        ) from None
    return key
