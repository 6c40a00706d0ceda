"""Expiring bearer tokens: canonical claims signed by the hub's Ed25519 key.

Format: `ms1.<claims>.<signature>`, both parts unpadded base64url. `<claims>` is the
canonical JSON (sorted keys, no spaces, integer epoch seconds) of subject, role, node,
issued-at, expiry and a random token id; the signature (RFC 8032 Ed25519) covers the
ASCII text `ms1.<claims>`. Ed25519 rather than HMAC so a node can check a token with the
hub's public key without holding a secret that could mint tokens.
"""

from __future__ import annotations

import base64
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
MAX_TTL = timedelta(hours=24)
CLOCK_SKEW = timedelta(seconds=60)
MAX_TOKEN_LENGTH = 4096
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_TOKEN_ID = re.compile(r"[0-9a-f]{32}")
_CLAIM_KEYS = frozenset({"v", "sub", "role", "node", "iat", "exp", "jti"})


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
    claims = {
        "v": 1,
        "sub": user.name,
        "role": user.role.value,
        "node": user.node,
        "iat": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
        "jti": secrets.token_hex(16),
    }
    payload = _b64url(json.dumps(claims, sort_keys=True, separators=(",", ":")).encode())
    signed = f"{PREFIX}.{payload}"
    return f"{signed}.{_b64url(signing_key.sign(signed.encode('ascii')))}"


def verify_token(
    verify_key: Ed25519PublicKey, token: str, *, now: datetime | None = None
) -> Claims:
    """Check `token`'s signature and lifetime at `now` and return its claims.

    Raises `AuthError` ("log in again") if the token is malformed, forged (signed by any
    other key or altered), expired, or issued in the future beyond `CLOCK_SKEW`.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise _malformed("not a token string of sane length")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise _malformed(f"expected {PREFIX}.<claims>.<signature>")
    try:
        payload, signature = _unb64url(parts[1]), _unb64url(parts[2])
    except ValueError:
        raise _malformed("bad base64url") from None
    try:
        verify_key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
    except InvalidSignature:
        raise AuthError(
            "token signature is invalid (altered, forged or from another hub); log in again"
        ) from None
    claims = _parse_claims(payload)
    moment = as_utc(now or utc_now(), "now")
    if moment >= claims.expires_at:
        raise AuthError("token expired; log in again")
    if claims.issued_at > moment + CLOCK_SKEW:
        raise AuthError("token issued in the future; check this machine's clock and log in again")
    return claims


def _parse_claims(payload: bytes) -> Claims:
    try:
        raw: Any = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _malformed("claims are not JSON") from None
    if not isinstance(raw, dict) or set(raw) != _CLAIM_KEYS or raw["v"] != 1:
        raise _malformed("unexpected claims")
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
