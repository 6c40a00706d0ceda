"""The user directory: accounts, password logins and token sessions on SQLAlchemy 2 Core.

Works on any engine passed in (SQLite by default, PostgreSQL in production). Times are
stored as integer epoch seconds so both databases agree. A login issues a token *and*
records its id, so a token is honoured only while its session exists: logging out,
changing the password or disabling the account revokes it before it expires.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.engine import Connection, Engine

from medspace.identity._time import as_utc, utc_now
from medspace.identity.errors import AuthError, DuplicateUserError, UnknownUserError
from medspace.identity.passwords import (
    DEFAULT_PARAMS,
    MIN_PASSWORD_LENGTH,
    ScryptParams,
    hash_password,
    needs_rehash,
    verify_password,
)
from medspace.identity.roles import Role, User
from medspace.identity.tokens import issue_delegation, issue_token, verify_token

DEFAULT_TOKEN_TTL = timedelta(hours=8)
_LOGIN_FAILED = "unknown user or wrong password; check both and try again"

metadata = sa.MetaData()
users_table = sa.Table(
    "identity_users",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("node", sa.String(63), nullable=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
)
sessions_table = sa.Table(
    "identity_sessions",
    metadata,
    sa.Column("token_id", sa.String(32), primary_key=True),
    sa.Column("user_name", sa.String(128), sa.ForeignKey("identity_users.name"), nullable=False),
    sa.Column("issued_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
)


_RESOLVE = (
    sa.select(
        sessions_table.c.user_name,
        sessions_table.c.revoked_at,
        users_table.c.name,
        users_table.c.role,
        users_table.c.node,
        users_table.c.disabled,
    )
    .select_from(
        sessions_table.outerjoin(users_table, users_table.c.name == sessions_table.c.user_name)
    )
    .where(sessions_table.c.token_id == sa.bindparam("token_id"))
)


def _epoch(moment: datetime | None) -> int:
    return int(as_utc(moment or utc_now(), "now").timestamp())


class UserDirectory:
    """Users of one hub and their sessions. Creates its tables on first use (idempotent).

    `signing_key` is the hub's Ed25519 token key; `params` the scrypt cost for new hashes
    (older hashes are upgraded at the next successful login).
    """

    def __init__(
        self,
        engine: Engine,
        signing_key: Ed25519PrivateKey,
        *,
        params: ScryptParams = DEFAULT_PARAMS,
    ) -> None:
        self._engine = engine
        self._key = signing_key
        self._params = params
        metadata.create_all(engine)

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The key that verifies this directory's tokens (give it to nodes)."""
        return self._key.public_key()

    @cached_property
    def _decoy_hash(self) -> str:
        # Verified against when the user does not exist, so a failed login takes the same
        # time whether or not the name is known (no user enumeration by timing).
        return hash_password("x" * MIN_PASSWORD_LENGTH, self._params)

    def add_user(self, user: User, password: str, *, now: datetime | None = None) -> User:
        """Create `user` with `password`. Raises `DuplicateUserError` if the name is taken,
        `InvalidUserError` if the password is too short or too long."""
        encoded = hash_password(password, self._params)
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    users_table.insert().values(
                        name=user.name,
                        role=user.role.value,
                        node=user.node,
                        password_hash=encoded,
                        created_at=_epoch(now),
                        disabled=False,
                    )
                )
        except sa.exc.IntegrityError:
            raise DuplicateUserError(
                f"user {user.name!r} already exists; choose another name"
            ) from None
        return user

    def get(self, name: str) -> User:
        """The user called `name`. Raises `UnknownUserError` if there is none."""
        with self._engine.connect() as conn:
            row = self._row(conn, name)
        if row is None:
            raise UnknownUserError(f"no user {name!r}; list users to check the name")
        return User(row.name, Role(row.role), row.node)

    def users(self) -> list[User]:
        """All users, sorted by name."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(users_table).order_by(users_table.c.name)).all()
        return [User(r.name, Role(r.role), r.node) for r in rows]

    def authenticate(self, name: str, password: str) -> User:
        """Check `password` for `name` and return the user.

        Raises `AuthError` for an unknown name or a wrong password (one message for both)
        and for a disabled account. Re-hashes with the current parameters when they changed.
        """
        with self._engine.connect() as conn:
            row = self._row(conn, name) if isinstance(name, str) else None
        if row is None:
            verify_password(password, self._decoy_hash)
            raise AuthError(_LOGIN_FAILED)
        if not verify_password(password, row.password_hash):
            raise AuthError(_LOGIN_FAILED)
        if row.disabled:
            raise AuthError("this account is disabled; ask an admin to re-enable it")
        if needs_rehash(row.password_hash, self._params):
            self._store_hash(name, hash_password(password, self._params))
        return User(row.name, Role(row.role), row.node)

    def set_password(self, name: str, password: str, *, now: datetime | None = None) -> None:
        """Replace `name`'s password and revoke all their sessions.

        Raises `UnknownUserError` or `InvalidUserError` (password too short or too long).
        """
        self.get(name)
        self._store_hash(name, hash_password(password, self._params))
        self._revoke_all(name, now)

    def disable(self, name: str, *, now: datetime | None = None) -> None:
        """Disable `name`'s account and revoke their sessions. Raises `UnknownUserError`."""
        with self._engine.begin() as conn:
            done = conn.execute(
                users_table.update().where(users_table.c.name == name).values(disabled=True)
            ).rowcount
        if not done:
            raise UnknownUserError(f"no user {name!r}; list users to check the name")
        self._revoke_all(name, now)

    def enable(self, name: str) -> None:
        """Re-enable a disabled account. Raises `UnknownUserError`."""
        with self._engine.begin() as conn:
            done = conn.execute(
                users_table.update().where(users_table.c.name == name).values(disabled=False)
            ).rowcount
        if not done:
            raise UnknownUserError(f"no user {name!r}; list users to check the name")

    def login(
        self,
        name: str,
        password: str,
        *,
        ttl: timedelta = DEFAULT_TOKEN_TTL,
        now: datetime | None = None,
    ) -> str:
        """Authenticate and return a new bearer token valid for `ttl`, recording its session.

        Raises `AuthError` like `authenticate`.
        """
        user = self.authenticate(name, password)
        moment = as_utc(now or utc_now(), "now")
        token = issue_token(self._key, user, ttl, now=moment)
        claims = verify_token(self.public_key, token, now=moment)
        with self._engine.begin() as conn:
            conn.execute(
                sessions_table.insert().values(
                    token_id=claims.token_id,
                    user_name=user.name,
                    issued_at=_epoch(claims.issued_at),
                    expires_at=_epoch(claims.expires_at),
                    revoked_at=None,
                )
            )
        return token

    def delegate(
        self, token: str, *, audience: str, binding: str, now: datetime | None = None
    ) -> str:
        """What the hub forwards to nodes for `token` (resolved for this request): a
        delegation for one task, session or lookup request (`binding`) of `audience`,
        never the bearer token itself. Raises `AuthError` for a token no longer valid."""
        claims = verify_token(self.public_key, token, now=now)
        return issue_delegation(self._key, claims, audience=audience, binding=binding, now=now)

    def resolve(self, token: str, *, now: datetime | None = None) -> User:
        """The user a token belongs to, if it is valid *and* its session is live.

        Raises `AuthError` ("log in again") for malformed, forged or expired tokens, for
        tokens whose session is unknown or revoked, and for disabled or changed accounts.
        """
        claims = verify_token(self.public_key, token, now=now)
        # One query per request (every API call resolves its token): the session and its
        # account, joined; an account that is gone leaves the user columns NULL.
        with self._engine.connect() as conn:
            found = conn.execute(_RESOLVE, {"token_id": claims.token_id}).one_or_none()
        if found is None or found.user_name != claims.subject:
            raise AuthError("unknown token (not issued by this hub's directory); log in again")
        if found.revoked_at is not None:
            raise AuthError("token was revoked (logout or password change); log in again")
        if found.name is None or found.disabled:
            raise AuthError("the account behind this token is disabled or gone; ask an admin")
        user = User(found.name, Role(found.role), found.node)
        if user != claims.user:
            raise AuthError("the account's role changed since this token was issued; log in again")
        return user

    def logout(self, token: str, *, now: datetime | None = None) -> None:
        """Revoke the session of a valid token. Raises `AuthError` if the token is invalid."""
        claims = verify_token(self.public_key, token, now=now)
        with self._engine.begin() as conn:
            conn.execute(
                sessions_table.update()
                .where(sessions_table.c.token_id == claims.token_id)
                .where(sessions_table.c.revoked_at.is_(None))
                .values(revoked_at=_epoch(now))
            )

    def purge_sessions(self, *, now: datetime | None = None) -> int:
        """Delete sessions that have expired by `now`; returns how many."""
        with self._engine.begin() as conn:
            return conn.execute(
                sessions_table.delete().where(sessions_table.c.expires_at <= _epoch(now))
            ).rowcount

    def _row(self, conn: Connection, name: str) -> sa.Row[Any] | None:
        return conn.execute(sa.select(users_table).where(users_table.c.name == name)).one_or_none()

    def _store_hash(self, name: str, encoded: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                users_table.update().where(users_table.c.name == name).values(password_hash=encoded)
            )

    def _revoke_all(self, name: str, now: datetime | None) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                sessions_table.update()
                .where(sessions_table.c.user_name == name)
                .where(sessions_table.c.revoked_at.is_(None))
                .values(revoked_at=_epoch(now))
            )
