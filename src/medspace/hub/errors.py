"""Errors of the hub and the hub-node channel. Each maps to one exit code and HTTP status."""

from __future__ import annotations

from medspace.errors import ConfigError, MedSpaceError, UsageError


class HubError(MedSpaceError):
    """Base of every hub and channel error."""


class HubConfigError(HubError, ConfigError):
    """A hub directory is missing, incomplete or already initialised."""


class HubExistsError(HubConfigError):
    """`hub init` was pointed at a directory that already holds a hub."""


class ChannelError(HubError):
    """The hub-node channel broke a rule: bad signature, replayed or reordered message,
    unknown node, wrong hub key. The connection is closed; the node reconnects."""

    exit_code = 9
    http_status = 502


class TaskError(HubError, UsageError):
    """A task could not be sent (no approved node, project not active, bad query)."""


class HubUnreachable(HubError):
    """The hub did not answer (CLI side)."""

    exit_code = 10
    http_status = 503


class ProofRequestError(HubError, UsageError):
    """A proof was asked for sizes the log does not have."""
