"""Bearer tokens: round trip, expiry, forgery, tampering and malformed input."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from medspace.identity import (
    MAX_TTL,
    AuthError,
    IdentityError,
    Role,
    User,
    generate_key,
    issue_delegation,
    issue_token,
    verify_delegation,
    verify_token,
)
from medspace.identity.tokens import DELEGATION_TTL

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
STEWARD = User("steward.li", Role.STEWARD, "h2")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims_of(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return decoded


def test_token_round_trips_its_claims(t0: datetime) -> None:
    token = issue_token(KEY, STEWARD, timedelta(hours=1), now=t0)
    claims = verify_token(KEY.public_key(), token, now=t0 + timedelta(minutes=59))
    assert claims.user == STEWARD
    assert (claims.subject, claims.role, claims.node) == ("steward.li", Role.STEWARD, "h2")
    assert claims.issued_at == t0
    assert claims.expires_at == t0 + timedelta(hours=1)
    assert len(claims.token_id) == 32


def test_claims_are_canonical_json_without_secrets(t0: datetime) -> None:
    token = issue_token(KEY, STEWARD, timedelta(hours=1), now=t0)
    payload = base64.urlsafe_b64decode(token.split(".")[1] + "==")
    assert payload == json.dumps(_claims_of(token), sort_keys=True, separators=(",", ":")).encode()
    assert set(_claims_of(token)) == {"v", "sub", "role", "node", "iat", "exp", "jti"}


def test_each_token_has_its_own_id(t0: datetime) -> None:
    a = verify_token(
        KEY.public_key(), issue_token(KEY, STEWARD, timedelta(hours=1), now=t0), now=t0
    )
    b = verify_token(
        KEY.public_key(), issue_token(KEY, STEWARD, timedelta(hours=1), now=t0), now=t0
    )
    assert a.token_id != b.token_id


@pytest.mark.parametrize("after", [timedelta(hours=1), timedelta(hours=1, seconds=1), MAX_TTL])
def test_expired_token_is_refused(t0: datetime, after: timedelta) -> None:
    token = issue_token(KEY, STEWARD, timedelta(hours=1), now=t0)
    with pytest.raises(AuthError, match="token expired; log in again"):
        verify_token(KEY.public_key(), token, now=t0 + after)


def test_token_from_the_future_is_refused(t0: datetime) -> None:
    token = issue_token(KEY, STEWARD, timedelta(hours=1), now=t0 + timedelta(minutes=10))
    with pytest.raises(AuthError, match="issued in the future"):
        verify_token(KEY.public_key(), token, now=t0)
    # Within the allowed clock skew it is accepted.
    verify_token(KEY.public_key(), token, now=t0 + timedelta(minutes=9, seconds=30))


def test_token_signed_by_another_key_is_refused(t0: datetime) -> None:
    forged = issue_token(generate_key(), User("mallory", Role.ADMIN), timedelta(hours=1), now=t0)
    with pytest.raises(AuthError, match=r"signature is invalid.*log in again"):
        verify_token(KEY.public_key(), forged, now=t0)


@pytest.mark.parametrize(
    "change",
    [
        {"role": "admin", "node": None},  # privilege escalation
        {"node": "h1"},  # steward of h2 claims h1
        {"sub": "someone.else"},  # impersonation
        {"exp": 4102444800},  # extended lifetime
    ],
)
def test_tampered_claims_are_refused(t0: datetime, change: dict[str, object]) -> None:
    prefix, payload, signature = issue_token(KEY, STEWARD, timedelta(hours=1), now=t0).split(".")
    original = _claims_of(f"{prefix}.{payload}.{signature}")
    tampered = {**original, **change}
    forged = _b64(json.dumps(tampered, sort_keys=True, separators=(",", ":")).encode())
    with pytest.raises(AuthError, match="signature is invalid"):
        verify_token(KEY.public_key(), f"{prefix}.{forged}.{signature}", now=t0)


def test_a_token_checked_before_is_still_refused_expired_altered_or_under_another_key(
    t0: datetime,
) -> None:
    # Signature checks that passed are remembered; nothing else about the token is.
    token = issue_token(KEY, STEWARD, timedelta(hours=1), now=t0)
    assert verify_token(KEY.public_key(), token, now=t0).user == STEWARD
    assert verify_token(KEY.public_key(), token, now=t0).user == STEWARD
    with pytest.raises(AuthError, match="token expired"):
        verify_token(KEY.public_key(), token, now=t0 + timedelta(hours=1))
    with pytest.raises(AuthError, match="signature is invalid"):
        verify_token(generate_key().public_key(), token, now=t0)
    prefix, payload, signature = token.split(".")
    other = _b64(bytes([base64.urlsafe_b64decode(signature + "==")[0] ^ 1]))
    altered = f"{prefix}.{payload}.{other}{signature[2:]}"
    for _ in range(2):  # a failed check is not remembered as passed
        with pytest.raises(AuthError, match=r"signature is invalid|malformed"):
            verify_token(KEY.public_key(), altered, now=t0)
    delegation = issue_delegation(
        KEY, verify_token(KEY.public_key(), token, now=t0), audience="lookup", binding="r1", now=t0
    )
    with pytest.raises(AuthError, match=r"signature is invalid|not a token|expected ms1"):
        verify_token(KEY.public_key(), delegation, now=t0)  # a delegation stays no token


def test_stripped_signature_is_refused(t0: datetime) -> None:
    token = issue_token(KEY, STEWARD, timedelta(hours=1), now=t0)
    head = token.rsplit(".", 1)[0]
    with pytest.raises(AuthError, match="signature is invalid"):
        verify_token(KEY.public_key(), f"{head}.{_b64(bytes(64))}", now=t0)


@pytest.mark.parametrize(
    "token",
    [
        "",  # empty
        "Bearer abc",  # header value, not a token
        "ms1.abc",  # two parts
        "ms1.a.b.c",  # four parts
        "jwt.eyJhbGciOiJub25lIn0.x",  # another format
        "ms1.!!!.???",  # not base64url
        "ms1." + "A" * 5000 + ".x",  # absurdly long
    ],
)
def test_malformed_token_is_refused(token: str) -> None:
    with pytest.raises(AuthError, match=r"malformed token.*log in again"):
        verify_token(KEY.public_key(), token)


def test_validly_signed_but_unexpected_claims_are_refused(t0: datetime) -> None:
    # Signed with the real key: only a leaked key could do this, but the parser must
    # still refuse claims it does not understand rather than guess.
    for claims in (
        {"v": 2},
        {"v": 1, "sub": "x"},
        [1, 2, 3],
    ):
        payload = _b64(json.dumps(claims).encode())
        signature = _b64(KEY.sign(f"ms1.{payload}".encode()))
        with pytest.raises(AuthError, match="malformed token"):
            verify_token(KEY.public_key(), f"ms1.{payload}.{signature}", now=t0)


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-1), MAX_TTL + timedelta(1)])
def test_token_lifetime_must_be_positive_and_bounded(ttl: timedelta) -> None:
    with pytest.raises(IdentityError, match="lifetime"):
        issue_token(KEY, STEWARD, ttl)


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        issue_token(KEY, STEWARD, timedelta(hours=1), now=datetime(2025, 1, 1))


_ISSUED = datetime.fromisoformat("2025-03-01T09:00:00+00:00")
_TOKEN = issue_token(KEY, STEWARD, timedelta(hours=1), now=_ISSUED)


@settings(max_examples=300, deadline=None)
@given(position=st.integers(min_value=0, max_value=len(_TOKEN) - 1), char=st.characters())
def test_any_single_character_change_is_refused(position: int, char: str) -> None:
    altered = _TOKEN[:position] + char + _TOKEN[position + 1 :]
    assume(altered != _TOKEN)
    with pytest.raises(AuthError):
        verify_token(KEY.public_key(), altered, now=_ISSUED + timedelta(minutes=30))


# -- delegations: what the hub forwards to nodes instead of the bearer token -------------


def _delegation(t0: datetime, audience: str = "lookup", binding: str = "req-1") -> str:
    bearer = verify_token(
        KEY.public_key(), issue_token(KEY, STEWARD, timedelta(hours=8), now=t0), now=t0
    )
    return issue_delegation(KEY, bearer, audience=audience, binding=binding, now=t0)


def test_a_delegation_names_the_user_for_one_audience_and_binding(t0: datetime) -> None:
    token = _delegation(t0)
    claims = verify_delegation(KEY.public_key(), token, audience="lookup", binding="req-1", now=t0)
    assert claims.user == STEWARD
    assert claims.expires_at - claims.issued_at == DELEGATION_TTL


@pytest.mark.parametrize(
    ("audience", "binding"), [("task", "req-1"), ("lookup", "req-2"), ("analytics", "req-1")]
)
def test_a_delegation_for_another_audience_or_binding_is_refused(
    t0: datetime, audience: str, binding: str
) -> None:
    with pytest.raises(AuthError, match="another task or request"):
        verify_delegation(
            KEY.public_key(), _delegation(t0), audience=audience, binding=binding, now=t0
        )


def test_a_delegation_is_no_bearer_token_and_a_bearer_token_no_delegation(t0: datetime) -> None:
    with pytest.raises(AuthError, match="malformed"):
        verify_token(KEY.public_key(), _delegation(t0), now=t0)
    bearer = issue_token(KEY, STEWARD, timedelta(hours=1), now=t0)
    with pytest.raises(AuthError, match="malformed"):
        verify_delegation(KEY.public_key(), bearer, audience="lookup", binding="req-1", now=t0)
    # The prefix is signed: relabelling one as the other breaks the signature.
    relabelled = "ms1." + _delegation(t0).split(".", 1)[1]
    with pytest.raises(AuthError):
        verify_token(KEY.public_key(), relabelled, now=t0)


def test_a_delegation_expires_in_minutes_and_never_outlives_its_bearer(t0: datetime) -> None:
    token = _delegation(t0)
    later = t0 + DELEGATION_TTL
    with pytest.raises(AuthError, match="expired"):
        verify_delegation(KEY.public_key(), token, audience="lookup", binding="req-1", now=later)
    short = issue_token(KEY, STEWARD, timedelta(minutes=2), now=t0)
    bearer = verify_token(KEY.public_key(), short, now=t0)
    capped = issue_delegation(KEY, bearer, audience="task", binding="t-1", now=t0)
    claims = verify_delegation(KEY.public_key(), capped, audience="task", binding="t-1", now=t0)
    assert claims.expires_at == bearer.expires_at
    with pytest.raises(IdentityError, match="expired"):
        issue_delegation(KEY, bearer, audience="task", binding="t-1", now=t0 + timedelta(hours=1))


def test_a_delegation_signed_by_another_key_or_altered_is_refused(t0: datetime) -> None:
    token = _delegation(t0)
    with pytest.raises(AuthError, match="signature is invalid"):
        verify_delegation(
            generate_key().public_key(), token, audience="lookup", binding="req-1", now=t0
        )
    prefix, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["for"] = "req-2"
    forged = ".".join(
        (
            prefix,
            _b64(json.dumps(claims, sort_keys=True, separators=(",", ":")).encode()),
            signature,
        )
    )
    with pytest.raises(AuthError, match="signature is invalid"):
        verify_delegation(KEY.public_key(), forged, audience="lookup", binding="req-2", now=t0)


def test_a_delegation_needs_a_known_audience_and_a_binding(t0: datetime) -> None:
    bearer = verify_token(
        KEY.public_key(), issue_token(KEY, STEWARD, timedelta(hours=1), now=t0), now=t0
    )
    with pytest.raises(IdentityError, match="audience"):
        issue_delegation(KEY, bearer, audience="admin", binding="x", now=t0)
    with pytest.raises(IdentityError, match="one task"):
        issue_delegation(KEY, bearer, audience="task", binding="", now=t0)
