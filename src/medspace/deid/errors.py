"""Errors of the de-identification engine. Messages never quote the text being scrubbed."""

from __future__ import annotations

from medspace.errors import CryptoError, MedSpaceError, UsageError


class DeidError(MedSpaceError):
    """Base of every de-identification error."""


class UnknownPackError(DeidError, UsageError):
    """A rule pack name that is not registered was asked for."""


class PackError(DeidError, UsageError):
    """A rule pack file is malformed (unknown action, missing section)."""


class TableError(DeidError, UsageError):
    """A table cannot be anonymised as asked (unknown column, empty table, bad target)."""


class FhirError(DeidError, UsageError):
    """A FHIR input is not a resource, a Bundle or NDJSON of resources."""


class PseudonymError(DeidError, CryptoError):
    """A pseudonym cannot be reversed: wrong key, wrong domain, or a tampered token."""


class KeyMissingError(DeidError, UsageError):
    """The rule pack needs a key (pseudonyms, surrogates, date shifts) and none was given."""
