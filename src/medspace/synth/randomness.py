"""Seeded randomness: every draw comes from a `random.Random` derived from the run's seed.

The global `random` module is never used. A sub-seed is a hash of the run seed and a path
("person", 17), so each patient's data depends only on the seed and its own path and not
on how many draws came before it.
"""

from __future__ import annotations

import hashlib
import random


def subseed(seed: int, *path: object) -> int:
    """A 64-bit seed derived from `seed` and a path of ints and strings."""
    digest = hashlib.blake2b(repr((seed, *path)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rng_for(seed: int, *path: object) -> random.Random:
    """A fresh `random.Random` seeded with `subseed(seed, *path)`."""
    return random.Random(subseed(seed, *path))
