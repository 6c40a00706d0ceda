"""Federated analytics: query spec, local SQL execution, disclosure control, differencing
audit and the hub-side maths that combine summed node vectors.

The node runs `compute_local` (or a `RegressionSession` for logistic regression) on its
own store; only the disclosure-controlled vector leaves it, through secure aggregation
(`medspace.analytics.secagg`). The hub sees only the sum and turns it into a
`QueryResult` with `combine`, or fits the regression with `newton_step`.
docs/analytics.md is the reference.
"""

from medspace.analytics.errors import (
    AnalyticsError,
    DifferencingRefused,
    Refused,
    RegressionRefused,
    SpecError,
)
from medspace.analytics.layout import Cell, Layout, layout
from medspace.analytics.result import (
    Coefficient,
    QueryResult,
    ResultRow,
    StatisticResult,
    SuppressedCell,
)
from medspace.analytics.spec import QuerySpec

__all__ = [
    "AnalyticsError",
    "Cell",
    "Coefficient",
    "DifferencingRefused",
    "Layout",
    "QueryResult",
    "QuerySpec",
    "Refused",
    "RegressionRefused",
    "ResultRow",
    "SpecError",
    "StatisticResult",
    "SuppressedCell",
    "layout",
]
