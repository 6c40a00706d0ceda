"""Spotting records repeated within one ingest run, and telling same from different.

A run remembers which (kind, source_id) keys it wrote in a scalable Bloom filter (two
bytes per record, so memory stays small for runs of millions of records). The filter
never misses a key it was given; a false "maybe" only costs one database lookup, where
the stored row (written by this run) is compared field by field with the new record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from medspace.model import Note, Patient, Record
from medspace.store import rows

_BITS_PER_KEY = 16  # with 3 probes per key: about 0.5 % false "maybe" per lookup
_LOW32 = 0xFFFFFFFF


class SeenFilter:
    """Scalable Bloom filter over (kind, source_id), 3 probes per key. No false negatives.

    Each segment holds `capacity` keys at 16 bits per key; when it is full, a segment four
    times larger is added. Probes use Python's per-process randomised `hash` (Kirsch and
    Mitzenmacher double hashing); the filter is never stored or sent anywhere.
    """

    def __init__(self, first_capacity: int = 1 << 16) -> None:
        self._segments: list[tuple[bytearray, int]] = []  # (bits, mask)
        self._room = 0
        self._next_capacity = first_capacity

    def add(self, key: tuple[str, str]) -> None:
        """Remember `key`."""
        if self._room == 0:
            bits = self._next_capacity * _BITS_PER_KEY  # a power of two
            self._segments.append((bytearray(bits // 8), bits - 1))
            self._room = self._next_capacity
            self._next_capacity *= 4
        bits_, mask = self._segments[-1]
        h = hash(key)
        low, step = h & _LOW32, ((h >> 32) & _LOW32) | 1
        for p in (low & mask, (low + step) & mask, (low + 2 * step) & mask):
            bits_[p >> 3] |= 1 << (p & 7)
        self._room -= 1

    def maybe_contains(self, key: tuple[str, str]) -> bool:
        """False if `key` was never added; True if it probably was."""
        h = hash(key)
        low, step = h & _LOW32, ((h >> 32) & _LOW32) | 1
        for bits, mask in self._segments:
            p = low & mask
            if not bits[p >> 3] & (1 << (p & 7)):
                continue
            p = (low + step) & mask
            if not bits[p >> 3] & (1 << (p & 7)):
                continue
            p = (low + 2 * step) & mask
            if bits[p >> 3] & (1 << (p & 7)):
                return True
        return False


def same_as_stored(
    record: Record, stored: Mapping[str, Any], open_sealed: Callable[[str], bytes]
) -> bool:
    """Whether `record` holds exactly what the stored row holds.

    Clear columns are compared as read back through SQLAlchemy; the sealed field
    (identity or note text) is decrypted with `open_sealed(column)` and compared as bytes.
    """
    new = rows.CLEAR_COLUMNS[type(record)](record)
    new["flags"] = rows.flags_text(record.flags)
    if any(stored[name] != value for name, value in new.items()):
        return False
    if isinstance(record, Patient):
        return open_sealed("identity_sealed") == rows.identity_to_json(record.identity)
    if isinstance(record, Note):
        return open_sealed("text_sealed") == record.text.encode("utf-8", "surrogatepass")
    return True
