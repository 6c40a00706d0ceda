"""Node registry and challenge-response: replay, expiry, unregistered and wrong keys."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from medspace.identity import (
    AuthError,
    Challenge,
    NodeKeyError,
    NodeRegistry,
    UnknownNodeError,
    fingerprint,
    generate_key,
    public_key_text,
    sign_challenge,
    verify_challenge_response,
)

ORIGIN = "https://hub.test:8443"


@pytest.fixture
def registry(engine: Engine) -> NodeRegistry:
    return NodeRegistry(engine, origin=ORIGIN)


def test_registered_node_answers_a_challenge(registry: NodeRegistry, t0: datetime) -> None:
    key = generate_key()
    entry = registry.register("h1", key.public_key(), now=t0)
    assert entry.fingerprint == fingerprint(key)
    challenge = registry.new_challenge(now=t0)
    signature = sign_challenge(key, challenge, expected_origin=ORIGIN)
    assert verify_challenge_response(registry, "h1", challenge, signature, now=t0) is None


def test_key_texts_are_the_registered_keys_by_name(registry: NodeRegistry, t0: datetime) -> None:
    keys = {name: generate_key() for name in ("h2", "h1")}
    for name, key in keys.items():
        registry.register(name, key.public_key(), now=t0)
    texts = registry.key_texts()
    assert texts == {name: public_key_text(key.public_key()) for name, key in keys.items()}
    assert texts == {n.name: n.public_key for n in registry.nodes()}


def test_challenge_carries_origin_time_and_32_random_bytes(
    registry: NodeRegistry, t0: datetime
) -> None:
    a = Challenge.parse(registry.new_challenge(now=t0))
    b = Challenge.parse(registry.new_challenge(now=t0))
    assert (a.origin, a.issued_at) == (ORIGIN, t0)
    assert len(a.nonce) == 32
    assert a.nonce != b.nonce


def test_replayed_challenge_is_refused(registry: NodeRegistry, t0: datetime) -> None:
    key = generate_key()
    registry.register("h1", key.public_key())
    challenge = registry.new_challenge(now=t0)
    signature = sign_challenge(key, challenge)
    verify_challenge_response(registry, "h1", challenge, signature, now=t0)
    with pytest.raises(AuthError, match=r"already used \(replay refused\)"):
        verify_challenge_response(registry, "h1", challenge, signature, now=t0)


def test_failed_answer_still_uses_up_the_challenge(registry: NodeRegistry, t0: datetime) -> None:
    key = generate_key()
    registry.register("h1", key.public_key())
    challenge = registry.new_challenge(now=t0)
    with pytest.raises(AuthError, match="does not match"):
        verify_challenge_response(registry, "h1", challenge, bytes(64), now=t0)
    with pytest.raises(AuthError, match="already used"):
        verify_challenge_response(registry, "h1", challenge, sign_challenge(key, challenge), now=t0)


def test_expired_challenge_is_refused(registry: NodeRegistry, t0: datetime) -> None:
    key = generate_key()
    registry.register("h1", key.public_key())
    challenge = registry.new_challenge(now=t0)
    signature = sign_challenge(key, challenge)
    with pytest.raises(AuthError, match="challenge expired"):
        verify_challenge_response(
            registry, "h1", challenge, signature, now=t0 + registry.challenge_ttl
        )


def test_unregistered_node_is_refused(registry: NodeRegistry, t0: datetime) -> None:
    key = generate_key()
    challenge = registry.new_challenge(now=t0)
    with pytest.raises(AuthError, match="not registered at this hub"):
        verify_challenge_response(registry, "h9", challenge, sign_challenge(key, challenge), now=t0)


def test_unregistered_key_is_refused(registry: NodeRegistry, t0: datetime) -> None:
    registry.register("h1", generate_key().public_key())
    impostor = generate_key()
    challenge = registry.new_challenge(now=t0)
    with pytest.raises(AuthError, match="does not match the node's registered key"):
        verify_challenge_response(
            registry, "h1", challenge, sign_challenge(impostor, challenge), now=t0
        )


def test_removed_node_can_no_longer_log_in(registry: NodeRegistry, t0: datetime) -> None:
    key = generate_key()
    registry.register("h1", public_key_text(key))
    registry.remove("h1")
    challenge = registry.new_challenge(now=t0)
    with pytest.raises(AuthError, match="not registered"):
        verify_challenge_response(registry, "h1", challenge, sign_challenge(key, challenge), now=t0)
    with pytest.raises(UnknownNodeError, match="nothing to remove"):
        registry.remove("h1")


def test_challenge_the_hub_never_issued_is_refused(registry: NodeRegistry, t0: datetime) -> None:
    key = generate_key()
    registry.register("h1", key.public_key())
    invented = Challenge(ORIGIN, t0, bytes(32)).encode()
    with pytest.raises(AuthError, match="challenge unknown"):
        verify_challenge_response(registry, "h1", invented, sign_challenge(key, invented), now=t0)


def test_challenge_with_an_altered_timestamp_is_refused(
    registry: NodeRegistry, t0: datetime
) -> None:
    key = generate_key()
    registry.register("h1", key.public_key())
    issued = Challenge.parse(registry.new_challenge(now=t0))
    later = Challenge(issued.origin, t0 + timedelta(minutes=5), issued.nonce).encode()
    with pytest.raises(AuthError, match="challenge unknown"):
        verify_challenge_response(
            registry, "h1", later, sign_challenge(key, later), now=t0 + timedelta(minutes=5)
        )


def test_challenge_of_another_hub_is_refused_on_both_sides(
    engine: Engine, registry: NodeRegistry, t0: datetime
) -> None:
    key = generate_key()
    registry.register("h1", key.public_key())
    elsewhere = NodeRegistry(engine, origin="https://evil.test").new_challenge(now=t0)
    with pytest.raises(AuthError, match="names a different hub"):
        sign_challenge(key, elsewhere, expected_origin=ORIGIN)
    with pytest.raises(AuthError, match="issued by another hub"):
        verify_challenge_response(registry, "h1", elsewhere, sign_challenge(key, elsewhere), now=t0)


@pytest.mark.parametrize(
    "challenge",
    [
        b"",  # empty
        b"hello",  # not a challenge
        b"medspace-node-challenge-v1\nhttps://hub.test:8443\n1740819600\nzz",  # bad hex nonce
        b"medspace-node-challenge-v1\nhttps://hub.test:8443\n1740819600\n" + b"ab" * 16,  # short
        b"other-v1\nhttps://hub.test:8443\n1740819600\n" + b"ab" * 32,  # wrong magic
        b"\xff" * 100,  # not ASCII
        b"x" * 5000,  # too long
    ],
)
def test_malformed_challenge_is_refused(registry: NodeRegistry, challenge: bytes) -> None:
    with pytest.raises(AuthError, match="malformed challenge"):
        verify_challenge_response(registry, "h1", challenge, bytes(64))
    with pytest.raises(AuthError, match="malformed challenge"):
        sign_challenge(generate_key(), challenge)


def test_node_cannot_be_registered_twice_or_share_a_key(registry: NodeRegistry) -> None:
    key = generate_key()
    registry.register("h1", key.public_key())
    with pytest.raises(NodeKeyError, match="already registered; remove it first"):
        registry.register("h1", generate_key().public_key())
    with pytest.raises(NodeKeyError, match="already registered to another node"):
        registry.register("h2", key.public_key())
    assert [n.name for n in registry.nodes()] == ["h1"]
    assert registry.nodes()[0].public_key == public_key_text(key)


@pytest.mark.parametrize(
    "key",
    [
        "not base64!",  # not base64
        "AAAA",  # base64 but 3 bytes
        b"\x00" * 31,  # raw but short
    ],
)
def test_malformed_public_key_is_refused(registry: NodeRegistry, key: str | bytes) -> None:
    with pytest.raises(NodeKeyError, match="copy it again"):
        registry.register("h1", key)


def test_old_challenges_are_purged(registry: NodeRegistry, t0: datetime) -> None:
    registry.new_challenge(now=t0)
    registry.new_challenge(now=t0 + timedelta(minutes=5))
    assert registry.purge_challenges(now=t0 + timedelta(minutes=5)) == 1
