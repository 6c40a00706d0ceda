"""The User value type enforces the role-to-node binding."""

from __future__ import annotations

import pytest

from medspace.identity import InvalidUserError, Role, User, check_node_name


@pytest.mark.parametrize("role", [Role.STEWARD, Role.CLINICIAN])
def test_node_bound_role_without_node_is_invalid(role: Role) -> None:
    with pytest.raises(InvalidUserError, match="bound to one node"):
        User("alice", role)


@pytest.mark.parametrize("role", [Role.RESEARCHER, Role.AUDITOR, Role.ADMIN])
def test_network_role_with_node_is_invalid(role: Role) -> None:
    with pytest.raises(InvalidUserError, match="must not be bound to a node"):
        User("alice", role, "h1")


@pytest.mark.parametrize("role", [Role.STEWARD, Role.CLINICIAN])
def test_node_bound_role_with_node_is_valid(role: Role) -> None:
    user = User("dr.wang@h1", role, "h1")
    assert (user.name, user.role, user.node) == ("dr.wang@h1", role, "h1")
    assert role.node_bound


@pytest.mark.parametrize(
    "name",
    [
        "",  # empty
        "-leading-dash",  # must start with a letter or digit
        "has space",  # spaces are not allowed
        "a" * 129,  # too long
        "名字",  # user names are ASCII handles; display names live elsewhere
    ],
)
def test_malformed_user_name_is_invalid(name: str) -> None:
    with pytest.raises(InvalidUserError, match="invalid user name"):
        User(name, Role.RESEARCHER)


@pytest.mark.parametrize(
    "node",
    [
        "H1",  # uppercase
        "h_1",  # underscore
        "",  # empty
        "h" * 64,  # too long
    ],
)
def test_malformed_node_name_is_invalid(node: str) -> None:
    with pytest.raises(InvalidUserError, match="invalid node name"):
        User("steward1", Role.STEWARD, node)
    with pytest.raises(InvalidUserError, match="invalid node name"):
        check_node_name(node)


def test_role_text_must_be_parsed() -> None:
    with pytest.raises(InvalidUserError, match="role must be a Role"):
        User("alice", "admin")  # type: ignore[arg-type]
    assert Role.parse("auditor") is Role.AUDITOR
    with pytest.raises(InvalidUserError, match="use one of: researcher, steward"):
        Role.parse("superuser")


def test_users_are_immutable_and_compare_by_value() -> None:
    user = User("alice", Role.RESEARCHER)
    assert user == User("alice", Role.RESEARCHER)
    with pytest.raises(AttributeError):
        user.role = Role.ADMIN  # type: ignore[misc]
