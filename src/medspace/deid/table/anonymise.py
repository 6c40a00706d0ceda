"""Generalise and suppress a table's quasi-identifiers until a privacy target holds, with the
least information loss.

The search walks the generalisation lattice (one level per quasi-identifier) from the
least general node. A node is feasible when, after suppressing the records of classes that
break the target (smaller than k, fewer than l distinct sensitive values, further than t),
no more than `max_suppression` of the records are suppressed. Among feasible nodes the one
with the lowest loss wins (Iyengar's Loss metric, suppressed cells counting 1). A node above
a feasible node that suppressed nothing is never better, so it is skipped (the pruning that
makes Flash/OLA-style searches fast); lattices above 20,000 nodes are climbed greedily.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from medspace.deid.errors import TableError
from medspace.deid.packs import RulePack, get_pack
from medspace.deid.recognizers.base import words
from medspace.deid.table.frame import Table
from medspace.deid.table.hierarchy import (
    TOP,
    CategoricalHierarchy,
    DateHierarchy,
    EncodedColumn,
    Hierarchy,
    ICD10Hierarchy,
    IntervalHierarchy,
    PrefixHierarchy,
    encode,
)
from medspace.deid.table.measure import (
    Classes,
    IntArray,
    classes_of,
    combine,
)
from medspace.deid.table.report import RiskReport, is_numeric, measure_table, sensitive_codes

_EXHAUSTIVE_LIMIT = 20_000

#: Column names (lower case) that are direct identifiers: dropped before anonymising.
DIRECT_IDENTIFIER_COLUMNS = frozenset(
    words(
        "name full_name first_name last_name family_name given_name patient_name surname ssn"
        " social_security national_id id_number resident_id passport mrn medical_record_number"
        " phone telephone mobile cell fax email e_mail address street address_line line"
        " 姓名 名字 身份证 身份证号 身份证号码 手机 手机号 电话 联系电话 住址 地址"
        " 家庭住址 病案号 住院号 医保卡号 邮箱 电子邮箱"
    )
)


@dataclass(frozen=True)
class Target:
    """What the released table must satisfy."""

    k: int = 5
    l: int | None = None  # noqa: E741 (the model's name)
    t: float | None = None
    sensitive: str | None = None
    max_suppression: float = 0.05

    def __post_init__(self) -> None:
        if self.k < 1:
            raise TableError("k must be at least 1")
        if not 0 <= self.max_suppression < 1:
            raise TableError("max_suppression is a share of records: at least 0, below 1")
        if (self.l is not None or self.t is not None) and not self.sensitive:
            raise TableError("l-diversity and t-closeness need a sensitive column (--sensitive)")


@dataclass(frozen=True)
class AnonymisationResult:
    """The released table, what was done to it, and its risk before and after."""

    table: Table
    levels: Mapping[str, int]
    suppressed: int
    loss: float
    before: RiskReport
    after: RiskReport
    dropped_columns: tuple[str, ...]
    nodes_checked: int
    lattice_size: int
    search: str = "exhaustive"
    level_labels: Mapping[str, str] = field(default_factory=dict)


def guess_hierarchy(column: str, values: Sequence[str], pack: RulePack | None = None) -> Hierarchy:
    """A hierarchy by column name: age, ZIP/postcode, dates, ICD-10 codes, else categorical."""
    name = column.lower()
    top = pack.age_top_code if pack is not None else None
    if "age" in name or "年龄" in name:
        return IntervalHierarchy((5, 10, 20, 40), top_code=top)
    if any(w in name for w in ("zip", "postal", "postcode", "邮编")):
        length = max((len(v) for v in values), default=5) or 5
        restricted = pack.restricted_zip3 if pack is not None else frozenset()
        return PrefixHierarchy(
            length=length, restricted=restricted, restricted_level=max(length - 3, 0)
        )
    if any(w in name for w in ("date", "birth", "dob", "出生", "日期")):
        return DateHierarchy()
    if any(w in name for w in ("icd", "diag", "dx", "诊断")):
        return ICD10Hierarchy()
    if is_numeric(values):
        return IntervalHierarchy((5, 10, 20, 50, 100))
    return CategoricalHierarchy()


def _min_level(column: str, hierarchy: Hierarchy, pack: RulePack | None) -> int:
    """The least generalisation the pack allows for a column (ZIP3, years for birth dates)."""
    if pack is None:
        return 0
    if isinstance(hierarchy, PrefixHierarchy) and pack.zip_min_level:
        return min(hierarchy.levels - 1, max(0, hierarchy.length - 3) if pack.zip_min_level else 0)
    if isinstance(hierarchy, DateHierarchy):
        birth = any(w in column.lower() for w in ("birth", "dob", "出生"))
        mode = pack.birth_date if birth else pack.dates
        if mode == "year":
            return 2
    return 0


class _Lattice:
    """Encoded quasi-identifiers and the feasibility/loss of lattice nodes."""

    def __init__(
        self,
        encoded: list[EncodedColumn],
        target: Target,
        sensitive: IntArray | None,
        ordered: bool,
    ):
        self.encoded = encoded
        self.target = target
        self.sensitive = sensitive
        self.ordered = ordered
        self.n = len(encoded[0].codes[0]) if encoded else 0
        self.allowed = math.floor(target.max_suppression * self.n + 1e-9)
        if sensitive is not None:
            m = int(sensitive.max()) + 1 if len(sensitive) else 1
            self._overall = np.bincount(sensitive, minlength=m) / max(len(sensitive), 1)

    def classes(self, node: tuple[int, ...]) -> Classes:
        codes = [col.codes[level] for col, level in zip(self.encoded, node, strict=True)]
        cards = [len(col.labels[level]) for col, level in zip(self.encoded, node, strict=True)]
        return classes_of(combine(codes, cards))

    def violating(self, classes: Classes) -> np.ndarray:
        """Per class: True when the class breaks the target."""
        bad = classes.sizes < self.target.k
        if self.sensitive is not None and (self.target.l is not None or self.target.t is not None):
            m = len(self._overall)
            pair = classes.index * m + self.sensitive
            pairs, counts = np.unique(pair, return_counts=True)
            cls = pairs // m
            if self.target.l is not None:
                distinct = np.bincount(cls, minlength=classes.count)
                bad |= distinct < self.target.l
            if self.target.t is not None:
                q = counts / classes.sizes[cls]
                diff = np.zeros((classes.count, m))
                diff[cls, pairs % m] = q
                diff -= self._overall
                if self.ordered and m > 1:
                    emd = np.abs(np.cumsum(diff, axis=1)).sum(axis=1) / (m - 1)
                else:
                    emd = 0.5 * np.abs(diff).sum(axis=1)
                bad |= emd > self.target.t + 1e-12
        return bad

    def evaluate(self, node: tuple[int, ...]) -> tuple[bool, int, float, np.ndarray]:
        """(feasible, suppressed, loss, per-record suppression mask) of a node."""
        classes = self.classes(node)
        bad_class = self.violating(classes)
        suppressed_rows = bad_class[classes.index]
        suppressed = int(suppressed_rows.sum())
        feasible = suppressed <= self.allowed
        if self.n == 0:
            return feasible, 0, 0.0, suppressed_rows
        kept = ~suppressed_rows
        cell_loss = 0.0
        for col, level in zip(self.encoded, node, strict=True):
            cell_loss += float(col.loss[level][col.codes[level][kept]].sum()) + suppressed
        loss = cell_loss / (self.n * len(self.encoded))
        return feasible, suppressed, loss, suppressed_rows


def anonymise(
    table: Table,
    quasi_identifiers: Sequence[str],
    *,
    k: int = 5,
    max_risk: float | None = None,
    l: int | None = None,  # noqa: E741
    t: float | None = None,
    sensitive: str | None = None,
    max_suppression: float = 0.05,
    hierarchies: Mapping[str, Hierarchy] | None = None,
    pack: str | RulePack | None = None,
    population: Table | None = None,
    threshold: float = 0.2,
) -> AnonymisationResult:
    """Release `table` with its quasi-identifiers generalised and suppressed to meet the
    target: k-anonymity (`k`, or `max_risk`: highest prosecutor risk, which means
    k >= ceil(1 / max_risk)), optional distinct l-diversity and t-closeness on `sensitive`.

    Direct-identifier columns (name, SSN, phone, 姓名, 身份证号 ...) are dropped first.
    Raises `TableError` when a column is unknown or no generalisation meets the target.
    """
    rule_pack = get_pack(pack) if pack is not None else None
    qi = list(quasi_identifiers)
    if not qi:
        raise TableError("name at least one quasi-identifier column (--qi age,sex,zip)")
    for column in [*qi, *([sensitive] if sensitive else [])]:
        table.column(column)
    if max_risk is not None:
        if not 0 < max_risk <= 1:
            raise TableError("max_risk is a probability: above 0, at most 1")
        k = max(k, math.ceil(1 / max_risk - 1e-9))
    target = Target(k=k, l=l, t=t, sensitive=sensitive, max_suppression=max_suppression)
    dropped = tuple(
        c for c in table.columns if c.lower() in DIRECT_IDENTIFIER_COLUMNS and c not in qi
    )
    source = table.without(dropped)
    if source.rows < k:
        raise TableError(
            f"the table has {source.rows} rows, fewer than k={k}; nothing can be released"
        )

    chosen = dict(hierarchies or {})
    for column in qi:
        chosen.setdefault(column, guess_hierarchy(column, source.column(column), rule_pack))
    encoded = [encode(source.column(c), chosen[c]) for c in qi]
    minimum = tuple(_min_level(c, chosen[c], rule_pack) for c in qi)
    tops = tuple(col.levels - 1 for col in encoded)

    ordered = False
    sens_codes = None
    if sensitive is not None:
        ordered = is_numeric(source.column(sensitive))
        sens_codes = sensitive_codes(source.column(sensitive), ordered)
    lattice = _Lattice(encoded, target, sens_codes, ordered)

    size = math.prod(top - low + 1 for top, low in zip(tops, minimum, strict=True))
    if size <= _EXHAUSTIVE_LIMIT:
        best, checked = _exhaustive(lattice, minimum, tops)
        search = "exhaustive"
    else:
        best, checked = _greedy(lattice, minimum, tops)
        search = "greedy"
    if best is None:
        raise TableError(
            f"no generalisation meets k={k}"
            + (f", l={l}" if l else "")
            + (f", t={t}" if t is not None else "")
            + f" with at most {max_suppression:.0%} suppressed; allow more suppression"
            " or relax the target"
        )
    node, suppressed, loss, mask = best
    released = _release(source, qi, encoded, node, mask)
    before = measure_table(
        source, qi, sensitive=sensitive, threshold=threshold, population=population
    )
    after_population = None
    if population is not None:
        after_population = _generalise_population(population, qi, chosen, node)
    after = measure_table(
        released, qi, sensitive=sensitive, threshold=threshold, population=after_population
    )
    return AnonymisationResult(
        table=released,
        levels=dict(zip(qi, node, strict=True)),
        suppressed=suppressed,
        loss=loss,
        before=before,
        after=after,
        dropped_columns=dropped,
        nodes_checked=checked,
        lattice_size=size,
        search=search,
        level_labels={c: type(chosen[c]).__name__ for c in qi},
    )


Best = tuple[tuple[int, ...], int, float, np.ndarray] | None


def _exhaustive(
    lattice: _Lattice, minimum: tuple[int, ...], tops: tuple[int, ...]
) -> tuple[Best, int]:
    nodes = sorted(
        itertools.product(*(range(low, top + 1) for low, top in zip(minimum, tops, strict=True))),
        key=lambda node: (sum(node), node),
    )
    clean: list[tuple[int, ...]] = []  # feasible nodes that suppressed nothing
    best: Best = None
    checked = 0
    for node in nodes:
        if any(all(a >= b for a, b in zip(node, c, strict=True)) for c in clean):
            continue  # above a node with no suppression: more loss, nothing gained
        checked += 1
        feasible, suppressed, loss, mask = lattice.evaluate(node)
        if not feasible:
            continue
        if suppressed == 0:
            clean.append(node)
        if best is None or loss < best[2]:
            best = (node, suppressed, loss, mask)
    return best, checked


def _greedy(lattice: _Lattice, minimum: tuple[int, ...], tops: tuple[int, ...]) -> tuple[Best, int]:
    node = minimum
    checked = 1
    feasible, suppressed, loss, mask = lattice.evaluate(node)
    while not feasible:
        options = []
        for i, (level, top) in enumerate(zip(node, tops, strict=True)):
            if level < top:
                step = (*node[:i], level + 1, *node[i + 1 :])
                checked += 1
                result = lattice.evaluate(step)
                options.append((result[1], result[2], step, result))
        if not options:
            return None, checked
        _, _, node, (feasible, suppressed, loss, mask) = min(options, key=lambda o: (o[0], o[1]))
    return (node, suppressed, loss, mask), checked


def _release(
    source: Table,
    qi: list[str],
    encoded: list[EncodedColumn],
    node: tuple[int, ...],
    mask: np.ndarray,
) -> Table:
    data = dict(source.data)
    for column, col, level in zip(qi, encoded, node, strict=True):
        labels = np.asarray(col.labels[level], dtype=object)
        values = labels[col.codes[level]]
        values[mask] = TOP
        data[column] = [str(v) for v in values]
    return Table(list(source.columns), data)


def _generalise_population(
    population: Table, qi: list[str], hierarchies: Mapping[str, Hierarchy], node: tuple[int, ...]
) -> Table:
    data = {
        column: [hierarchies[column].generalise(v, level) for v in population.column(column)]
        for column, level in zip(qi, node, strict=True)
    }
    return Table(qi, data)
