"""Per-project differential privacy budgets: how much epsilon each project has spent.

A project that uses differential privacy has a total epsilon (`Project.disclosure.dp_epsilon`,
a Decimal). Under sequential composition the privacy loss of every released query adds up,
so each released result spends its epsilon from that total and a query that would overrun
it is refused (`BudgetExceeded`). The hub keeps one budget in its database; every node keeps
its own copy in a local SQLite file, so a node refuses to compute for a hub that ignores the
budget.

Amounts are stored as whole micro-epsilons (10^-6, the precision of `Disclosure.dp_epsilon`)
in integer columns, so every sum is exact in SQL and in Python; there is no float anywhere.
A spend is one transaction: a conditional `UPDATE ... SET spent = spent + e WHERE spent + e
<= total` (atomic on SQLite, whose writers take the database lock, and on PostgreSQL, which
re-checks the condition on the locked row) plus an insert keyed by (project, query id).
Spending the same query id twice is idempotent: the second call returns the first spend and
charges nothing, so a retried release cannot double-spend.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from medspace.errors import ConfigError, MedSpaceError, UsageError

MICRO = Decimal("0.000001")
_PER_EPSILON = 1_000_000

metadata = sa.MetaData()
_READY: weakref.WeakSet[sa.Engine] = weakref.WeakSet()  # engines whose tables exist

project_budgets = sa.Table(
    "analytics_dp_budgets",
    metadata,
    sa.Column("project_id", sa.String(64), primary_key=True),
    sa.Column("spent_micro", sa.BigInteger, nullable=False),
)

budget_spends = sa.Table(
    "analytics_dp_spends",
    metadata,
    sa.Column("project_id", sa.String(64), primary_key=True),
    sa.Column("query_id", sa.String(128), primary_key=True),
    sa.Column("epsilon_micro", sa.BigInteger, nullable=False),
    sa.Column("spent_after_micro", sa.BigInteger, nullable=False),
    sa.Column("spent_at", sa.String(20), nullable=False),
)


class BudgetError(MedSpaceError):
    """Base of the budget's errors."""


class BudgetExceeded(BudgetError):
    """The query's epsilon is more than the project has left. Maps to HTTP 403."""

    exit_code = 7
    http_status = 403

    def __init__(self, project_id: str, *, asked: Decimal, left: Decimal) -> None:
        super().__init__(
            f"project {project_id} has epsilon {epsilon_text(left)} left and this query asks "
            f"for {epsilon_text(asked)}; ask for at most {epsilon_text(left)}, or ask the "
            "stewards to approve a larger budget"
        )
        self.project_id = project_id
        self.asked = asked
        self.left = left


class EpsilonError(BudgetError, UsageError):
    """An epsilon that cannot be spent: not positive, or finer than 10^-6."""


class QueryIdReused(BudgetError, UsageError):
    """A query id was already spent with a different epsilon."""


