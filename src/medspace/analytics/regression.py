"""Federated logistic regression, fitted exactly by Newton-Raphson (as DataSHIELD's
`ds.glm`): each node sends, per iteration, the gradient and information matrix of its
own log-likelihood at the hub's current coefficients; the hub sums them (through secure
aggregation) and takes the Newton step. Because the log-likelihood of the union is the
sum of the nodes' log-likelihoods, the federated fit equals the pooled fit.

Node side: `RegressionSession` builds the node's design matrix once (features in SQL,
complete cases only; the cohort's person ids for the differencing audit come from the
same pass) and checks the nfilter rules before anything leaves:

- the node's complete-case n is at least max(k, 3 x number of parameters)
  ("nfilter-cohort"; DataSHIELD's nfilter.glm = 0.33 parameters per patient);
- no covariate is constant ("nfilter-constant");
- each level (0 and 1) of the outcome and of every 0/1 covariate has at least k
  patients ("nfilter-level").

Hub side: `newton_step` and `logistic_summary`, pure functions of the summed vector.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.exc import SQLAlchemyError

from medspace.analytics.errors import AnalyticsError, RegressionRefused, SpecError
from medspace.analytics.features import feature_table
from medspace.analytics.result import Coefficient, StatisticResult
from medspace.analytics.spec import BINARY_KINDS, LogisticStat, QuerySpec
from medspace.store import NodeStore

Matrix = npt.NDArray[np.float64]
IdArray = npt.NDArray[np.int64]
PARAMETERS_PER_PATIENT = 3  # n >= 3 p, DataSHIELD's nfilter.glm = 0.33
_PACKED_BITS = 30  # 0/1 columns per fetched integer: within PostgreSQL's 32-bit integer


def regression_layout(p: int) -> int:
    """Length of a step vector for p parameters: gradient (p), information matrix
    (p x p, row-major), log-likelihood, n."""
    return p + p * p + 2


def parameter_names(stat: LogisticStat) -> tuple[str, ...]:
    """Names of the coefficients, in vector order (intercept first when fitted)."""
    return (("intercept",) if stat.intercept else ()) + stat.covariates


def logistic_statistic(spec: QuerySpec, statistic_id: str) -> LogisticStat:
    """The spec's logistic statistic with this id; raises `SpecError` otherwise."""
    stat = spec.statistic(statistic_id)
    if not isinstance(stat, LogisticStat):
        raise SpecError(f"statistic {statistic_id} is not a logistic regression")
    return stat


def design_matrix(
    store: NodeStore,
    spec: QuerySpec,
    statistic_id: str,
    *,
    exclude_pseudonyms: Collection[str] = (),
) -> tuple[Matrix, Matrix]:
    """(X, y) of the node's complete cases, X with an intercept column first when the
    model has one. Local use only: this is row-level data and never leaves the node."""
    x, y, _ = _read_design(
        store, spec, logistic_statistic(spec, statistic_id), exclude_pseudonyms, with_ids=False
    )
    return x, y


def _read_design(
    store: NodeStore,
    spec: QuerySpec,
    stat: LogisticStat,
    exclude: Collection[str],
    *,
    with_ids: bool,
) -> tuple[Matrix, Matrix, IdArray | None]:
    """(X, y) as `design_matrix`, and with `with_ids` the cohort's person ids (every
    cohort patient, complete case or not: the differencing audit's cohort).

    One query reads every cohort patient once: the person id, the numeric columns (0
    where missing) and the 0/1 columns packed into integers (-1 for an incomplete case).
    numpy orders the rows by person id and keeps the complete cases, so neither a
    temporary table nor a second pass over the cohort is needed."""
    names = [stat.outcome, *stat.covariates]
    binary = [i for i, n in enumerate(names) if spec.variables[n].kind in BINARY_KINDS]
    numeric = [i for i in range(len(names)) if i not in binary]
    groups = [binary[i : i + _PACKED_BITS] for i in range(0, len(binary), _PACKED_BITS)]
    try:
        with store.connect() as conn:
            source = feature_table(spec, names, exclude, conn.dialect.name)
            # OFFSET 0 keeps the database from merging the features into this query,
            # which would evaluate a per-patient subquery once for every use of its column
            f = select(*source.c).offset(0).subquery("design")
            columns = [f.c[n] for n in names]
            complete = and_(*(c.is_not(None) for c in columns))
            wanted = [
                f.c.pid,
                *(func.coalesce(columns[i], 0.0) for i in numeric),
                *(case((complete, _packed(columns, g)), else_=-1) for g in groups),
            ]
            # the driver's plain tuples: a SQLAlchemy row per patient costs more than the SQL
            cursor = conn.execute(select(*wanted)).cursor
            assert cursor is not None
            rows = cursor.fetchall()
    except SQLAlchemyError as exc:
        raise AnalyticsError(
            f"the node's database failed while building the design matrix ({type(exc).__name__})"
        ) from None
    # one flat pass over the tuples: about twice as fast as np.array(rows), same values;
    # person ids are exact in float64 below 2**53
    flat = np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=len(rows) * len(wanted))
    flat = flat.reshape(len(rows), len(wanted))
    flat = flat[np.argsort(flat[:, 0], kind="stable")]
    ids = flat[:, 0].astype(np.int64) if with_ids else None
    flat = flat[flat[:, 1 + len(numeric)] >= 0]
    n = len(flat)
    data = np.empty((n, len(names)), dtype=np.float64)
    for j, i in enumerate(numeric, start=1):
        data[:, i] = flat[:, j]
    for j, group in enumerate(groups, start=1 + len(numeric)):
        bits = flat[:, j].astype(np.int64)
        for bit, i in enumerate(group):
            data[:, i] = (bits >> bit) & 1
    y = data[:, 0]
    x = data[:, 1:]
    if stat.intercept:
        x = np.hstack([np.ones((n, 1)), x])
    return x, y, ids


