"""Errors of the synthetic hospital generator."""

from __future__ import annotations

from medspace.errors import UsageError


class SynthError(UsageError):
    """The generator was asked for something it cannot make (bad size, locale, share or
    output directory). The message says which argument to change."""
