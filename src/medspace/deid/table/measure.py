"""Privacy measures of a table over its quasi-identifiers, vectorised with numpy.

Equivalence classes are the groups of records with equal quasi-identifier values.

- k-anonymity: the size of the smallest class;
- l-diversity: distinct (fewest distinct sensitive values in a class) and entropy
  (exp of the lowest class entropy, Machanavajjhala et al. 2007);
- t-closeness: the largest Earth Mover's Distance between a class's sensitive-value
  distribution and the whole table's (Li et al. 2007): half the L1 distance for categorical
  values, the ordered distance for numbers (as pycanon computes them);
- re-identification risk (El Emam; ARX): prosecutor (the attacker knows the person is in
  the data: 1/class size), journalist (the attacker matches against a population: 1/size of
  the matching population class), marketer (expected share of records re-identified).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
_BINCOUNT_LIMIT = 1 << 24  # combined key space up to which counting uses bincount


@dataclass(frozen=True)
class Classes:
    """Equivalence classes: which class each record is in, and each class's size."""

    index: IntArray  # per record: class number
    sizes: IntArray  # per class: number of records

    @property
    def count(self) -> int:
        """Number of classes."""
        return len(self.sizes)

    def size_of_record(self) -> IntArray:
        """Per record: the size of its class."""
        return self.sizes[self.index]


def combine(codes: Sequence[IntArray], cardinalities: Sequence[int]) -> IntArray:
    """One integer key per record that is equal exactly when all codes are equal."""
    n = len(codes[0]) if codes else 0
    key = np.zeros(n, dtype=np.int64)
    space = 1
    for column, card in zip(codes, cardinalities, strict=True):
        card = max(int(card), 1)
        if space * card >= 1 << 62:  # would overflow: renumber what we have so far
            _, key = np.unique(key, return_inverse=True)
            key = key.astype(np.int64).reshape(-1)
            space = int(key.max()) + 1 if n else 1
        key = key * card + column
        space *= card
    return key


def classes_of(key: IntArray) -> Classes:
    """Equivalence classes of records by their combined key."""
    if len(key) == 0:
        return Classes(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    top = int(key.max()) + 1
    if top <= max(_BINCOUNT_LIMIT, 4 * len(key)):
        counts = np.bincount(key, minlength=top)
        present = np.flatnonzero(counts)
        renumber = np.full(top, -1, dtype=np.int64)
        renumber[present] = np.arange(len(present), dtype=np.int64)
        return Classes(renumber[key], counts[present].astype(np.int64))
    _, index, sizes = np.unique(key, return_inverse=True, return_counts=True)
    return Classes(index.astype(np.int64).reshape(-1), sizes.astype(np.int64))


def k_anonymity(classes: Classes) -> int:
    """Size of the smallest class (0 for an empty table)."""
    return int(classes.sizes.min()) if classes.count else 0


def _contingency(classes: Classes, sensitive: IntArray, values: int) -> tuple[IntArray, IntArray]:
    """(class, value) pairs present and their counts."""
    pair = classes.index * values + sensitive
    pairs, counts = np.unique(pair, return_counts=True)
    return pairs // values, counts.astype(np.int64)


def l_diversity(classes: Classes, sensitive: IntArray) -> int:
    """Distinct l-diversity: fewest distinct sensitive values in any class."""
    if not classes.count:
        return 0
    values = int(sensitive.max()) + 1
    cls, _ = _contingency(classes, sensitive, values)
    distinct = np.bincount(cls, minlength=classes.count)
    return int(distinct.min())


def entropy_l_diversity(classes: Classes, sensitive: IntArray) -> float:
    """Entropy l-diversity: exp(lowest entropy of a class's sensitive values), natural log."""
    if not classes.count:
        return 0.0
    values = int(sensitive.max()) + 1
    cls, counts = _contingency(classes, sensitive, values)
    p = counts / classes.sizes[cls]
    entropy = np.zeros(classes.count)
    np.add.at(entropy, cls, -p * np.log(p))
    return float(np.exp(entropy.min()))


def t_closeness(classes: Classes, sensitive: IntArray, *, ordered: bool) -> float:
    """Largest EMD between a class's sensitive distribution and the table's.

    `sensitive` holds codes in value order (np.unique order), which `ordered` uses.
    """
    if not classes.count:
        return 0.0
    m = int(sensitive.max()) + 1
    n = len(sensitive)
    overall = np.bincount(sensitive, minlength=m) / n
    worst = 0.0
    block = max(1, (1 << 22) // m)  # classes per block, to bound memory
    for first in range(0, classes.count, block):
        last = min(classes.count, first + block)
        rows = (classes.index >= first) & (classes.index < last)
        local = (classes.index[rows] - first) * m + sensitive[rows]
        counts = np.bincount(local, minlength=(last - first) * m).reshape(last - first, m)
        q = counts / classes.sizes[first:last, None]
        diff = q - overall
        if ordered and m > 1:
            emd = np.abs(np.cumsum(diff, axis=1)).sum(axis=1) / (m - 1)
        else:
            emd = 0.5 * np.abs(diff).sum(axis=1)
        worst = max(worst, float(emd.max()))
    return worst


@dataclass(frozen=True)
class Risk:
    """Re-identification risk under the three attacker models."""

    prosecutor_max: float
    prosecutor_avg: float
    journalist_max: float
    marketer: float  # (1/n) sum over classes of f/F: equals prosecutor_avg without a population
    records_at_risk: float  # share of records whose prosecutor risk exceeds the threshold
    threshold: float
    population: bool  # whether journalist/marketer used a population table


def risk(
    classes: Classes,
    *,
    threshold: float = 0.2,
    population_sizes: IntArray | None = None,
) -> Risk:
    """Risk measures. `population_sizes` gives, per class, the size of the matching class in a
    population table (journalist model); without it the sample is its own population and the
    journalist risk equals the prosecutor risk (an upper bound)."""
    n = int(classes.sizes.sum())
    if n == 0:
        return Risk(0.0, 0.0, 0.0, 0.0, 0.0, threshold, population_sizes is not None)
    f = classes.sizes.astype(np.float64)
    per_record = 1.0 / classes.size_of_record()
    big = population_sizes.astype(np.float64) if population_sizes is not None else f
    big = np.maximum(big, f)
    return Risk(
        prosecutor_max=float(1.0 / f.min()),
        prosecutor_avg=float(classes.count / n),
        journalist_max=float(1.0 / big.min()),
        marketer=float((f / big).sum() / n),
        records_at_risk=float((per_record > threshold).sum() / n),
        threshold=threshold,
        population=population_sizes is not None,
    )
