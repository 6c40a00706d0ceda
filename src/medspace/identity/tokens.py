"""Expiring bearer tokens: canonical claims signed by the hub's Ed25519 key.

Format: `ms1.<claims>.<signature>`, both parts unpadded base64url. `<claims>` is the
canonical JSON (sorted keys, no spaces, integer epoch seconds) of subject, role, node,
issued-at, expiry and a random token id; the signature (RFC 8032 Ed25519) covers the
ASCII text `ms1.<claims>`. Ed25519 rather than HMAC so a node can check a token with the
hub's public key without holding a secret that could mint tokens.

A *delegation* (`ms1d.<claims>.<signature>`) is what the hub forwards to nodes instead of
the user's bearer token: the same user claims plus an audience (`task`, `analytics`,
`lookup`) and the one task, session or lookup request it is for (`for`), valid for
minutes and never beyond the bearer token it was made from. A node that receives one
cannot log in with it anywhere (`verify_token` refuses the prefix, which the signature
covers) nor use it for another task; forwarding the bearer token itself would let any
participating hospital act as the user at the hub and at the other nodes' APIs until it
expired.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from medspace.identity._time import as_utc, utc_now
from medspace.identity.errors import AuthError, IdentityError
from medspace.identity.roles import Role, User

PREFIX = "ms1"
DELEGATION_PREFIX = "ms1d"
MAX_TTL = timedelta(hours=24)
DELEGATION_TTL = timedelta(minutes=10)
AUDIENCES = frozenset({"task", "analytics", "lookup"})
CLOCK_SKEW = timedelta(seconds=60)
MAX_TOKEN_LENGTH = 4096
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_TOKEN_ID = re.compile(r"[0-9a-f]{32}")
_CLAIM_KEYS = frozenset({"v", "sub", "role", "node", "iat", "exp", "jti"})
_DELEGATION_KEYS = _CLAIM_KEYS | {"aud", "for"}
_MAX_BINDING = 128


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says: who, in which role, for how long, under which id."""

    subject: str
    role: Role
    node: str | None
    issued_at: datetime
    expires_at: datetime
    token_id: str

    @property
    def user(self) -> User:
        """The user the token was issued to."""
        return User(self.subject, self.role, self.node)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64url(text: str) -> bytes:
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64url(data) != text:  # refuse non-canonical spellings (ignored trailing bits)
        raise ValueError("non-canonical base64url")
    return data


def _malformed(what: str) -> AuthError:
    return AuthError(f"malformed token ({what}); log in again to get a new one")


def issue_token(
    signing_key: Ed25519PrivateKey,
    user: User,
    ttl: timedelta,
    *,
    now: datetime | None = None,
) -> str:
    """Issue a token for `user` valid for `ttl` (at most `MAX_TTL`) from `now`.

    Raises `IdentityError` if `ttl` is not positive or longer than `MAX_TTL`.
    """
    if not timedelta(0) < ttl <= MAX_TTL:
        raise IdentityError(f"token lifetime must be positive and at most {MAX_TTL}")
    issued = as_utc(now or utc_now(), "now").replace(microsecond=0)
    return _sign(signing_key, PREFIX, _user_claims(user, issued, issued + ttl))


def issue_delegation(
    signing_key: Ed25519PrivateKey,
    bearer: Claims,
    *,
    audience: str,
    binding: str,
    now: datetime | None = None,
    ttl: timedelta = DELEGATION_TTL,
) -> str:
    """A delegation of the bearer token whose `bearer` claims were verified, for one
    `binding` (task id, session id, lookup request id) of `audience`; it expires after
    `ttl` or with the bearer token, whichever is first. Raises `IdentityError` for an
    unknown audience, an empty or overlong binding, or a bearer token already expired."""
    if audience not in AUDIENCES:
        raise IdentityError(f"unknown delegation audience {audience!r}")
    if not isinstance(binding, str) or not 0 < len(binding) <= _MAX_BINDING:
        raise IdentityError("a delegation is for one task, session or request id")
    if not timedelta(0) < ttl <= DELEGATION_TTL:
        raise IdentityError(f"a delegation lives at most {DELEGATION_TTL}")
    issued = as_utc(now or utc_now(), "now").replace(microsecond=0)
    expires = min(issued + ttl, bearer.expires_at)
    if expires <= issued:
        raise IdentityError("the bearer token has expired; log in again")
    claims = _user_claims(bearer.user, issued, expires)
    claims.update({"aud": audience, "for": binding})
    return _sign(signing_key, DELEGATION_PREFIX, claims)


