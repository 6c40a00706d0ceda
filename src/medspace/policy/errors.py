"""Errors of the policy component.

Messages say what was wrong and what to do; they never contain patient data (no
pseudonyms, no justification text, no field values).
"""

from __future__ import annotations

from medspace.errors import MedSpaceError, NotFoundError, UsageError


class PolicyError(MedSpaceError):
    """Base of every policy error."""


class ProjectError(PolicyError, UsageError):
    """Project terms are invalid, or a lifecycle transition is not possible now."""


class PolicyDenied(PolicyError):
    """`decide()` denied the action; raised by `Decision.require()`. Maps to HTTP 403."""

    exit_code = 7
    http_status = 403

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class UnknownProjectError(PolicyError, NotFoundError):
    """No project has that id."""


class ConcurrentUpdateError(PolicyError):
    """Someone else changed the project at the same moment; read it again and retry."""

    exit_code = 8
    http_status = 409


class RecordError(PolicyError):
    """A decision could not be recorded, so it must not take effect."""
