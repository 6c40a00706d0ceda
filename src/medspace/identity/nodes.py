"""The node registry (node name -> Ed25519 public key) and challenge-response login.

A node connects outbound to the hub and proves it holds its registered key:

1. the hub issues a challenge: `medspace-node-challenge-v1`, the hub's origin, the issue
   time and 32 random bytes, one per line; the hub remembers it (single use);
2. the node checks the origin is the hub it meant to reach and signs
   `medspace-node-auth-v1\\n || challenge` with its Ed25519 key (RFC 8032);
3. the hub consumes the challenge (first answer wins, whatever the outcome), refuses it
   when expired, unknown or reused, and checks the signature against the registered key.

State lives in SQL (any SQLAlchemy engine) so several hub workers share it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.engine import Engine

from medspace.errors import NotFoundError
from medspace.identity._time import as_utc, utc_now
from medspace.identity.errors import AuthError, IdentityError, NodeKeyError
from medspace.identity.keys import fingerprint, parse_public_key, public_key_text
from medspace.identity.roles import check_node_name

CHALLENGE_TTL = timedelta(seconds=60)
_MAGIC = "medspace-node-challenge-v1"
_SIGN_CONTEXT = b"medspace-node-auth-v1\n"
_NONCE_BYTES = 32
_MAX_CHALLENGE = 1024

metadata = sa.MetaData()
nodes_table = sa.Table(
    "identity_nodes",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("public_key", sa.String(64), nullable=False, unique=True),
    sa.Column("registered_at", sa.BigInteger, nullable=False),
)
challenges_table = sa.Table(
    "identity_challenges",
    metadata,
    sa.Column("nonce", sa.String(2 * _NONCE_BYTES), primary_key=True),
    sa.Column("issued_at", sa.BigInteger, nullable=False, index=True),
    sa.Column("used_at", sa.BigInteger, nullable=True),
)

_KEY_TEXTS = sa.select(nodes_table.c.name, nodes_table.c.public_key)


class UnknownNodeError(IdentityError, NotFoundError):
    """No node is registered under that name."""


@dataclass(frozen=True, slots=True)
class RegisteredNode:
    """A registry entry: the node, its public key (base64) and that key's fingerprint."""

    name: str
    public_key: str
    fingerprint: str
    registered_at: datetime


@dataclass(frozen=True, slots=True)
class Challenge:
    """A parsed challenge: which hub issued it, when, and its random nonce."""

    origin: str
    issued_at: datetime
    nonce: bytes

    def encode(self) -> bytes:
        """The exact bytes the hub sends and the node signs."""
        stamp = int(self.issued_at.timestamp())
        return f"{_MAGIC}\n{self.origin}\n{stamp}\n{self.nonce.hex()}".encode("ascii")

    @classmethod
    def parse(cls, data: bytes) -> Challenge:
        """Parse challenge bytes. Raises `AuthError` if they are not a well-formed challenge."""
        bad = AuthError("malformed challenge; request a new challenge from the hub")
        if not isinstance(data, bytes) or len(data) > _MAX_CHALLENGE:
            raise bad
        try:
            magic, origin, stamp, nonce_hex = data.decode("ascii").split("\n")
            nonce = bytes.fromhex(nonce_hex)
            issued = datetime.fromtimestamp(int(stamp), UTC)
        except (UnicodeDecodeError, ValueError, OverflowError, OSError):
            raise bad from None
        if magic != _MAGIC or not origin or len(nonce) != _NONCE_BYTES:
            raise bad
        return cls(origin, issued, nonce)


def _check_origin(origin: str) -> str:
    if not origin or not origin.isascii() or any(c.isspace() for c in origin):
        raise ValueError("hub origin must be non-empty ASCII without spaces, e.g. https://hub:8443")
    return origin