def _user_claims(user: User, issued: datetime, expires: datetime) -> dict[str, Any]:
    return {
        "v": 1,
        "sub": user.name,
        "role": user.role.value,
        "node": user.node,
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": secrets.token_hex(16),
    }


def _sign(signing_key: Ed25519PrivateKey, prefix: str, claims: dict[str, Any]) -> str:
    payload = _b64url(json.dumps(claims, sort_keys=True, separators=(",", ":")).encode())
    signed = f"{prefix}.{payload}"
    return f"{signed}.{_b64url(signing_key.sign(signed.encode('ascii')))}"


def verify_token(
    verify_key: Ed25519PublicKey, token: str, *, now: datetime | None = None
) -> Claims:
    """Check `token`'s signature and lifetime at `now` and return its claims.

    Raises `AuthError` ("log in again") if the token is malformed, forged (signed by any
    other key or altered), expired, or issued in the future beyond `CLOCK_SKEW`. A
    delegation is not a token: it is refused here.
    """
    raw = _verified(verify_key, token, PREFIX, _CLAIM_KEYS)
    return _lifetime(_parse_claims(raw), now)


def verify_delegation(
    verify_key: Ed25519PublicKey,
    token: str,
    *,
    audience: str,
    binding: str,
    now: datetime | None = None,
) -> Claims:
    """Check a delegation the hub forwarded: signature, lifetime, and that it was made
    for `audience` and for this `binding` (the task, session or request being answered).
    Returns the delegating user's claims; raises `AuthError` otherwise."""
    raw = _verified(verify_key, token, DELEGATION_PREFIX, _DELEGATION_KEYS)
    if raw["aud"] != audience or raw["for"] != binding:
        raise AuthError(
            "the hub's delegation was made for another task or request; it is refused "
            "(a replay or a hub error): ask again"
        )
    return _lifetime(_parse_claims(raw), now)


def _verified(
    verify_key: Ed25519PublicKey, token: str, prefix: str, keys: frozenset[str]
) -> dict[str, Any]:
    """The claims of `token` once its form and signature check out."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise _malformed("not a token string of sane length")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != prefix:
        raise _malformed(f"expected {prefix}.<claims>.<signature>")
    try:
        payload, signature = _unb64url(parts[1]), _unb64url(parts[2])
    except ValueError:
        raise _malformed("bad base64url") from None
    try:
        _check_signature(
            verify_key.public_bytes_raw(), f"{parts[0]}.{parts[1]}".encode("ascii"), signature
        )
    except InvalidSignature:
        raise AuthError(
            "token signature is invalid (altered, forged or from another hub); log in again"
        ) from None
    try:
        raw: Any = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _malformed("claims are not JSON") from None
    if not isinstance(raw, dict) or set(raw) != keys or raw["v"] != 1:
        raise _malformed("unexpected claims")
    return raw


@functools.lru_cache(maxsize=4096)
def _check_signature(public: bytes, message: bytes, signature: bytes) -> None:
    """Raise `InvalidSignature` unless `signature` is `public`'s over `message`. A check
    that passed is remembered (the same bytes under the same key always pass): a token is
    checked on every request and a session's delegation by each node for each statistic,
    and one Ed25519 check costs ~0.15 ms here. Failures are not remembered, and lifetime
    and revocation are checked on every use by the callers."""
    Ed25519PublicKey.from_public_bytes(public).verify(signature, message)


def _lifetime(claims: Claims, now: datetime | None) -> Claims:
    moment = as_utc(now or utc_now(), "now")
    if moment >= claims.expires_at:
        raise AuthError("token expired; log in again")
    if claims.issued_at > moment + CLOCK_SKEW:
        raise AuthError("token issued in the future; check this machine's clock and log in again")
    return claims


def _parse_claims(raw: dict[str, Any]) -> Claims:
    iat, exp, jti = raw["iat"], raw["exp"], raw["jti"]
    if not all(type(t) is int for t in (iat, exp)) or not 0 < exp - iat <= MAX_TTL.total_seconds():
        raise _malformed("bad lifetime")
    if not isinstance(jti, str) or not _TOKEN_ID.fullmatch(jti):
        raise _malformed("bad token id")
    try:
        user = User(raw["sub"], Role(raw["role"]), raw["node"])
    except (ValueError, TypeError, IdentityError):
        raise _malformed("bad subject, role or node") from None
    return Claims(
        subject=user.name,
        role=user.role,
        node=user.node,
        issued_at=datetime.fromtimestamp(iat, UTC),
        expires_at=datetime.fromtimestamp(exp, UTC),
        token_id=jti,
    )
