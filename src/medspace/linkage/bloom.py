"""Cryptographic long-term keys (CLKs): Bloom-filter encodings of name, birth date and sex.

After Schnell, Bachteler and Reiher (2009, 2011) as in clkhash/anonlink: every feature of a
record (a name's padded bigrams, the parts of its birth date, its sex) is hashed into one
bit array of `bits` bits (1,024 by default) by k hash functions, and two records are
compared by the Dice coefficient of their arrays, 2|A∩B| / (|A| + |B|). A typo changes only
a few bigrams, so the arrays of one person's two records stay close while the features
themselves cannot be read back without the key.

The k functions are keyed double hashing (Kirsch and Mitzenmacher 2006, as in Schnell's
original): one HMAC-SHA256 of the feature under a per-field key derived from the network
linkage key via HKDF gives two 64-bit numbers h1, h2 and the positions
(h1 + i·h2) mod bits, i = 0..k-1 (h2 forced odd, so with a power-of-two size the k
positions are distinct). The HMAC key makes a frequency or dictionary attack need the
key; each field has its own key, so a year "1980" and a bigram "19" never share positions.

Weights. Dates and sex set a fixed k bits per feature (year 40, month 25, day 25, whole
date 60, sex 40); a name field has a budget its features share (alphabetic 200, Han 80).
So the birth date and sex carry a bit under half of a Latin name's record and about two
thirds of a Han name's (Han names have two or three characters, each very informative),
which makes (a) one typo in a name (two or three of a dozen bigrams; one of a Han name's
characters) keep the score above the threshold, while (b) the same name with another birth
date and (c) another name with the same birth date fall below it. Han names are encoded as
characters plus padded bigrams. The weights and threshold were chosen on the synthetic
hospitals' noise (docs/linkage.md; `medspace node linkage evaluate`).

A CLK is a Python integer while it is built and compared: a feature's bits are a cached
integer mask, a record's CLK the OR of its masks, and the Dice coefficient two
`int.bit_count` calls, which beats numpy at 1,024 bits per record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from medspace.linkage.errors import LinkageInputError
from medspace.linkage.key import KeyedHash, LinkageKey
from medspace.linkage.normalise import NormalisedName

#: Fields in encoding order. "name": padded bigrams of alphabetic words; "han": Han
#: characters and padded bigrams; "year", "month", "day", "date": parts of the birth date
#: and the whole; "sex".
FIELDS = ("name", "han", "year", "month", "day", "date", "sex")
_PAD = "_"
_CACHE_PER_FIELD = 50_000


@dataclass(frozen=True, slots=True)
class ClkSchema:
    """Size of the bit array and hash functions per feature of each field (its weight)."""

    bits: int = 1024
    k_name: int = 200
    k_han: int = 80
    k_year: int = 40
    k_month: int = 25
    k_day: int = 25
    k_date: int = 60
    k_sex: int = 40

    def __post_init__(self) -> None:
        if not 64 <= self.bits <= 8192 or self.bits % 8:
            raise LinkageInputError("a CLK has 64 to 8,192 bits, a multiple of 8 (e.g. 1024)")
        if any(not 0 <= self.k(f) <= self.bits for f in FIELDS):
            raise LinkageInputError("hash functions per field must be 0 to the CLK's bits")

    def k(self, field: str) -> int:
        """Hash functions per feature of `field`; for "name" and "han", the field's budget
        shared among its features (see `ClkEncoder`)."""
        return int(getattr(self, f"k_{field}"))

    @property
    def tag(self) -> str:
        """A short name of these parameters, carried with a CLK so that CLKs made under
        other parameters are never compared."""
        ks = "-".join(str(self.k(f)) for f in FIELDS)
        return f"clk2/{self.bits}/{ks}"


DEFAULT_SCHEMA = ClkSchema()

Features = list[tuple[int, str]]  # (field number in FIELDS, feature text)


@lru_cache(maxsize=65536)
def _padded_bigrams(text: str) -> tuple[str, ...]:
    padded = _PAD + text + _PAD
    return tuple(padded[i : i + 2] for i in range(len(padded) - 1))


def features(name: NormalisedName, birth_date: date | None, sex: str | None) -> Features:
    """The features of a record: what the CLK encodes, before hashing.

    Alphabetic names give the padded bigrams of each word (a set: word order and repeated
    bigrams do not matter); Han names give each character and the padded bigrams of the
    whole name.
    """
    out: Features = []
    seen: set[str] = set()
    for word in name.words:
        for gram in _padded_bigrams(word):
            if gram not in seen:
                seen.add(gram)
                out.append((0, gram))
    if name.han:
        han = dict.fromkeys([*name.han, *_padded_bigrams(name.han)])
        out.extend((1, gram) for gram in han)
    if birth_date is not None:
        out.append((2, f"{birth_date.year:04d}"))
        out.append((3, f"{birth_date.month:02d}"))
        out.append((4, f"{birth_date.day:02d}"))
        out.append((5, birth_date.isoformat()))
    if sex is not None:
        out.append((6, sex))
    return out


class ClkEncoder:
    """Encodes feature lists into CLKs under one linkage key and schema.

    Dates and sex set a fixed k bits per feature. A name's field has a budget instead
    (clkhash's "bits per feature" strategy): its features share about k_name (k_han) bits,
    k = max(1, round(budget / features)) each, so a long name does not outweigh the birth
    date and a short one still counts. One typo changes a name's feature count by at most
    one, and k hash positions are a prefix of k + 1's, so few bits move.

    The bits of a feature depend only on the key, its field, its text and k, and features
    repeat a lot (bigrams, years, days), so each is computed once as an integer mask and
    cached (bounded); a CLK is the OR of its features' masks.
    """

    def __init__(self, key: LinkageKey, schema: ClkSchema = DEFAULT_SCHEMA) -> None:
        self.schema = schema
        self._hashes = [KeyedHash(key.derive(f"clk/{field}")) for field in FIELDS]
        self._k = [schema.k(field) for field in FIELDS]
        self._masks: list[dict[tuple[str, int], int]] = [{} for _ in FIELDS]
        self._bytes = schema.bits // 8

    def _mask(self, field: int, text: str, k: int) -> int:
        cache = self._masks[field]
        if len(cache) >= _CACHE_PER_FIELD:
            cache.clear()
        bits = self.schema.bits
        digest = self._hashes[field](text.encode("utf-8"))
        h1 = int.from_bytes(digest[:8], "big") % bits
        h2 = (int.from_bytes(digest[8:16], "big") | 1) % bits
        mask = 0
        for i in range(k):
            mask |= 1 << (bits - 1 - (h1 + i * h2) % bits)  # position 0 = first bit
        cache[(text, k)] = mask
        return mask

    def encode_one(self, record: Features) -> bytes:
        """The CLK of one feature list (bits/8 bytes, position 0 = most significant bit)."""
        ks = list(self._k)
        counts = [0, 0]
        for field, _ in record:
            if field < 2:
                counts[field] += 1
        for field in (0, 1):
            if counts[field]:
                ks[field] = max(1, round(ks[field] / counts[field]))
        masks = self._masks
        clk = 0
        for field, text in record:
            k = ks[field]
            mask = masks[field].get((text, k))
            clk |= mask if mask is not None else self._mask(field, text, k)
        return clk.to_bytes(self._bytes, "big")

    def encode(self, records: Sequence[Features]) -> list[bytes]:
        """One CLK per feature list."""
        return [self.encode_one(record) for record in records]


def dice(a: bytes, b: bytes) -> float:
    """Dice coefficient of two CLKs of the same length (0.0 when both are empty)."""
    if len(a) != len(b):
        raise LinkageInputError("CLKs of different lengths cannot be compared")
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    total = x.bit_count() + y.bit_count()
    return 2 * (x & y).bit_count() / total if total else 0.0
