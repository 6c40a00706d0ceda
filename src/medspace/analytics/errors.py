"""Errors of federated analytics. Messages never carry patient data: they name fields,
statistics and rule codes, never values of a person."""

from __future__ import annotations

from medspace.errors import MedSpaceError, UsageError


class AnalyticsError(MedSpaceError):
    """Base of every analytics error."""


class SpecError(AnalyticsError, UsageError):
    """A query spec is malformed or refers to something it does not define."""


class Refused(AnalyticsError):
    """The node (or hub) refuses to answer because the answer could disclose patients.

    `code` is a short machine-readable reason (e.g. "nfilter-cohort", "differencing").
    Maps to HTTP 403.
    """

    exit_code = 7
    http_status = 403

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class RegressionRefused(Refused):
    """A node's data fail the regression disclosure rules (DataSHIELD-style nfilter)."""


class DifferencingRefused(Refused):
    """The cohort differs from an earlier answered cohort by fewer than k patients."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="differencing")
