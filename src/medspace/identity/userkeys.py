"""User-held Ed25519 signing keys: the key file on the user's machine, and the hub's
register of which key is each user's.

Why: a ledger entry in a user's name (a project request, a steward's approval, a
revocation, a task submission) must be something only that user could have made. The
hub therefore never holds a user's private key. `medspace login` creates the key on the
user's machine on first login (`$MEDSPACE_HOME/keys/<hub>/<user>.pem`, mode 0600, with
the public half beside it as `<user>.pub`) and registers its public key with the hub.

Registration proves possession: the client sends a `key_rotation` entry naming the new
key id, signed by the new key (`registration_entry`). The first registration binds the
key; a second is refused (`UserKeyExists`) until an admin resets the user's key, and a
reset key is retired for good (never accepted again), so a hub operator who resets a
key leaves a ledger entry and cannot silently bring an old key back.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.engine import Engine

from medspace.identity._time import as_utc
from medspace.identity.errors import UserKeyError, UserKeyExists
from medspace.identity.keys import (
    generate_key,
    parse_public_key,
    public_key_text,
    read_private_key,
    write_private_key,
)
from medspace.ledger import Entry, EntryType, SignedEntry, entry_key_id, utc_timestamp

MAX_SKEW = timedelta(minutes=5)
"""How far a user-signed entry's time may lie from the hub's clock (either way)."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def hub_dirname(hub_url: str) -> str:
    """A directory name for one hub: its host and port (`127.0.0.1_8443`)."""
    parts = urlsplit(hub_url)
    host = (parts.hostname or "hub").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return _UNSAFE.sub("_", f"{host}_{port}")


def user_key_path(home: Path, hub_url: str, user: str) -> Path:
    """Where `user`'s private key for the hub at `hub_url` lives under `home`."""
    if _UNSAFE.search(user) or user.startswith("."):
        raise UserKeyError("user name cannot name a key file; use letters, digits, '._-'")
    return home / "keys" / hub_dirname(hub_url) / f"{user}.pem"


def load_or_create_user_key(home: Path, hub_url: str, user: str) -> tuple[Ed25519PrivateKey, bool]:
    """The user's private key for this hub, created (0600, `.pub` beside it) when there is
    none. Returns (key, created). Raises `ConfigError` if the file is unsafe or broken."""
    path = user_key_path(home, hub_url, user)
    if path.exists():
        return read_private_key(path), False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = generate_key()
    write_private_key(path, key)
    public = path.with_suffix(".pub")
    public.unlink(missing_ok=True)
    public.write_text(public_key_text(key) + "\n", encoding="ascii")
    return key, True


def check_fresh(entry: Entry, now: datetime) -> None:
    """Raise `UserKeyError` unless `entry.time` is within `MAX_SKEW` of `now`."""
    when = datetime.fromisoformat(entry.time)
    if abs(when - as_utc(now, "now")) > MAX_SKEW:
        raise UserKeyError(
            "the signed entry's time is more than "
            f"{int(MAX_SKEW.total_seconds() // 60)} minutes away from the hub's clock; "
            "check this machine's clock and retry"
        )


def registration_entry(user: str, public_key: Ed25519PublicKey, now: datetime) -> Entry:
    """The `key_rotation` entry a user signs with a new key to register it."""
    return Entry(
        type=EntryType.KEY_ROTATION,
        actor=user,
        time=utc_timestamp(now),
        details={"key_id": entry_key_id(public_key)},
    )


def check_registration(signed: SignedEntry, user: str, public_key: Ed25519PublicKey) -> None:
    """Check that `signed` registers `public_key` for `user` and is signed by that key.

    Raises `UserKeyError` naming what is wrong (the time is checked by `check_fresh`)."""
    entry = signed.entry
    expected = registration_entry(user, public_key, datetime.fromisoformat(entry.time))
    if entry != expected:
        raise UserKeyError(
            "the registration entry must be a key_rotation entry by you naming the new "
            "key's id and nothing else; let `medspace login` build it"
        )
    if signed.key_id != entry_key_id(public_key):
        raise UserKeyError("the registration must be signed by the key being registered")
    try:
        public_key.verify(signed.signature, signed.signed_message)
    except Exception:  # InvalidSignature: the only failure of a well-formed verify
        raise UserKeyError(
            "the registration signature does not verify with the key being registered"
        ) from None


