"""What a node keeps of one federated query or analysis session, and the pure steps the
worker (`medspace.node.analytics_worker`) runs on it: computing the local aggregate and
the regressions, checking that a task describes its spec and that a session's further
statistic belongs to it, and the shapes of the replies."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from medspace.policy import ProjectState, TaskRequest


@dataclass
class QueryState:
    """What the node keeps between the operations of one query."""

    session: str
    project_id: str
    contract_hash: str
    spec: Any
    min_cell_size: int
    aggregate: Any = None
    regressions: dict[str, Any] = field(default_factory=dict)
    masks: dict[int, Any | None] = field(default_factory=dict)
    epsilon: Decimal | None = None
    dp_total: Decimal | None = None  # the project's epsilon, charged at round 0 of `mask`
    started: float = field(default_factory=time.monotonic)
    used: float = field(default_factory=time.monotonic)
    # an analysis session's: its owner, task, cohort in memory, and the opt-outs it left out
    owner: str | None = None
    task: TaskRequest | None = None
    frame: Any = None
    excluded: frozenset[str] = frozenset()
    state: ProjectState | None = None  # the project as accepted at the opening
    generation: tuple[int, int] = (0, 0)  # the node's project book and steward pins then
    peers: tuple[dict[str, Any], Any] | None = None  # verified peer announcements
    released: Any = None  # the cohort's ReleaseRecord: what answers about it disclosed so far
    nodes: frozenset[str] = frozenset()  # the agreement's hospitals: who may take part in a sum
    summed: frozenset[str] | None = None  # the nodes every round of this session sums over
    summing: threading.Lock = field(default_factory=threading.Lock)  # guards `summed`
    steps: dict[str, int] = field(default_factory=dict)  # Newton steps taken per regression


def task_mismatch(task: TaskRequest, spec: Any, *, every_variable: bool = False) -> str | None:
    """Why the task does not describe the spec (None when it does)."""
    asked = set(spec.computations())
    if {task.computation, *task.kinds} != asked:
        return (
            "the task's computation kinds are not the ones the query spec asks for; "
            "the hub must submit the query as it is"
        )
    missing = sorted(set(spec.data_fields(every_variable=every_variable)) - set(task.variables))
    if missing:
        return f"the task omits data fields the query reads: {', '.join(missing)}"
    return None


def ask_mismatch(query: QueryState, spec: Any, user: str) -> str | None:
    """Why a further statistic does not belong to the session (None when it does): the
    session's owner, cohort and variables; kinds the opening asked for; no regression."""
    assert query.task is not None
    opened = query.spec
    if user != query.owner:
        return "only the researcher who opened the analysis session may ask in it"
    if (spec.cohort, spec.variables, spec.reference_date) != (
        opened.cohort,
        opened.variables,
        opened.reference_date,
    ):
        return "a session's statistics keep its cohort, variables and reference date"
    kinds = set(spec.computations())
    if "logistic" in kinds:
        return "a regression is asked as a query of its own, not inside a session"
    outside = sorted(kinds - {query.task.computation, *query.task.kinds})
    if outside:
        return f"the session was opened for other kinds of statistic than {', '.join(outside)}"
    if set(spec.data_fields()) - set(query.task.variables):
        return "the statistic reads data fields the session's task does not cover"
    return None


def compute(
    query: QueryState,
    store: Any,
    excluded: frozenset[str],
    audit: Callable[[Any], Any] | None,
    *,
    regressions_only: bool = False,
) -> None:
    """The local aggregate and the regression sessions of the query (raises `Refused`).

    `audit` (the differencing check, None under DP) is given the cohort's person ids
    before anything is kept: taken from the local aggregate's own pass over the cohort
    when there is one, else from the first regression's pass (before its nfilter rules),
    so the cohort is selected once; a refusal leaves the query empty. It returns the
    cohort's release record, which the local aggregate is protected with.
    """
    from medspace.analytics.layout import layout
    from medspace.analytics.local import cohort_person_ids, compute_local
    from medspace.analytics.regression import RegressionSession

    spec = query.spec
    aggregate = query.aggregate
    pending = audit
    if len(layout(spec)) > 0 and not regressions_only:
        aggregate = compute_local(
            store,
            spec,
            exclude_pseudonyms=excluded,
            min_cell_size=query.min_cell_size,
            cleared=pending,
        )
        pending = None
    regressions = {}
    for statistic in spec.statistics:
        if statistic.kind == "logistic":
            regressions[statistic.id] = RegressionSession(
                store,
                spec,
                statistic.id,
                exclude_pseudonyms=excluded,
                min_cell_size=query.min_cell_size,
                audit=pending,
            )
            pending = None
    if pending is not None:
        pending(cohort_person_ids(store, spec, excluded))
    query.aggregate = aggregate
    query.regressions.update(regressions)


def floats(value: object) -> list[float] | None:
    """Coefficients sent as decimal strings (the channel carries no JSON floats), or
    None when they are not 1 to 1000 finite numbers."""
    if not isinstance(value, list) or not 0 < len(value) <= 1000:
        return None
    try:
        numbers = [float(v) for v in value if isinstance(v, str) and len(v) <= 40]
    except ValueError:
        return None
    if len(numbers) != len(value) or not all(math.isfinite(v) for v in numbers):
        return None
    return numbers


def node_reply(status: str, entries: list[str], **fields: Any) -> dict[str, Any]:
    """A reply to the hub: its status, the node's signed entries (base64), more fields."""
    return {"type": "reply", "status": status, "entries": entries, **fields}


def error_reply(reason: str) -> dict[str, Any]:
    """A reply saying the request could not be served, and why (nothing ledgered)."""
    return {"type": "reply", "status": "error", "reason": reason, "entries": []}


__all__ = [
    "QueryState",
    "ask_mismatch",
    "compute",
    "error_reply",
    "floats",
    "node_reply",
    "task_mismatch",
]
