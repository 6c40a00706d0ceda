"""The per-project epsilon budget: exact, refuses overruns, idempotent, safe under threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.pool import StaticPool

from medspace.analytics.budget import (
    Budget,
    BudgetExceeded,
    EpsilonError,
    QueryIdReused,
    to_micro,
)
from medspace.errors import MedSpaceError

TOTAL = Decimal("1")


def test_a_fresh_project_has_its_whole_budget_left(engine: sa.Engine) -> None:
    budget = Budget(engine)
    assert budget.spent("p-one") == 0
    assert budget.left("p-one", TOTAL) == TOTAL


def test_spends_add_up_exactly_in_decimal(engine: sa.Engine) -> None:
    # 0.1 + 0.2 is not 0.3 in binary floating point; the budget must say exactly 0.3.
    budget = Budget(engine)
    budget.spend("p-one", "q1", Decimal("0.1"), TOTAL)
    spend = budget.spend("p-one", "q2", Decimal("0.2"), TOTAL)
    assert spend.spent == Decimal("0.3")
    assert spend.left == Decimal("0.7")
    assert budget.spent("p-one") == Decimal("0.3")
    ten = [budget.spend("p-two", f"q{i}", Decimal("0.1"), TOTAL) for i in range(10)]
    assert ten[-1].spent == TOTAL
    assert ten[-1].left == 0
    assert budget.left("p-two", TOTAL) == 0


def test_a_query_that_would_overrun_is_refused_and_says_what_is_left(engine: sa.Engine) -> None:
    budget = Budget(engine)
    budget.spend("p-one", "q1", Decimal("0.75"), TOTAL)
    with pytest.raises(BudgetExceeded, match=r"epsilon 0\.25 left .* asks for 0\.3") as caught:
        budget.spend("p-one", "q2", Decimal("0.3"), TOTAL)
    assert isinstance(caught.value, MedSpaceError)
    assert caught.value.left == Decimal("0.25")
    assert budget.spent("p-one") == Decimal("0.75")  # the refused query charged nothing
    with pytest.raises(BudgetExceeded):
        budget.check("p-one", Decimal("0.250001"), TOTAL)
    budget.check("p-one", Decimal("0.25"), TOTAL)
    assert budget.spend("p-one", "q3", Decimal("0.25"), TOTAL).left == 0


def test_a_query_larger_than_the_whole_budget_is_refused(engine: sa.Engine) -> None:
    with pytest.raises(BudgetExceeded):
        Budget(engine).spend("p-one", "q1", Decimal("1.000001"), TOTAL)


def test_projects_have_separate_budgets(engine: sa.Engine) -> None:
    budget = Budget(engine)
    budget.spend("p-one", "q1", TOTAL, TOTAL)
    assert budget.spend("p-two", "q1", Decimal("0.5"), TOTAL).spent == Decimal("0.5")


def test_spending_the_same_query_id_twice_charges_once(engine: sa.Engine) -> None:
    budget = Budget(engine)
    first = budget.spend("p-one", "q1", Decimal("0.4"), TOTAL)
    again = budget.spend("p-one", "q1", Decimal("0.4"), TOTAL)
    assert first.fresh and not again.fresh
    assert again.spent == first.spent == Decimal("0.4")
    assert budget.spent("p-one") == Decimal("0.4")
    with pytest.raises(QueryIdReused, match="new query id"):
        budget.spend("p-one", "q1", Decimal("0.5"), TOTAL)


def test_a_repeat_is_answered_even_when_the_budget_is_spent(engine: sa.Engine) -> None:
    budget = Budget(engine)
    budget.spend("p-one", "q1", TOTAL, TOTAL)
    assert not budget.spend("p-one", "q1", TOTAL, TOTAL).fresh


@pytest.mark.parametrize(
    "epsilon",
    [
        Decimal("0"),  # nothing is not a privacy parameter
        Decimal("-0.5"),  # negative
        Decimal("0.0000001"),  # finer than the stored micro-epsilon
        Decimal("NaN"),
        Decimal("Infinity"),
    ],
)
def test_bad_epsilons_are_refused(engine: sa.Engine, epsilon: Decimal) -> None:
    with pytest.raises(EpsilonError):
        Budget(engine).spend("p-one", "q1", epsilon, TOTAL)


def test_floats_are_not_accepted_as_epsilon() -> None:
    with pytest.raises(EpsilonError, match="decimal"):
        to_micro(0.5)  # type: ignore[arg-type]


def test_concurrent_spenders_cannot_exceed_the_total(engine: sa.Engine) -> None:
    budget = Budget(engine)

    # 40 threads each ask for 0.1 of a budget of 1: exactly 10 may succeed.
    def spend(i: int) -> bool:
        try:
            budget.spend("p-one", f"q{i}", Decimal("0.1"), TOTAL)
        except BudgetExceeded:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(spend, range(40)))
    assert sum(results) == 10
    assert budget.spent("p-one") == TOTAL
    assert len(budget.spends("p-one", TOTAL)) == 10


def test_concurrent_repeats_of_one_query_charge_once(engine: sa.Engine) -> None:
    budget = Budget(engine)
    with ThreadPoolExecutor(max_workers=8) as pool:
        spends = list(
            pool.map(lambda _: budget.spend("p-one", "q1", Decimal("0.3"), TOTAL), range(16))
        )
    assert sum(s.fresh for s in spends) == 1
    assert budget.spent("p-one") == Decimal("0.3")


def test_a_node_keeps_its_copy_in_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "analytics.db"
    Budget.open_file(path).spend("p-one", "q1", Decimal("0.2"), TOTAL)
    assert Budget.open_file(path).spent("p-one") == Decimal("0.2")


def test_the_ledger_body_holds_numbers_as_decimal_strings_only(engine: sa.Engine) -> None:
    spend = Budget(engine).spend("p-one", "q1", Decimal("0.25"), Decimal("2"))
    assert spend.ledger_body() == {
        "project": "p-one",
        "query": "q1",
        "epsilon_spent": "0.25",
        "epsilon_total": "2",
        "epsilon_spent_total": "0.25",
        "epsilon_left": "1.75",
    }


@settings(max_examples=40, deadline=None)
@given(
    total=st.integers(min_value=1, max_value=10**8),
    asks=st.lists(st.integers(min_value=1, max_value=10**7), min_size=1, max_size=12),
)
def test_the_budget_matches_exact_decimal_bookkeeping(total: int, asks: list[int]) -> None:
    # Amounts in micro-epsilon; a plain Decimal model decides which spends fit.
    engine = sa.create_engine("sqlite://", poolclass=StaticPool)
    budget = Budget(engine)
    limit = Decimal(total) / 1_000_000
    spent = Decimal(0)
    for i, micro in enumerate(asks):
        asked = Decimal(micro) / 1_000_000
        if spent + asked <= limit:
            spend = budget.spend("p-one", f"q{i}", asked, limit)
            spent += asked
            assert spend.spent == spent and spend.left == limit - spent
        else:
            with pytest.raises(BudgetExceeded):
                budget.spend("p-one", f"q{i}", asked, limit)
    assert budget.spent("p-one") == spent
    engine.dispose()
