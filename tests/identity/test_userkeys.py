"""User-held signing keys: the key file on the user's machine, the hub's register (one
active key per user, registration once, reset by an admin retires for good), the
registration proof, and a node's pinned steward keys."""

from __future__ import annotations

import base64
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medspace.errors import ConfigError
from medspace.identity import InvalidUserError, NodeKeyError, public_key_text
from medspace.identity.errors import UserKeyError, UserKeyExists
from medspace.identity.stewards import (
    StewardSignatureError,
    pin_steward,
    steward_pins,
    steward_ring,
    unpin_steward,
    verify_steward_entry,
)
from medspace.identity.userkeys import (
    UserKeyRegistry,
    check_fresh,
    check_registration,
    hub_dirname,
    load_or_create_user_key,
    registration_entry,
    user_key_path,
)
from medspace.ledger import Entry, EntryType, sign_entry, utc_timestamp

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
HUB = "https://hub.example:8443"


@pytest.fixture
def registry(tmp_path: Path) -> UserKeyRegistry:
    return UserKeyRegistry(sa.create_engine(f"sqlite:///{tmp_path / 'keys.db'}"))


# -- the key file -------------------------------------------------------------------------


def test_first_use_creates_a_private_key_readable_only_by_the_user(tmp_path: Path) -> None:
    key, created = load_or_create_user_key(tmp_path, HUB, "alice")
    path = user_key_path(tmp_path, HUB, "alice")
    assert created
    assert path == tmp_path / "keys" / "hub.example_8443" / "alice.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.with_suffix(".pub").read_text().strip() == public_key_text(key)


def test_the_same_key_is_loaded_on_later_logins(tmp_path: Path) -> None:
    first, _ = load_or_create_user_key(tmp_path, HUB, "alice")
    again, created = load_or_create_user_key(tmp_path, HUB, "alice")
    assert not created
    assert public_key_text(again) == public_key_text(first)


def test_each_hub_gets_its_own_key(tmp_path: Path) -> None:
    one, _ = load_or_create_user_key(tmp_path, "http://127.0.0.1:8000", "alice")
    two, _ = load_or_create_user_key(tmp_path, "http://127.0.0.1:9000", "alice")
    assert public_key_text(one) != public_key_text(two)
    assert hub_dirname("http://127.0.0.1") == "127.0.0.1_80"


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    load_or_create_user_key(tmp_path, HUB, "alice")
    user_key_path(tmp_path, HUB, "alice").chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        load_or_create_user_key(tmp_path, HUB, "alice")


@pytest.mark.parametrize("name", ["../bob", "a/b", ".hidden"])
def test_a_user_name_that_would_escape_the_key_directory_is_refused(
    tmp_path: Path, name: str
) -> None:
    with pytest.raises(UserKeyError, match="cannot name a key file"):
        user_key_path(tmp_path, HUB, name)


# -- registration proof and freshness -------------------------------------------------------


def test_a_registration_signed_by_the_new_key_is_accepted() -> None:
    key = Ed25519PrivateKey.generate()
    signed = sign_entry(registration_entry("alice", key.public_key(), NOW), key)
    check_registration(signed, "alice", key.public_key())
    check_fresh(signed.entry, NOW + timedelta(minutes=4))


def test_a_registration_signed_by_another_key_is_refused() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    signed = sign_entry(registration_entry("alice", key.public_key(), NOW), other)
    with pytest.raises(UserKeyError, match="signed by the key being registered"):
        check_registration(signed, "alice", key.public_key())


def test_a_registration_for_another_user_or_key_is_refused() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    for_bob = sign_entry(registration_entry("bob", key.public_key(), NOW), key)
    with pytest.raises(UserKeyError, match="key_rotation entry by you"):
        check_registration(for_bob, "alice", key.public_key())
    names_other = sign_entry(registration_entry("alice", other.public_key(), NOW), key)
    with pytest.raises(UserKeyError, match="key_rotation entry by you"):
        check_registration(names_other, "alice", key.public_key())


@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_an_entry_far_from_the_hubs_clock_is_refused(offset: timedelta) -> None:
    entry = Entry(type=EntryType.REQUEST, actor="alice", time=utc_timestamp(NOW + offset))
    with pytest.raises(UserKeyError, match="clock"):
        check_fresh(entry, NOW)


# -- the hub's register ---------------------------------------------------------------------


def test_the_first_registration_binds_the_key(registry: UserKeyRegistry) -> None:
    key = Ed25519PrivateKey.generate().public_key()
    key_id = registry.register("alice", key, NOW)
    active = registry.active("alice")
    assert active is not None and active.key_id == key_id
    assert registry.active("bob") is None


def test_registering_a_second_key_is_refused(registry: UserKeyRegistry) -> None:
    registry.register("alice", Ed25519PrivateKey.generate().public_key(), NOW)
    with pytest.raises(UserKeyExists, match="an admin must reset"):
        registry.register("alice", Ed25519PrivateKey.generate().public_key(), NOW)


def test_registering_the_same_key_twice_is_refused(registry: UserKeyRegistry) -> None:
    key = Ed25519PrivateKey.generate().public_key()
    registry.register("alice", key, NOW)
    with pytest.raises(UserKeyError, match="registered before"):
        registry.register("alice", key, NOW)


