"""Errors of secure aggregation, under one base that names the nodes at fault.

The hub ledgers and reports a rejected node, so every error carries `nodes`: the names
of the nodes whose data was malformed or inconsistent (empty when the fault is the
caller's, e.g. too many dropouts). Messages never contain vector values.
"""

from __future__ import annotations

from collections.abc import Iterable

from medspace.errors import CryptoError, MedSpaceError, UsageError


class SecAggError(MedSpaceError):
    """A secure-aggregation step was refused; `nodes` names the nodes at fault, if any."""

    http_status = 502  # the hub relays node data: bad data from a node is a bad gateway

    def __init__(self, message: str, *, nodes: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.nodes: tuple[str, ...] = tuple(sorted(set(nodes)))


class FixedPointError(SecAggError, UsageError):
    """A value cannot be encoded: not finite, not a number, or out of the stated range."""

    http_status = 400


class PeerKeyChangedError(SecAggError, CryptoError):
    """A peer's agreement key differs from the one pinned on first use."""

    http_status = 409


class InconsistentSharesError(SecAggError):
    """Secret shares or revealed seeds do not agree with what their owner committed to."""