class NodeRegistry:
    """Registered nodes of one hub and the challenges it has issued to them.

    `origin` names this hub (e.g. "https://hub.example:8443"); it is put in every
    challenge so a signature made for one hub cannot be relayed to another.
    """

    def __init__(
        self, engine: Engine, *, origin: str, challenge_ttl: timedelta = CHALLENGE_TTL
    ) -> None:
        self._engine = engine
        self.origin = _check_origin(origin)
        self.challenge_ttl = challenge_ttl
        metadata.create_all(engine)

    def register(
        self,
        node: str,
        public_key: Ed25519PublicKey | bytes | str,
        *,
        now: datetime | None = None,
    ) -> RegisteredNode:
        """Register `node` with its public key (object, 32 raw bytes or base64 text).

        Raises `NodeKeyError` if the key is malformed, the node is already registered
        (remove it first to rotate its key) or another node already uses this key.
        """
        check_node_name(node)
        key = (
            public_key if isinstance(public_key, Ed25519PublicKey) else parse_public_key(public_key)
        )
        moment = as_utc(now or utc_now(), "now").replace(microsecond=0)
        text = public_key_text(key)
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    nodes_table.insert().values(
                        name=node, public_key=text, registered_at=int(moment.timestamp())
                    )
                )
        except sa.exc.IntegrityError:
            # The primary key and the unique key column decide, also under concurrency.
            if any(n.name == node for n in self.nodes()):
                raise NodeKeyError(
                    f"node {node!r} is already registered; remove it first to replace its key"
                ) from None
            raise NodeKeyError(
                "this public key is already registered to another node; "
                "generate a separate key for each node"
            ) from None
        return RegisteredNode(node, public_key_text(key), fingerprint(key), moment)

    def public_key(self, node: str) -> Ed25519PublicKey:
        """The registered key of `node`. Raises `UnknownNodeError` if it is not registered."""
        with self._engine.connect() as conn:
            text = conn.execute(
                sa.select(nodes_table.c.public_key).where(nodes_table.c.name == node)
            ).scalar_one_or_none()
        if text is None:
            raise UnknownNodeError(
                f"node {node!r} is not registered; register its public key first"
            )
        return parse_public_key(text)

    def key_texts(self) -> dict[str, str]:
        """Each registered node's public key as registered (text), by name: what a
        lookup's fan-out needs, without parsing every key and its fingerprint."""
        with self._engine.connect() as conn:
            return {name: key for name, key in conn.execute(_KEY_TEXTS)}

    def nodes(self) -> list[RegisteredNode]:
        """All registered nodes, sorted by name."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(nodes_table).order_by(nodes_table.c.name)).all()
        return [
            RegisteredNode(
                r.name,
                r.public_key,
                fingerprint(parse_public_key(r.public_key)),
                datetime.fromtimestamp(r.registered_at, UTC),
            )
            for r in rows
        ]

    def remove(self, node: str) -> None:
        """Unregister `node` (its key stops working at once). Raises `UnknownNodeError`."""
        with self._engine.begin() as conn:
            done = conn.execute(nodes_table.delete().where(nodes_table.c.name == node)).rowcount
        if not done:
            raise UnknownNodeError(f"node {node!r} is not registered; nothing to remove")

    def new_challenge(self, *, now: datetime | None = None) -> bytes:
        """Issue and remember a fresh single-use challenge for a connecting node."""
        moment = as_utc(now or utc_now(), "now").replace(microsecond=0)
        challenge = Challenge(self.origin, moment, secrets.token_bytes(_NONCE_BYTES))
        with self._engine.begin() as conn:
            conn.execute(
                challenges_table.insert().values(
                    nonce=challenge.nonce.hex(), issued_at=int(moment.timestamp()), used_at=None
                )
            )
        return challenge.encode()

    def consume_challenge(self, challenge: Challenge, *, now: datetime | None = None) -> None:
        """Mark `challenge` used; raises `AuthError` if it is unknown, reused or expired."""
        if challenge.origin != self.origin:
            raise AuthError("challenge was issued by another hub; request a new challenge")
        moment = as_utc(now or utc_now(), "now")
        with self._engine.begin() as conn:
            # Atomic test-and-set: of two concurrent answers only one can flip used_at.
            used = conn.execute(
                challenges_table.update()
                .where(challenges_table.c.nonce == challenge.nonce.hex())
                .where(challenges_table.c.issued_at == int(challenge.issued_at.timestamp()))
                .where(challenges_table.c.used_at.is_(None))
                .values(used_at=int(moment.timestamp()))
            ).rowcount
        if not used:
            raise AuthError(
                "challenge unknown or already used (replay refused); request a new challenge"
            )
        if moment >= challenge.issued_at + self.challenge_ttl:
            raise AuthError("challenge expired; request a new challenge and answer it promptly")

    def purge_challenges(self, *, now: datetime | None = None) -> int:
        """Delete challenges past their lifetime (used or not); returns how many."""
        moment = as_utc(now or utc_now(), "now")
        cutoff = int((moment - self.challenge_ttl).timestamp())
        with self._engine.begin() as conn:
            return conn.execute(
                challenges_table.delete().where(challenges_table.c.issued_at <= cutoff)
            ).rowcount


def sign_challenge(
    private_key: Ed25519PrivateKey, challenge: bytes, *, expected_origin: str | None = None
) -> bytes:
    """Node side: sign a hub's challenge. Pass `expected_origin` (the hub the node dialled)
    to refuse signing a challenge relayed from another hub. Raises `AuthError`."""
    parsed = Challenge.parse(challenge)
    if expected_origin is not None and parsed.origin != expected_origin:
        raise AuthError("challenge names a different hub than the one dialled; do not answer it")
    return private_key.sign(_SIGN_CONTEXT + challenge)


def verify_challenge_response(
    registry: NodeRegistry,
    node: str,
    challenge: bytes,
    signature: bytes,
    *,
    now: datetime | None = None,
) -> None:
    """Hub side: accept `node` only if it signed a live challenge of this hub with its key.

    Returns None on success. Raises `AuthError` for a malformed, foreign, unknown,
    replayed or expired challenge, an unregistered node, or a bad signature.
    """
    parsed = Challenge.parse(challenge)
    registry.consume_challenge(parsed, now=now)
    try:
        key = registry.public_key(node)
    except UnknownNodeError:
        raise AuthError(
            "node is not registered at this hub; ask the hub admin to register its public key"
        ) from None
    try:
        key.verify(signature, _SIGN_CONTEXT + challenge)
    except (InvalidSignature, TypeError):
        raise AuthError(
            "challenge signature does not match the node's registered key; "
            "check the node uses the key that was registered"
        ) from None