def test_another_users_key_cannot_be_registered(registry: UserKeyRegistry) -> None:
    key = Ed25519PrivateKey.generate().public_key()
    registry.register("alice", key, NOW)
    with pytest.raises(UserKeyError, match="registered before"):
        registry.register("bob", key, NOW)


def test_a_reset_retires_the_key_for_good(registry: UserKeyRegistry) -> None:
    old = Ed25519PrivateKey.generate().public_key()
    old_id = registry.register("alice", old, NOW)
    assert registry.reset("alice", NOW) == old_id
    assert registry.active("alice") is None
    assert registry.reset("alice", NOW) is None
    with pytest.raises(UserKeyError, match="registered before"):
        registry.register("alice", old, NOW)
    registry.register("alice", Ed25519PrivateKey.generate().public_key(), NOW)


# -- a node's pinned stewards ---------------------------------------------------------------


def _approval(key: Ed25519PrivateKey, actor: str = "steward-h1", **changes: object) -> str:
    fields: dict[str, object] = {
        "type": EntryType.APPROVAL,
        "actor": actor,
        "time": utc_timestamp(NOW),
        "node": "h1",
        "project": "diabetes",
        "artefacts": {"agreement": "sha256:" + "ab" * 32},
        "details": {"decision": "allow", "role": "steward"},
    }
    fields.update(changes)
    signed = sign_entry(Entry(**fields), key)  # type: ignore[arg-type]
    return base64.b64encode(signed.body).decode()


def _verify(tmp_path: Path, body: str | None, **expect: object) -> None:
    want: dict[str, object] = {
        "kind": EntryType.APPROVAL,
        "node": "h1",
        "project": "diabetes",
        "contract_hash": "ab" * 32,
    }
    want.update(expect)
    verify_steward_entry(body, steward_ring(tmp_path), **want)  # type: ignore[arg-type]


def test_pins_are_kept_replaced_and_removed(tmp_path: Path) -> None:
    first, second = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    pin_steward(tmp_path, "steward-h1", public_key_text(first))
    pin_steward(tmp_path, "steward-h1", public_key_text(second) + "\n")
    assert steward_pins(tmp_path) == {"steward-h1": public_key_text(second)}
    assert unpin_steward(tmp_path, "steward-h1")
    assert not unpin_steward(tmp_path, "steward-h1")
    assert steward_pins(tmp_path) == {}


def test_bad_pins_are_refused(tmp_path: Path) -> None:
    with pytest.raises(NodeKeyError):
        pin_steward(tmp_path, "steward-h1", "not a key")
    with pytest.raises(InvalidUserError):
        pin_steward(tmp_path, "../x", public_key_text(Ed25519PrivateKey.generate()))


def test_an_approval_by_a_pinned_steward_is_accepted(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pin_steward(tmp_path, "steward-h1", public_key_text(key))
    _verify(tmp_path, _approval(key))


def test_an_approval_signed_by_an_unpinned_key_is_refused(tmp_path: Path) -> None:
    pin_steward(tmp_path, "steward-h1", public_key_text(Ed25519PrivateKey.generate()))
    with pytest.raises(StewardSignatureError, match="not signed by a steward pinned"):
        _verify(tmp_path, _approval(Ed25519PrivateKey.generate()))


def test_an_approval_in_a_pinned_stewards_name_signed_by_the_hub_is_refused(
    tmp_path: Path,
) -> None:
    hub_key = Ed25519PrivateKey.generate()
    pin_steward(tmp_path, "steward-h1", public_key_text(Ed25519PrivateKey.generate()))
    pin_steward(tmp_path, "hub", public_key_text(hub_key))  # even a pinned other principal
    with pytest.raises(StewardSignatureError, match="not signed by a steward pinned"):
        _verify(tmp_path, _approval(hub_key))


def test_a_missing_or_garbled_approval_is_refused(tmp_path: Path) -> None:
    for body in (None, "", "!!!", base64.b64encode(b"{}").decode()):
        with pytest.raises(StewardSignatureError):
            _verify(tmp_path, body)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"project": "another"}, "another project or node"),  # replayed for another project
        ({"node": "h2"}, "another project or node"),  # replayed for another node
        ({"type": EntryType.DENIAL}, "another project or node"),  # a denial is no approval
        ({"artefacts": {"agreement": "sha256:" + "cd" * 32}}, "another contract"),
        ({"details": {"decision": "deny", "role": "steward"}}, "does not record an allow"),
    ],
)
def test_an_approval_for_anything_else_is_refused(
    tmp_path: Path, changes: dict[str, object], why: str
) -> None:
    key = Ed25519PrivateKey.generate()
    pin_steward(tmp_path, "steward-h1", public_key_text(key))
    with pytest.raises(StewardSignatureError, match=why):
        _verify(tmp_path, _approval(key, **changes))


def test_a_signed_entry_is_spent_once(registry: UserKeyRegistry) -> None:
    key = Ed25519PrivateKey.generate()
    signed = sign_entry(registration_entry("alice", key.public_key(), NOW), key)
    registry.spend(signed, NOW)
    with pytest.raises(UserKeyError, match="used before"):
        registry.spend(signed, NOW + timedelta(minutes=1))
    # Past twice the clock skew it is forgotten (check_fresh refuses it by then anyway).
    registry.spend(signed, NOW + timedelta(minutes=11))
