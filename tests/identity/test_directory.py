"""The user directory on SQLite and PostgreSQL: accounts, logins and token sessions."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from medspace.identity import (
    AuthError,
    DuplicateUserError,
    InvalidUserError,
    Role,
    ScryptParams,
    UnknownUserError,
    User,
    UserDirectory,
    generate_key,
    issue_token,
)
from medspace.identity.directory import users_table

PASSWORD = "a long enough passphrase"
ALICE = User("alice", Role.RESEARCHER)
LI = User("steward.li", Role.STEWARD, "h2")


@pytest.fixture
def directory(engine: Engine, fast_params: ScryptParams) -> UserDirectory:
    found = UserDirectory(engine, generate_key(), params=fast_params)
    found.add_user(ALICE, PASSWORD)
    found.add_user(LI, PASSWORD)
    return found


def test_added_users_can_be_read_back(directory: UserDirectory) -> None:
    assert directory.get("steward.li") == LI
    assert directory.users() == [ALICE, LI]


def test_duplicate_user_is_refused(directory: UserDirectory) -> None:
    with pytest.raises(DuplicateUserError, match="already exists"):
        directory.add_user(User("alice", Role.ADMIN), PASSWORD)
    assert directory.get("alice") == ALICE


def test_unknown_user_is_not_found(directory: UserDirectory) -> None:
    with pytest.raises(UnknownUserError, match="no user 'bob'"):
        directory.get("bob")


def test_weak_password_is_refused_and_nothing_is_stored(directory: UserDirectory) -> None:
    with pytest.raises(InvalidUserError, match="too short"):
        directory.add_user(User("bob", Role.AUDITOR), "short")
    with pytest.raises(UnknownUserError):
        directory.get("bob")


def test_right_password_authenticates(directory: UserDirectory) -> None:
    assert directory.authenticate("steward.li", PASSWORD) == LI


@pytest.mark.parametrize(
    ("name", "password"),
    [
        ("alice", "a wrong passphrase!!"),  # wrong password
        ("nobody", PASSWORD),  # unknown user: same message, no enumeration
        ("alice", ""),  # empty password
    ],
)
def test_failed_login_says_nothing_about_which_part_was_wrong(
    directory: UserDirectory, name: str, password: str
) -> None:
    with pytest.raises(AuthError, match=r"^unknown user or wrong password; check both"):
        directory.login(name, password)


def test_login_token_resolves_to_the_user(directory: UserDirectory, t0: datetime) -> None:
    token = directory.login("steward.li", PASSWORD, ttl=timedelta(hours=1), now=t0)
    assert directory.resolve(token, now=t0 + timedelta(minutes=30)) == LI


def test_expired_login_token_is_refused(directory: UserDirectory, t0: datetime) -> None:
    token = directory.login("alice", PASSWORD, ttl=timedelta(hours=1), now=t0)
    with pytest.raises(AuthError, match="token expired; log in again"):
        directory.resolve(token, now=t0 + timedelta(hours=1))


def test_token_of_another_hub_is_refused(
    directory: UserDirectory, engine: Engine, fast_params: ScryptParams, t0: datetime
) -> None:
    other = UserDirectory(engine, generate_key(), params=fast_params)
    token = other.login("alice", PASSWORD, now=t0)
    with pytest.raises(AuthError, match="signature is invalid"):
        directory.resolve(token, now=t0)


def test_validly_signed_token_without_a_session_is_unknown(
    engine: Engine, fast_params: ScryptParams, t0: datetime
) -> None:
    key = generate_key()
    directory = UserDirectory(engine, key, params=fast_params)
    directory.add_user(ALICE, PASSWORD)
    minted = issue_token(key, ALICE, timedelta(hours=1), now=t0)
    with pytest.raises(AuthError, match="unknown token"):
        directory.resolve(minted, now=t0)


def test_logout_revokes_the_token_at_once(directory: UserDirectory, t0: datetime) -> None:
    token = directory.login("alice", PASSWORD, now=t0)
    other = directory.login("alice", PASSWORD, now=t0)
    directory.logout(token, now=t0)
    with pytest.raises(AuthError, match="revoked"):
        directory.resolve(token, now=t0)
    assert directory.resolve(other, now=t0) == ALICE


def test_password_change_revokes_every_session(directory: UserDirectory, t0: datetime) -> None:
    token = directory.login("alice", PASSWORD, now=t0)
    directory.set_password("alice", "another long passphrase", now=t0)
    with pytest.raises(AuthError, match="revoked"):
        directory.resolve(token, now=t0)
    with pytest.raises(AuthError, match="wrong password"):
        directory.authenticate("alice", PASSWORD)
    assert directory.authenticate("alice", "another long passphrase") == ALICE


def test_disabled_account_cannot_log_in_and_loses_its_sessions(
    directory: UserDirectory, t0: datetime
) -> None:
    token = directory.login("alice", PASSWORD, now=t0)
    directory.disable("alice", now=t0)
    with pytest.raises(AuthError, match="revoked"):
        directory.resolve(token, now=t0)
    with pytest.raises(AuthError, match="disabled; ask an admin"):
        directory.login("alice", PASSWORD, now=t0)
    directory.enable("alice")
    assert directory.resolve(directory.login("alice", PASSWORD, now=t0), now=t0) == ALICE
    with pytest.raises(UnknownUserError):
        directory.disable("nobody")


def test_old_hashes_are_upgraded_at_login(engine: Engine, t0: datetime) -> None:
    key = generate_key()
    cheap = UserDirectory(engine, key, params=ScryptParams(log2_n=10))
    cheap.add_user(ALICE, PASSWORD)
    stronger = UserDirectory(engine, key, params=ScryptParams(log2_n=11))
    assert stronger.authenticate("alice", PASSWORD) == ALICE
    with engine.connect() as conn:
        stored = conn.execute(users_table.select()).one().password_hash
    assert stored.startswith("$scrypt$ln=11,")
    assert stronger.authenticate("alice", PASSWORD) == ALICE


def test_expired_sessions_are_purged(directory: UserDirectory, t0: datetime) -> None:
    directory.login("alice", PASSWORD, ttl=timedelta(hours=1), now=t0)
    directory.login("alice", PASSWORD, ttl=timedelta(hours=3), now=t0)
    assert directory.purge_sessions(now=t0 + timedelta(hours=2)) == 1
    assert directory.purge_sessions(now=t0 + timedelta(hours=2)) == 0
