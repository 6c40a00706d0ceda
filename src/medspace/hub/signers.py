"""Who signs ledger entries at the hub, and the key resolver every verifier uses.

Users log in with passwords and hold no keys of their own, so the hub signs their entries
with a *custodial* Ed25519 key per user, derived from `users.secret` with HKDF-SHA256.
That keeps the ledger's rule (an entry is signed by a key of its own actor) and lets an
auditor tell users apart; it does not make the hub unable to sign for a user. Nodes sign
their entries with their own keys, which the hub never holds.
"""

from __future__ import annotations

import base64

import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from medspace.hub import tables
from medspace.ledger import EntrySigner, SignerKey, entry_key_id

HUB_PRINCIPAL = "hub"
_USER_KEY_INFO = b"medspace-user-entry-key/v1\n"


def user_entry_key(secret: bytes, user: str) -> Ed25519PrivateKey:
    """The custodial entry-signing key of `user` (deterministic for one hub secret)."""
    seed = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=_USER_KEY_INFO + user.encode()
    ).derive(secret)
    return Ed25519PrivateKey.from_private_bytes(seed)


class SignerDirectory:
    """Every entry-signing key the hub knows (a `medspace.ledger.KeyResolver`)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        tables.metadata.create_all(engine)
        self._cache: dict[str, SignerKey] = {}

    def add(self, principal: str, kind: str, public_key: Ed25519PublicKey) -> str:
        """Remember `public_key` as `principal`'s (idempotent); returns its key id."""
        key_id = entry_key_id(public_key)
        raw = base64.b64encode(public_key.public_bytes_raw()).decode("ascii")
        with self._engine.begin() as conn:
            row = conn.execute(
                sa.select(tables.signers.c.principal).where(tables.signers.c.key_id == key_id)
            ).one_or_none()
            if row is None:
                conn.execute(
                    tables.signers.insert().values(
                        key_id=key_id, principal=principal, kind=kind, public_key=raw
                    )
                )
        return key_id

    def resolve(self, key_id: str) -> SignerKey | None:
        """The key with this id, or None."""
        cached = self._cache.get(key_id)
        if cached is not None:
            return cached
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(tables.signers).where(tables.signers.c.key_id == key_id)
            ).one_or_none()
        if row is None:
            return None
        key = SignerKey(
            row.principal, Ed25519PublicKey.from_public_bytes(base64.b64decode(row.public_key))
        )
        self._cache[key_id] = key
        return key

    def all(self) -> list[dict[str, str]]:
        """Every key as JSON-ready rows (principal, kind, key_id, base64 public key)."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(tables.signers).order_by(tables.signers.c.key_id))
            return [
                {
                    "key_id": r.key_id,
                    "principal": r.principal,
                    "kind": r.kind,
                    "public_key": r.public_key,
                }
                for r in rows
            ]


class UserSigners:
    """Entry signers for users, derived on demand from the hub's user secret."""

    def __init__(self, secret: bytes, directory: SignerDirectory) -> None:
        self._secret = secret
        self._directory = directory
        self._signers: dict[str, EntrySigner] = {}

    def signer(self, user: str) -> EntrySigner:
        """The signer for `user` (its public key is registered on first use)."""
        signer = self._signers.get(user)
        if signer is None:
            key = user_entry_key(self._secret, user)
            self._directory.add(user, "user", key.public_key())
            signer = self._signers[user] = EntrySigner(key)
        return signer
