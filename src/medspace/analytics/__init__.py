"""Federated analytics: query spec, local SQL execution, disclosure control, differencing
audit and the hub-side maths that combine summed node vectors.

The node runs `compute_local` (or a `RegressionSession` for logistic regression) on its
own store; only the disclosure-controlled vector leaves it, through secure aggregation
(`medspace.analytics.secagg`). The hub sees only the sum and turns it into a
`QueryResult` with `combine`, or fits the regression with `newton_step` and
`logistic_summary`. docs/analytics.md is the reference.
"""

from medspace.analytics.combine import combine, wilson_interval
from medspace.analytics.differencing import QueryAudit
from medspace.analytics.disclosure import protect
from medspace.analytics.errors import (
    AnalyticsError,
    DifferencingRefused,
    Refused,
    RegressionRefused,
    SpecError,
)
from medspace.analytics.layout import Cell, Layout, layout
from medspace.analytics.local import LocalAggregate, cohort_person_ids, compute_local
from medspace.analytics.regression import (
    RegressionSession,
    design_matrix,
    fit_federated,
    logistic_result,
    logistic_summary,
    newton_step,
    parameter_names,
    pooled_logistic,
    regression_layout,
)
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
    "LocalAggregate",
    "QueryAudit",
    "QueryResult",
    "QuerySpec",
    "Refused",
    "RegressionRefused",
    "RegressionSession",
    "ResultRow",
    "SpecError",
    "StatisticResult",
    "SuppressedCell",
    "cohort_person_ids",
    "combine",
    "compute_local",
    "design_matrix",
    "fit_federated",
    "layout",
    "logistic_result",
    "logistic_summary",
    "newton_step",
    "parameter_names",
    "pooled_logistic",
    "protect",
    "regression_layout",
    "wilson_interval",
]