def _packed(columns: Sequence[ColumnElement[Any]], group: Sequence[int]) -> ColumnElement[Any]:
    """The 0/1 columns at `group` as one integer, column `group[b]` in bit b: half the
    values to fetch for a model of 0/1 covariates, and exact."""
    packed = columns[group[0]]
    for bit, i in enumerate(group[1:], start=1):
        packed = packed + columns[i] * (1 << bit)
    return packed


class RegressionSession:
    """One node's part in one federated logistic regression.

    Builds the design matrix once, hands the cohort's person ids to `audit` (the
    differencing check, when given: it runs before the nfilter rules, so a refusal by
    those rules cannot tell a narrowed cohort apart), checks the nfilter rules (raising
    `RegressionRefused` with code nfilter-cohort / nfilter-level / nfilter-constant),
    then answers `step` for each Newton iteration.
    """

    def __init__(
        self,
        store: NodeStore,
        spec: QuerySpec,
        statistic_id: str,
        *,
        exclude_pseudonyms: Collection[str] = (),
        min_cell_size: int,
        audit: Callable[[IdArray], None] | None = None,
    ) -> None:
        if min_cell_size < 1:
            raise SpecError("min_cell_size must be at least 1")
        self.statistic = logistic_statistic(spec, statistic_id)
        self.names = parameter_names(self.statistic)
        self._x, self._y, ids = _read_design(
            store, spec, self.statistic, exclude_pseudonyms, with_ids=audit is not None
        )
        if audit is not None:
            assert ids is not None
            audit(ids)
        _nfilter(spec, self.statistic, self._x, self._y, min_cell_size)

    @property
    def parameters(self) -> int:
        """Number of coefficients p."""
        return len(self.names)

    def step(self, beta: Sequence[float]) -> list[float]:
        """The node's [gradient (p), information matrix X'WX (p*p, row-major),
        log-likelihood, n] at coefficients `beta`. Raises `SpecError` for a wrong length
        or non-finite coefficients."""
        b = np.asarray(beta, dtype=np.float64)
        if b.shape != (self.parameters,) or not np.all(np.isfinite(b)):
            raise SpecError(f"beta must be {self.parameters} finite numbers")
        gradient, information, loglik = _pieces(self._x, self._y, b)
        return [
            *gradient.tolist(),
            *information.ravel().tolist(),
            float(loglik),
            float(len(self._y)),
        ]


def _pieces(x: Matrix, y: Matrix, beta: Matrix) -> tuple[Matrix, Matrix, float]:
    eta = x @ beta
    mu = 0.5 * (1.0 + np.tanh(0.5 * eta))  # the logistic function, without overflow
    weights = mu * (1.0 - mu)
    gradient = x.T @ (y - mu)
    information = (x * weights[:, None]).T @ x
    # log(1 + e^eta) computed stably
    loglik = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
    return gradient, information, loglik


def _nfilter(spec: QuerySpec, stat: LogisticStat, x: Matrix, y: Matrix, k: int) -> None:
    n, p = x.shape
    needed = max(k, PARAMETERS_PER_PATIENT * p)
    if n < needed:
        raise RegressionRefused(
            f"logistic regression {stat.id}: this node has fewer complete cases than "
            f"max(k, {PARAMETERS_PER_PATIENT} x {p} parameters) = {needed}; widen the cohort "
            "or use fewer covariates",
            code="nfilter-cohort",
        )
    offset = 1 if stat.intercept else 0
    for j, name in enumerate(stat.covariates):
        column = x[:, offset + j]
        if np.all(column == column[0]):
            raise RegressionRefused(
                f"logistic regression {stat.id}: covariate {name} is constant at this node; "
                "drop it or widen the cohort",
                code="nfilter-constant",
            )
    binary = [(stat.outcome, y)] + [
        (name, x[:, offset + j])
        for j, name in enumerate(stat.covariates)
        if spec.variables[name].kind in BINARY_KINDS
    ]
    for name, column in binary:
        ones = int(column.sum())
        if min(ones, n - ones) < k:
            raise RegressionRefused(
                f"logistic regression {stat.id}: a level of {name} has fewer than k = {k} "
                "patients at this node; merge categories or drop the variable",
                code="nfilter-level",
            )


