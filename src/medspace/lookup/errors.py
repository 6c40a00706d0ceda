"""Errors of the emergency lookup. Each maps to one exit code and one HTTP status.

Messages say what was wrong and what to do; they never quote an identifier, a name or a
summary (an ID with a wrong check digit is reported as such, never echoed).
"""

from __future__ import annotations

from medspace.errors import CryptoError, MedSpaceError, UsageError


class EmergencyLookupError(MedSpaceError):
    """Base of every lookup error (named so it does not shadow Python's `LookupError`)."""


class LookupInputError(EmergencyLookupError, UsageError):
    """The clinician's input is unusable (no identity given, no justification, bad date)."""


class LookupDenied(EmergencyLookupError):
    """Policy refused the lookup (wrong role, purpose not allowed, break-glass disabled)."""

    exit_code = 7
    http_status = 403


class RequestRejected(EmergencyLookupError):
    """A signed lookup request failed a check: signature, freshness, replay, peer key."""

    exit_code = 7
    http_status = 403


class SealError(EmergencyLookupError, CryptoError):
    """A sealed answer could not be opened (wrong key, altered ciphertext, wrong binding)."""


class ReviewError(EmergencyLookupError, UsageError):
    """A review command named an unknown event or asked for something malformed."""


class LookupLogError(EmergencyLookupError):
    """The node's lookup log (`lookup.db`) could not be read or written."""
