"""Errors of the ledger. Messages name what failed and what to do; they never quote entry
values (an entry that was refused may hold data that should not have been there)."""

from __future__ import annotations

from medspace.errors import CryptoError, MedSpaceError, NotFoundError, UsageError


class LedgerError(MedSpaceError):
    """Base of every ledger error."""


class CanonicalError(LedgerError, UsageError):
    """A value cannot be written as canonical JSON (RFC 8785), or bytes are not canonical."""


class EntryError(LedgerError, UsageError):
    """An entry breaks the ledger schema (unknown type or field, malformed value, too large)."""


class SignatureError(LedgerError, CryptoError):
    """A signature is missing, made by an unknown key, or does not verify."""


class ProofError(LedgerError, CryptoError):
    """An inclusion or consistency proof does not verify, or was asked for impossible sizes."""


class ConsistencyError(ProofError):
    """Two tree heads of one log cannot both be true: the newer one does not extend the older."""

    def __init__(self, message: str, *, old_size: int, new_size: int) -> None:
        super().__init__(message)
        self.old_size = old_size
        self.new_size = new_size


class ForkDetected(ConsistencyError):
    """The log showed a history that contradicts one already cosigned: a fork or a rewrite."""


class CheckpointError(LedgerError, CryptoError):
    """A checkpoint or signed note is malformed or its log signature does not verify."""


class RollbackRefused(CheckpointError):
    """A witness was shown a checkpoint older than the one it already cosigned."""


class WitnessStateMismatch(CheckpointError):
    """The consistency proof starts from a size other than the witness's latest cosigned one.

    `witness_size` tells the log which proof to send instead (as a C2SP witness answers 409).
    """

    def __init__(self, message: str, *, witness_size: int) -> None:
        super().__init__(message)
        self.witness_size = witness_size


class NotFinal(LedgerError):
    """A checkpoint does not (yet) carry the quorum of witness cosignatures it needs."""

    exit_code = 6
    http_status = 409


class LogStateError(LedgerError):
    """The log's tables are missing or do not fit together (not initialised, wrong origin)."""

    exit_code = 4
    http_status = 500


class EntryNotFound(LedgerError, NotFoundError):
    """An entry index or checkpoint size that was asked for is not in the log."""
