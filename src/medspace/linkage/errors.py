"""Errors of record linkage. Messages say what to fix; they never repeat an identifier."""

from __future__ import annotations

from medspace.errors import ConfigError, UsageError


class LinkageInputError(UsageError):
    """An identity given for linkage is malformed (wrong check digit, impossible date, no
    usable field). The message names the field and the rule, never the value."""


class LinkageKeyError(ConfigError):
    """The network linkage key file is missing, damaged, unsafe or of another network."""
