"""Roles and the `User` value type, with the role-to-node binding enforced.

A steward governs one node and a clinician works at one node, so both must name that
node; researchers, auditors and admins act network-wide and must not name one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from medspace.identity.errors import InvalidUserError

USER_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
NODE_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class Role(StrEnum):
    """What a user may do in the network; the policy engine keys its rules on it."""

    RESEARCHER = "researcher"
    STEWARD = "steward"
    CLINICIAN = "clinician"
    AUDITOR = "auditor"
    ADMIN = "admin"

    @property
    def node_bound(self) -> bool:
        """True for roles that act for exactly one node (steward, clinician)."""
        return self in (Role.STEWARD, Role.CLINICIAN)

    @classmethod
    def parse(cls, text: str) -> Role:
        """Parse a role name; raises `InvalidUserError` naming the valid roles."""
        try:
            return cls(text)
        except ValueError:
            valid = ", ".join(r.value for r in cls)
            raise InvalidUserError(f"unknown role; use one of: {valid}") from None


def check_node_name(node: str) -> str:
    """Return `node` if it is a valid node name, else raise `InvalidUserError`."""
    if not isinstance(node, str) or not NODE_NAME_PATTERN.fullmatch(node):
        raise InvalidUserError(
            "invalid node name; use 1-63 lowercase letters, digits or '-', "
            "starting with a letter or digit (e.g. 'h1')"
        )
    return node


@dataclass(frozen=True, slots=True)
class User:
    """A person who uses the network: name, role and (for stewards and clinicians) node.

    Raises `InvalidUserError` when the name is malformed or the node binding is wrong.
    """

    name: str
    role: Role
    node: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not USER_NAME_PATTERN.fullmatch(self.name):
            raise InvalidUserError(
                "invalid user name; use 1-128 letters, digits or '._@-', "
                "starting with a letter or digit"
            )
        if not isinstance(self.role, Role):
            raise InvalidUserError("role must be a Role; parse text with Role.parse()")
        if self.role.node_bound:
            if self.node is None:
                raise InvalidUserError(
                    f"a {self.role.value} is bound to one node; give the node name"
                )
            check_node_name(self.node)
        elif self.node is not None:
            raise InvalidUserError(
                f"a {self.role.value} acts network-wide and must not be bound to a node; "
                "leave the node empty"
            )