# -- hub side ---------------------------------------------------------------------


def _split(total: Sequence[float], p: int) -> tuple[Matrix, Matrix, float, float]:
    if len(total) != regression_layout(p):
        raise SpecError(f"a regression vector for {p} parameters has {regression_layout(p)} values")
    v = np.asarray(total, dtype=np.float64)
    return v[:p], v[p : p + p * p].reshape(p, p), float(v[-2]), float(v[-1])


def newton_step(
    beta: Sequence[float], total: Sequence[float], *, tolerance: float = 1e-8
) -> tuple[list[float], bool]:
    """One Newton-Raphson update from the summed step vector: beta + I^-1 g, and whether
    it converged (largest coefficient change below `tolerance`). Raises
    `AnalyticsError` when the combined information matrix is singular (a covariate is
    collinear or separates the outcome)."""
    b = np.asarray(beta, dtype=np.float64)
    gradient, information, _, _ = _split(total, len(b))
    try:
        delta = np.linalg.solve(information, gradient)
    except np.linalg.LinAlgError:
        raise AnalyticsError(
            "the combined information matrix is singular: a covariate is collinear with "
            "others or the outcome is separated; drop a covariate"
        ) from None
    new = b + delta
    return new.tolist(), bool(np.max(np.abs(delta)) < tolerance)


def logistic_summary(
    beta: Sequence[float], total: Sequence[float], names: Sequence[str] | None = None
) -> list[Coefficient]:
    """Coefficients with standard errors (from the inverse of the summed information
    matrix), z and two-sided p-values (normal, via erfc)."""
    b = np.asarray(beta, dtype=np.float64)
    _, information, _, _ = _split(total, len(b))
    try:
        covariance = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        raise AnalyticsError("the combined information matrix is singular") from None
    names = list(names) if names is not None else [f"b{i}" for i in range(len(b))]
    out = []
    for i, name in enumerate(names):
        se = math.sqrt(max(float(covariance[i, i]), 0.0))
        z = float(b[i]) / se if se > 0 else math.inf
        out.append(
            Coefficient(
                name=name,
                estimate=float(b[i]),
                std_error=se,
                z=z,
                p_value=math.erfc(abs(z) / math.sqrt(2)),
            )
        )
    return out


def logistic_result(
    stat: LogisticStat,
    beta: Sequence[float],
    total: Sequence[float],
    *,
    iterations: int,
    converged: bool,
    refused: dict[str, str] | None = None,
) -> StatisticResult:
    """The regression's entry for a `QueryResult`: coefficients and fit notes."""
    _, _, loglik, n = _split(total, len(beta))
    notes = [
        f"{iterations} Newton-Raphson iterations, "
        + ("converged" if converged else "NOT converged: the estimates are unreliable"),
        f"n = {n:.0f} complete cases, log-likelihood {loglik:.4f}",
    ]
    return StatisticResult(
        id=stat.id,
        kind=stat.kind,
        label=stat.label,
        coefficients=tuple(logistic_summary(beta, total, parameter_names(stat))),
        notes=tuple(notes),
        refused=refused or {},
    )


def pooled_logistic(
    x: Matrix, y: Matrix, *, tolerance: float = 1e-10, max_iterations: int = 100
) -> Matrix:
    """Reference fit on pooled data (plain numpy Newton-Raphson), for tests and the
    demo's comparison with the federated fit."""
    beta = np.zeros(x.shape[1])
    for _ in range(max_iterations):
        gradient, information, _ = _pieces(x, y, beta)
        delta = np.linalg.solve(information, gradient)
        beta = beta + delta
        if np.max(np.abs(delta)) < tolerance:
            return beta
    raise AnalyticsError("the pooled fit did not converge")


def fit_federated(
    sessions: Sequence[RegressionSession],
    *,
    tolerance: float | None = None,
    max_iterations: int | None = None,
) -> tuple[list[float], list[float], int, bool]:
    """Fit in one process by summing the sessions' steps in the clear (no secure
    aggregation): for tests and local checks. Returns (beta, last summed vector,
    iterations, converged)."""
    if not sessions:
        raise SpecError("at least one session is needed")
    stat = sessions[0].statistic
    tol = stat.tolerance if tolerance is None else tolerance
    limit = stat.max_iterations if max_iterations is None else max_iterations
    beta = [0.0] * sessions[0].parameters
    total: list[float] = []
    for iteration in range(1, limit + 1):
        total = np.sum([s.step(beta) for s in sessions], axis=0).tolist()
        beta, converged = newton_step(beta, total, tolerance=tol)
        if converged:
            return beta, total, iteration, True
    return beta, total, limit, False
