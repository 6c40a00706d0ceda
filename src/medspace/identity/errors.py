"""Errors of the identity component: users, tokens, node keys and certificates.

Messages say what was wrong and what to do next. They never echo passwords, tokens or
key material, and they do not reveal whether a user name exists.
"""

from __future__ import annotations

from medspace.errors import ConfigError, MedSpaceError, NotFoundError, UsageError


class IdentityError(MedSpaceError):
    """Base of every identity error."""


class AuthError(IdentityError):
    """Authentication failed: unknown, expired, forged or malformed credentials.

    Maps to HTTP 401: the caller must log in again (users) or reconnect (nodes).
    """

    exit_code = 6
    http_status = 401


class InvalidUserError(IdentityError, UsageError):
    """A user value breaks a rule (name pattern, role and node binding, weak password)."""


class DuplicateUserError(IdentityError):
    """A user with that name already exists."""

    exit_code = 2
    http_status = 409


class UnknownUserError(IdentityError, NotFoundError):
    """No user has that name."""


class NodeKeyError(IdentityError, UsageError):
    """A node name or node public key cannot be registered (bad name, bad key, duplicate)."""


class CertError(IdentityError, ConfigError):
    """Certificates cannot be created (directory exists, bad host name, missing CA)."""


class UserKeyError(IdentityError):
    """A user's signing key cannot be used: missing, already registered, retired, or a
    signature that does not verify against it. Maps to HTTP 403."""

    exit_code = 7
    http_status = 403


class UserKeyExists(UserKeyError):
    """The user already has a registered key; only an admin may reset it."""

    exit_code = 8
    http_status = 409


class SignatureRequired(UserKeyError):
    """The action must be signed by the user's key. Carries the entry drafts the hub will
    log, for the client to check and sign (HTTP 428: nothing happened yet)."""

    exit_code = 7
    http_status = 428

    def __init__(self, message: str, drafts: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.drafts = drafts