def epsilon_text(value: Decimal) -> str:
    """Fixed-point text without trailing zeros, as in contract terms ("0.5", "1")."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def to_micro(epsilon: Decimal, *, what: str = "epsilon") -> int:
    """Whole micro-epsilons of `epsilon`; raises `EpsilonError` for a value that is not a
    positive finite decimal with at most 6 decimal places."""
    try:
        if not isinstance(epsilon, Decimal):
            raise InvalidOperation
        micro = epsilon * _PER_EPSILON
        exact = micro == micro.to_integral_value()
    except InvalidOperation:
        raise EpsilonError(f"{what} must be a decimal number such as 0.5") from None
    if not epsilon.is_finite() or epsilon <= 0:
        raise EpsilonError(f"{what} must be greater than 0")
    if not exact:
        raise EpsilonError(f"{what} may have at most 6 decimal places; round it down")
    return int(micro)


def _from_micro(micro: int) -> Decimal:
    return (Decimal(micro) * MICRO).normalize() if micro else Decimal(0)


@dataclass(frozen=True)
class Spend:
    """One released query's charge against its project's budget.

    `spent` and `left` are the project's totals right after this charge; `fresh` is False
    when the query id had been charged before (nothing was charged this time)."""

    project_id: str
    query_id: str
    epsilon: Decimal
    total: Decimal
    spent: Decimal
    left: Decimal
    fresh: bool

    def ledger_body(self) -> dict[str, str]:
        """What the ledger entry of this spend records: decimal strings, no patient data
        (the ledger's canonical JSON has no floats)."""
        return {
            "project": self.project_id,
            "query": self.query_id,
            "epsilon_spent": epsilon_text(self.epsilon),
            "epsilon_total": epsilon_text(self.total),
            "epsilon_spent_total": epsilon_text(self.spent),
            "epsilon_left": epsilon_text(self.left),
        }


class Budget:
    """The epsilon spent per project, in SQL (the hub's engine, or a node's SQLite file).

    Thread-safe and safe across processes: concurrent spenders can never exceed a total."""

    def __init__(self, engine: sa.Engine) -> None:
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise ConfigError(
                f"the DP budget needs SQLite or PostgreSQL, not {engine.dialect.name}"
            )
        self._engine = engine
        if engine not in _READY:
            metadata.create_all(engine)
            _READY.add(engine)

    @classmethod
    def open_file(cls, path: Path) -> Budget:
        """A node's own budget copy in the SQLite file at `path` (created if missing)."""
        engine = sa.create_engine(
            f"sqlite:///{path}",
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return cls(engine)

    def spent(self, project_id: str) -> Decimal:
        """Epsilon spent so far by the project (0 before its first release)."""
        with self._engine.connect() as conn:
            micro = conn.scalar(
                sa.select(project_budgets.c.spent_micro).where(
                    project_budgets.c.project_id == project_id
                )
            )
        return _from_micro(int(micro or 0))

    def left(self, project_id: str, total: Decimal) -> Decimal:
        """Epsilon the project may still spend out of `total` (never below 0)."""
        remaining = to_micro(total, what="the project's epsilon") - to_micro_or_zero(
            self.spent(project_id)
        )
        return _from_micro(max(remaining, 0))

    def check(self, project_id: str, epsilon: Decimal, total: Decimal) -> None:
        """Raise `BudgetExceeded` if spending `epsilon` now would overrun `total`.

        Advisory (before computing); `spend` is the atomic check that counts."""
        left = self.left(project_id, total)
        if to_micro(epsilon) > to_micro_or_zero(left):
            raise BudgetExceeded(project_id, asked=epsilon, left=left)

    def spend(self, project_id: str, query_id: str, epsilon: Decimal, total: Decimal) -> Spend:
        """Charge `epsilon` for query `query_id` atomically, or raise `BudgetExceeded`.

        Idempotent per (project, query id): a repeat returns the first charge with
        `fresh=False`; a repeat with another epsilon raises `QueryIdReused`."""
        asked = to_micro(epsilon)
        limit = to_micro(total, what="the project's epsilon")
        if not query_id or len(query_id) > 128:
            raise EpsilonError("a query id of 1 to 128 characters is needed to spend epsilon")
        try:
            with self._engine.begin() as conn:
                # The first statement writes, so SQLite takes its write lock at once (a
                # read first would risk a deadlock on upgrade); PostgreSQL locks the row.
                conn.execute(self._insert_project(project_id))
                after = conn.execute(
                    project_budgets.update()
                    .where(project_budgets.c.project_id == project_id)
                    .where(project_budgets.c.spent_micro + asked <= limit)
                    .values(spent_micro=project_budgets.c.spent_micro + asked)
                    .returning(project_budgets.c.spent_micro)
                ).scalar()
                if after is None:
                    earlier = self._earlier(conn, project_id, query_id)
                    if earlier is not None:
                        return self._repeat(earlier, project_id, query_id, asked, limit)
                    spent = conn.scalar(
                        sa.select(project_budgets.c.spent_micro).where(
                            project_budgets.c.project_id == project_id
                        )
                    )
                    left = _from_micro(max(limit - int(spent or 0), 0))
                    raise BudgetExceeded(project_id, asked=epsilon, left=left)
                conn.execute(
                    budget_spends.insert().values(
                        project_id=project_id,
                        query_id=query_id,
                        epsilon_micro=asked,
                        spent_after_micro=int(after),
                        spent_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    )
                )
        except IntegrityError:
            # The query id was charged already (perhaps by a concurrent call): this
            # transaction rolled back, so nothing was charged twice.
            with self._engine.connect() as conn:
                earlier = self._earlier(conn, project_id, query_id)
            if earlier is None:  # pragma: no cover - the unique key is the only constraint
                raise
            return self._repeat(earlier, project_id, query_id, asked, limit)
        spent_after = int(after)
        return Spend(
            project_id=project_id,
            query_id=query_id,
            epsilon=_from_micro(asked),
            total=_from_micro(limit),
            spent=_from_micro(spent_after),
            left=_from_micro(max(limit - spent_after, 0)),
            fresh=True,
        )

    def spends(self, project_id: str, total: Decimal) -> list[Spend]:
        """Every charge of the project, oldest first, with the totals right after each."""
        limit = to_micro(total, what="the project's epsilon")
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(budget_spends)
                .where(budget_spends.c.project_id == project_id)
                .order_by(budget_spends.c.spent_after_micro)
            ).all()
        return [
            Spend(
                project_id=project_id,
                query_id=row.query_id,
                epsilon=_from_micro(row.epsilon_micro),
                total=_from_micro(limit),
                spent=_from_micro(row.spent_after_micro),
                left=_from_micro(max(limit - int(row.spent_after_micro), 0)),
                fresh=False,
            )
            for row in rows
        ]

    def _insert_project(self, project_id: str) -> Any:
        insert = sqlite.insert if self._engine.dialect.name == "sqlite" else postgresql.insert
        return (
            insert(project_budgets)
            .values(project_id=project_id, spent_micro=0)
            .on_conflict_do_nothing(index_elements=[project_budgets.c.project_id])
        )

    @staticmethod
    def _earlier(conn: sa.Connection, project_id: str, query_id: str) -> sa.Row[Any] | None:
        return conn.execute(
            sa.select(budget_spends).where(
                budget_spends.c.project_id == project_id,
                budget_spends.c.query_id == query_id,
            )
        ).first()

    @staticmethod
    def _repeat(
        earlier: sa.Row[Any], project_id: str, query_id: str, asked: int, limit: int
    ) -> Spend:
        if int(earlier.epsilon_micro) != asked:
            raise QueryIdReused(
                f"query {query_id} was charged epsilon "
                f"{epsilon_text(_from_micro(earlier.epsilon_micro))} already; "
                "give a new query id for a new query"
            )
        spent_after = int(earlier.spent_after_micro)
        return Spend(
            project_id=project_id,
            query_id=query_id,
            epsilon=_from_micro(asked),
            total=_from_micro(limit),
            spent=_from_micro(spent_after),
            left=_from_micro(max(limit - spent_after, 0)),
            fresh=False,
        )


def to_micro_or_zero(value: Decimal) -> int:
    """Like `to_micro`, but 0 for zero (a project that has spent nothing)."""
    return 0 if value == 0 else to_micro(value)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # busy_timeout makes a second writer wait for the lock instead of failing at once.
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
