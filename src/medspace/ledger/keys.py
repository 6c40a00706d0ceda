"""Who may sign ledger entries: a key ring of (principal, Ed25519 public key) and the checks
that an entry's signature (alone, or its batch's) is valid and made by its own actor."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medspace.ledger.batch import BatchRef, batch_message, batch_root, member_hash
from medspace.ledger.entry import SignedEntry, entry_key_id
from medspace.ledger.errors import ProofError, SignatureError
from medspace.ledger.merkle import verify_inclusion


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


def _signer_of(signed: SignedEntry, keys: KeyResolver) -> SignerKey:
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
    return key


def _check_signature(key: SignerKey, signed: SignedEntry) -> None:
    batch = signed.batch
    message = signed.signed_message if batch is None else batch_message(batch.size, batch.root)
    try:
        key.public_key.verify(signed.signature, message)
    except InvalidSignature:
        raise SignatureError(
            f"entry signature by key {signed.key_id[:16]}… does not verify; the entry was "
            "altered or signed with another key"
        ) from None


def verify_entry(
    signed: SignedEntry, keys: KeyResolver, batch_proof: Sequence[bytes] | None = None
) -> SignerKey:
    """Check that `signed` carries a valid signature by a known key of its own actor.

    An entry signed in a batch needs `batch_proof`, the RFC 9162 inclusion proof of its
    leaf in the batch tree (`Log.batch_proof`, `batch.batch_proof`); a whole batch is
    checked more cheaply with `verify_entries`. Returns the signer's key. Raises
    `SignatureError` for an unknown key, a key of another principal, a missing or wrong
    batch proof, or a signature that does not verify.
    """
    key = _signer_of(signed, keys)
    batch = signed.batch
    if batch is not None:
        if batch_proof is None:
            raise SignatureError(
                "entry was signed in a batch; check it with its batch proof "
                "(Log.batch_proof) or check the whole batch with verify_entries"
            )
        try:
            leaf = member_hash(signed.entry.canonical())
            verify_inclusion(batch.index, batch.size, leaf, batch_proof, batch.root)
        except ProofError:
            raise SignatureError(
                "entry is not a member of the batch it names; it was altered or moved"
            ) from None
    _check_signature(key, signed)
    return key


def complete_batches(entries: Sequence[SignedEntry]) -> int:
    """How many leading `entries` end on a batch boundary: the rest are the first members
    of a batch that goes on after them (hold them back and append them with the others,
    e.g. when reading a log page by page)."""
    if not entries:
        return 0
    batch = entries[-1].batch
    if batch is None or batch.index == batch.size - 1:
        return len(entries)
    return max(0, len(entries) - batch.index - 1)


def verify_entries(entries: Sequence[SignedEntry], keys: KeyResolver) -> None:
    """Check every entry of an append, one signature per batch.

    Members of a batch must arrive complete, in order and next to each other, all with the
    same key, signature and root, and their canonical bytes must lead to that root. Raises
    `SignatureError` naming the first bad position (`batch item N: ...`).
    """
    position = 0
    while position < len(entries):
        signed = entries[position]
        batch = signed.batch
        try:
            if batch is None:
                verify_entry(signed, keys)
                position += 1
                continue
            _check_batch(entries[position : position + batch.size], batch, keys)
        except SignatureError as error:
            raise SignatureError(f"batch item {position}: {error}") from None
        position += batch.size


def _check_batch(members: Sequence[SignedEntry], batch: BatchRef, keys: KeyResolver) -> None:
    first = members[0]
    if batch.index != 0:
        raise SignatureError(
            "a batch starts in the middle: batch members must be appended complete and in order"
        )
    for offset, member in enumerate(members):
        ref = member.batch
        if (
            ref is None
            or ref.index != offset
            or ref.size != batch.size
            or ref.root != batch.root
            or member.key_id != first.key_id
            or member.signature != first.signature
        ):
            raise SignatureError(
                f"batch member {offset} does not belong to the batch begun before it; batch "
                "members must be appended complete and in order"
            )
    if len(members) != batch.size:
        raise SignatureError(
            f"the batch is cut short ({len(members)} of {batch.size} entries); append whole batches"
        )
    key = _signer_of(first, keys)
    for member in members[1:]:
        if member.entry.actor != key.principal:
            raise SignatureError(
                "a batch member names another actor than the signing key's; the acting party "
                "must sign its own entries"
            )
    if batch_root(member.entry.canonical() for member in members) != batch.root:
        raise SignatureError(
            "the batch's entries do not lead to its signed root; an entry was altered, "
            "moved or reordered"
        )
    _check_signature(key, first)
