"""Privacy-preserving record linkage for the emergency lookup.

A node turns an identity (national ID, name, birth date, sex) into linkage tokens under the
network linkage key, which every node holds and the hub never does: an exact token (keyed
HMAC of the normalised national ID), a CLK (keyed Bloom-filter encoding of name, birth date
and sex, compared by Dice coefficient) and block keys (keyed hashes that let a probe read a
few candidates through an index), and, when known, keyed tokens of the phone and address
that confirm or contradict a fuzzy candidate (`medspace.linkage.evidence`). Nodes index
their patients' tokens at ingest; a lookup sends tokens, never the identity, and each node
answers from an index probe.

Public API: `LinkageKey` (`read_key_file`, `write_key_file`), `tokens_for` (from what a
clinician typed), `tokens_for_patients`, `LinkageTokens` (JSON round-trip), `probe` ->
`Match`, `LinkageIndexer` / `rebuild_index` (the store side), `evaluate` (precision and
recall on synthetic hospitals). See docs/linkage.md.
"""

from medspace.linkage.bloom import DEFAULT_SCHEMA, ClkSchema, dice
from medspace.linkage.errors import LinkageInputError, LinkageKeyError
from medspace.linkage.index import (
    DEFAULT_THRESHOLD,
    LinkageIndexer,
    Match,
    ensure_table,
    probe,
    write_tokens,
)
from medspace.linkage.key import KEY_FILE, LinkageKey, read_key_file, write_key_file
from medspace.linkage.tokens import LinkageTokens, TokenMaker, tokens_for, tokens_for_patients

__all__ = [
    "DEFAULT_SCHEMA",
    "DEFAULT_THRESHOLD",
    "KEY_FILE",
    "ClkSchema",
    "LinkageIndexer",
    "LinkageInputError",
    "LinkageKey",
    "LinkageKeyError",
    "LinkageTokens",
    "Match",
    "TokenMaker",
    "dice",
    "ensure_table",
    "probe",
    "read_key_file",
    "tokens_for",
    "tokens_for_patients",
    "write_key_file",
    "write_tokens",
]
