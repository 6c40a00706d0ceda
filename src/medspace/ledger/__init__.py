"""The tamper-evident ledger: an RFC 9162 Merkle log of signed entries, C2SP checkpoints
cosigned by node witnesses, inclusion and consistency proofs, and `audit_verify`.

Other components use only what is listed in `__all__`.
"""

from medspace.ledger.audit import EntryProof, prove, show
from medspace.ledger.batch import MAX_BATCH_ENTRIES, BatchRef
from medspace.ledger.canonical import canonical_bytes, parse_canonical
from medspace.ledger.checkpoint import (
    Checkpoint,
    Cosignature,
    CosignatureVerifier,
    Cosigner,
    SignedCheckpoint,
    sign_checkpoint,
)
from medspace.ledger.entry import (
    DETAIL_FIELDS,
    MAX_ENTRY_BYTES,
    DetailKind,
    Entry,
    EntrySigner,
    EntryType,
    SignedEntry,
    entry_key_id,
    sign_entry,
    utc_timestamp,
)
from medspace.ledger.errors import (
    CanonicalError,
    CheckpointError,
    ConsistencyError,
    EntryError,
    EntryNotFound,
    ForkDetected,
    LedgerError,
    LogStateError,
    NotFinal,
    ProofError,
    RollbackRefused,
    SignatureError,
    WitnessStateMismatch,
)
from medspace.ledger.group import GroupCommit
from medspace.ledger.keys import (
    KeyResolver,
    KeyRing,
    SignerKey,
    complete_batches,
    verify_entries,
    verify_entry,
)
from medspace.ledger.log import Log, LoggedEntry
from medspace.ledger.merkle import (
    leaf_hash,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from medspace.ledger.note import NoteSigner, NoteVerifier
from medspace.ledger.verify import Finding, TrustedHead, Verdict, audit_verify
from medspace.ledger.witness import Quorum, Witness, WitnessClient, request_cosignature

__all__ = [
    "DETAIL_FIELDS",
    "MAX_BATCH_ENTRIES",
    "MAX_ENTRY_BYTES",
    "BatchRef",
    "CanonicalError",
    "Checkpoint",
    "CheckpointError",
    "ConsistencyError",
    "Cosignature",
    "CosignatureVerifier",
    "Cosigner",
    "DetailKind",
    "Entry",
    "EntryError",
    "EntryNotFound",
    "EntryProof",
    "EntrySigner",
    "EntryType",
    "Finding",
    "ForkDetected",
    "GroupCommit",
    "KeyResolver",
    "KeyRing",
    "LedgerError",
    "Log",
    "LogStateError",
    "LoggedEntry",
    "NotFinal",
    "NoteSigner",
    "NoteVerifier",
    "ProofError",
    "Quorum",
    "RollbackRefused",
    "SignatureError",
    "SignedCheckpoint",
    "SignedEntry",
    "SignerKey",
    "TrustedHead",
    "Verdict",
    "Witness",
    "WitnessClient",
    "WitnessStateMismatch",
    "audit_verify",
    "canonical_bytes",
    "complete_batches",
    "entry_key_id",
    "leaf_hash",
    "parse_canonical",
    "prove",
    "request_cosignature",
    "root_from_inclusion_proof",
    "show",
    "sign_checkpoint",
    "sign_entry",
    "utc_timestamp",
    "verify_consistency",
    "verify_entries",
    "verify_entry",
    "verify_inclusion",
]