metadata = sa.MetaData()
user_keys_table = sa.Table(
    "identity_user_keys",
    metadata,
    sa.Column("key_id", sa.String(64), primary_key=True),
    sa.Column("user_name", sa.String(128), nullable=False, index=True),
    sa.Column("public_key", sa.String(64), nullable=False),
    sa.Column("registered_at", sa.BigInteger, nullable=False),
    sa.Column("retired_at", sa.BigInteger, nullable=True),
)
spent_table = sa.Table(
    "identity_spent_entries",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("spent_at", sa.BigInteger, nullable=False, index=True),
)


@dataclass(frozen=True, slots=True)
class UserKey:
    """A user's registered key and whether it is still the active one."""

    user: str
    key_id: str
    public_key: Ed25519PublicKey
    active: bool


class UserKeyRegistry:
    """Which Ed25519 key is each user's (at most one active per user), on SQLAlchemy 2."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        metadata.create_all(engine)

    def register(self, user: str, public_key: Ed25519PublicKey, now: datetime) -> str:
        """Bind `public_key` to `user`; returns its key id. Raises `UserKeyExists` if the
        user has an active key, and `UserKeyError` if this key was ever registered."""
        key_id = entry_key_id(public_key)
        with self._engine.begin() as conn:
            rows = conn.execute(
                sa.select(user_keys_table.c.key_id, user_keys_table.c.retired_at).where(
                    sa.or_(user_keys_table.c.user_name == user, user_keys_table.c.key_id == key_id)
                )
            ).all()
            if any(r.key_id == key_id for r in rows):
                raise UserKeyError(
                    "this key was registered before and is retired or taken; "
                    "delete the local key file and log in again to create a new one"
                )
            if any(r.retired_at is None for r in rows):
                raise UserKeyExists(
                    f"user {user} already has a registered signing key; an admin must reset "
                    "it (`medspace hub reset-user-key`) before another can be registered"
                )
            conn.execute(
                user_keys_table.insert().values(
                    key_id=key_id,
                    user_name=user,
                    public_key=public_key_text(public_key),
                    registered_at=int(as_utc(now, "now").timestamp()),
                )
            )
        return key_id

    def active(self, user: str) -> UserKey | None:
        """The user's active key, or None when they have none (never logged in, or reset)."""
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(user_keys_table)
                .where(user_keys_table.c.user_name == user)
                .where(user_keys_table.c.retired_at.is_(None))
            ).one_or_none()
        if row is None:
            return None
        return UserKey(user, row.key_id, parse_public_key(row.public_key), True)

    def spend(self, signed: SignedEntry, now: datetime) -> None:
        """Accept `signed` once: raises `UserKeyError` if this very signed entry was used
        before. Entries older than twice `MAX_SKEW` are forgotten (they are refused as
        stale anyway), so the table stays small."""
        digest = hashlib.sha256(signed.body).hexdigest()
        epoch = int(as_utc(now, "now").timestamp())
        horizon = epoch - int(2 * MAX_SKEW.total_seconds())
        try:
            with self._engine.begin() as conn:
                conn.execute(spent_table.delete().where(spent_table.c.spent_at < horizon))
                conn.execute(spent_table.insert().values(digest=digest, spent_at=epoch))
        except sa.exc.IntegrityError:
            raise UserKeyError(
                "this signed entry was used before; a signature is good for one action, so "
                "repeat the request to sign afresh"
            ) from None

    def reset(self, user: str, now: datetime) -> str | None:
        """Retire the user's active key; returns its id, or None if there was none."""
        current = self.active(user)
        if current is None:
            return None
        with self._engine.begin() as conn:
            conn.execute(
                user_keys_table.update()
                .where(user_keys_table.c.key_id == current.key_id)
                .values(retired_at=int(as_utc(now, "now").timestamp()))
            )
        return current.key_id
