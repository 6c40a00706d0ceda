"""Generalisation hierarchies: how a quasi-identifier's values become coarser, level by level.

Level 0 is the value as written (after any top-coding the pack requires); the last level is
"*". `encode` turns a column into integer codes for every level at once, working on the
distinct values only, so a column of 100,000 rows with 100 ages costs 100 label calls.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

TOP = "*"
IntArray = npt.NDArray[np.int64]


class Hierarchy(Protocol):
    """Generalises one value to a level (0 = as written, `levels - 1` = "*")."""

    @property
    def levels(self) -> int:
        """Number of levels including 0 and the top."""
        ...

    def generalise(self, value: str, level: int) -> str:
        """The value's label at `level`."""
        ...


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class IntervalHierarchy:
    """Numbers (ages) to intervals of growing width: 47 -> 45-49 -> 40-49 -> 40-59 -> *.

    `top_code` (e.g. 90) puts every value at or above it into one "90+" group at every level,
    as HIPAA Safe Harbor requires for ages.
    """

    widths: tuple[int, ...] = (5, 10, 20)
    top_code: int | None = None

    @property
    def levels(self) -> int:
        """Exact, one level per width, and the top."""
        return len(self.widths) + 2

    def generalise(self, value: str, level: int) -> str:
        """The interval holding `value` at `level`; non-numbers stay as written, then "*"."""
        if level >= self.levels - 1:
            return TOP
        number = _number(value)
        if number is None:
            return value if level == 0 else TOP
        if self.top_code is not None and number >= self.top_code:
            return f"{self.top_code}+"
        if level == 0:
            return value
        width = self.widths[level - 1]
        low = int(number // width * width)
        high = low + width - 1
        if self.top_code is not None:
            high = min(high, self.top_code - 1)
        return f"{low}-{high}"


@dataclass(frozen=True)
class DateHierarchy:
    """ISO dates: 2024-03-05 -> 2024-03 -> 2024 -> 2020-2029 -> *."""

    @property
    def levels(self) -> int:
        """Day, month, year, decade, top."""
        return 5

    def generalise(self, value: str, level: int) -> str:
        """The date at month, year or decade precision."""
        if level >= self.levels - 1:
            return TOP
        text = value.strip()
        if len(text) < 4 or not text[:4].isdigit():
            return value if level == 0 else TOP
        if level == 0:
            return text[:10]
        if level == 1:
            return text[:7]
        if level == 2:
            return text[:4]
        decade = int(text[:4]) // 10 * 10
        return f"{decade}-{decade + 9}"


@dataclass(frozen=True)
class PrefixHierarchy:
    """Codes by masking trailing characters: ZIP 02139 -> 0213* -> 021** -> ... -> *.

    `restricted` lists prefixes at `restricted_level` that must become zeros (HIPAA's
    three-digit ZIP areas of 20,000 people or fewer become "000").
    """

    length: int = 5
    restricted: frozenset[str] = frozenset()
    restricted_level: int = 2

    @property
    def levels(self) -> int:
        """One level per masked character, then the top."""
        return self.length + 1

    def generalise(self, value: str, level: int) -> str:
        """`value` with its last `level` characters masked."""
        if level >= self.levels - 1:
            return TOP
        text = value.strip()
        if level == 0:
            return text
        keep = max(0, len(text) - level)
        head = text[:keep]
        if self.restricted and level >= self.restricted_level:
            area = text[: self.length - self.restricted_level]
            if area in self.restricted:
                head = "0" * len(head)
        return head + "*" * (len(text) - keep)


# ICD-10 (WHO 2019) chapters by the range of three-character categories they hold.
_ICD10_CHAPTERS: tuple[tuple[str, str, str], ...] = (
    ("A00", "B99", "I"), ("C00", "D48", "II"), ("D50", "D89", "III"), ("E00", "E90", "IV"),
    ("F00", "F99", "V"), ("G00", "G99", "VI"), ("H00", "H59", "VII"), ("H60", "H95", "VIII"),
    ("I00", "I99", "IX"), ("J00", "J99", "X"), ("K00", "K93", "XI"), ("L00", "L99", "XII"),
    ("M00", "M99", "XIII"), ("N00", "N99", "XIV"), ("O00", "O99", "XV"), ("P00", "P96", "XVI"),
    ("Q00", "Q99", "XVII"), ("R00", "R99", "XVIII"), ("S00", "T98", "XIX"), ("V01", "Y98", "XX"),
    ("Z00", "Z99", "XXI"), ("U00", "U99", "XXII"),
)  # fmt: skip


def icd10_chapter(code: str) -> str | None:
    """The chapter ("IX I00-I99") of an ICD-10 code, or None if it is not one."""
    category = code.strip().upper()[:3]
    if len(category) != 3 or not category[0].isalpha() or not category[1:].isdigit():
        return None
    for low, high, numeral in _ICD10_CHAPTERS:
        if low <= category <= high:
            return f"{numeral} {low}-{high}"
    return None


@dataclass(frozen=True)
class ICD10Hierarchy:
    """ICD-10 codes: I21.4 -> I21 -> chapter IX (I00-I99) -> *."""

    @property
    def levels(self) -> int:
        """Code, category, chapter, top."""
        return 4

    def generalise(self, value: str, level: int) -> str:
        """The code at category or chapter level."""
        if level >= self.levels - 1:
            return TOP
        if level == 0:
            return value.strip()
        chapter = icd10_chapter(value)
        if chapter is None:
            return TOP
        return value.strip().upper()[:3] if level == 1 else chapter


@dataclass(frozen=True)
class CategoricalHierarchy:
    """A value or nothing: sex, ethnicity."""

    @property
    def levels(self) -> int:
        """Value, top."""
        return 2

    def generalise(self, value: str, level: int) -> str:
        """The value at level 0, else "*"."""
        return value if level == 0 else TOP


@dataclass(frozen=True)
class MappingHierarchy:
    """User-given levels: each mapping sends a level's label to the next (district -> city ->
    province). A label missing from a mapping goes to "*"."""

    steps: tuple[Mapping[str, str], ...]

    @property
    def levels(self) -> int:
        """Value, one level per mapping, top."""
        return len(self.steps) + 2

    def generalise(self, value: str, level: int) -> str:
        """Follow the mappings `level` times."""
        if level >= self.levels - 1:
            return TOP
        label = value
        for step in self.steps[:level]:
            label = step.get(label, TOP)
        return label


@dataclass(frozen=True)
class EncodedColumn:
    """A column's integer codes at every level, with what each code stands for."""

    codes: tuple[IntArray, ...]  # per level: one code per row
    labels: tuple[tuple[str, ...], ...]  # per level: label of each code
    loss: tuple[npt.NDArray[np.float64], ...]  # per level: information loss of each code

    @property
    def levels(self) -> int:
        """Number of levels."""
        return len(self.codes)


def factorise(values: Sequence[str]) -> tuple[list[str], IntArray]:
    """Distinct values (in first-seen order) and each value's index among them.

    A dict lookup per value: much faster than sorting an object array of strings.
    """
    index: dict[str, int] = {}
    codes = np.fromiter(
        (index.setdefault(v, len(index)) for v in values), dtype=np.int64, count=len(values)
    )
    return list(index), codes


def encode(values: Sequence[str], hierarchy: Hierarchy) -> EncodedColumn:
    """Codes of `values` at every level of `hierarchy`.

    The loss of a generalised value is (distinct original values it covers - 1) / (distinct
    values in the column - 1), the "Loss" metric of Iyengar (2002) as used by ARX; "*" is 1.
    """
    distinct, inverse = factorise(values)
    n_distinct = len(distinct)
    codes: list[IntArray] = []
    labels: list[tuple[str, ...]] = []
    losses: list[npt.NDArray[np.float64]] = []
    for level in range(hierarchy.levels):
        per_distinct = [hierarchy.generalise(v, level) for v in distinct]
        level_labels, level_of_distinct = factorise(per_distinct)
        covered = np.bincount(level_of_distinct, minlength=len(level_labels)).astype(np.float64)
        loss = (covered - 1) / (n_distinct - 1) if n_distinct > 1 else np.zeros(len(level_labels))
        if TOP in level_labels:
            loss[level_labels.index(TOP)] = 1.0
        codes.append(level_of_distinct[inverse])
        labels.append(tuple(str(x) for x in level_labels))
        losses.append(loss)
    return EncodedColumn(tuple(codes), tuple(labels), tuple(losses))
