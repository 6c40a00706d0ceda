"""The combined, disclosure-controlled answer to a query, as the hub reports it.

Pydantic (JSON in and out) so the hub can return it over HTTP, ledger its hash and hand
it to the report writer. Every number here is an aggregate over at least `min_cell_size`
patients in the combined data; suppressed cells carry `value = None`, the display `<k`,
and why (which nodes suppressed them, or that the combined count was below k).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ResultRow(_Model):
    """One row of a statistic's table: its labels and its named values.

    `values` holds numbers (None where suppressed or undefined), `display` the same as
    text for people ("<5" for a suppressed cell), `reasons` why anything in the row is
    hidden (e.g. "h2: below-min-cell", "combined: complementary").
    """

    labels: tuple[str, ...]
    values: dict[str, float | None]
    display: dict[str, str]
    suppressed: bool = False
    reasons: tuple[str, ...] = ()


class Coefficient(_Model):
    """One regression coefficient with its standard error, z statistic and two-sided
    p-value (normal approximation, as `glm` reports for logistic models)."""

    name: str
    estimate: float
    std_error: float
    z: float
    p_value: float


class StatisticResult(_Model):
    """The answer to one statistic of the spec."""

    id: str
    kind: str
    label: str | None = None
    columns: tuple[str, ...] = ()
    rows: tuple[ResultRow, ...] = ()
    coefficients: tuple[Coefficient, ...] = ()
    notes: tuple[str, ...] = ()
    refused: dict[str, str] = Field(default_factory=dict)


class SuppressedCell(_Model):
    """A cell hidden in the combined result, and why."""

    statistic: str
    labels: tuple[str, ...]
    part: str
    reasons: tuple[str, ...]


class QueryResult(_Model):
    """The combined result of a federated query (before any DP noise is added)."""

    spec_digest: str
    title: str | None = None
    min_cell_size: int
    nodes: tuple[str, ...]
    statistics: tuple[StatisticResult, ...]
    suppressed: tuple[SuppressedCell, ...] = ()

    def statistic(self, statistic_id: str) -> StatisticResult:
        """The result of one statistic; raises KeyError if the spec has no such id."""
        for stat in self.statistics:
            if stat.id == statistic_id:
                return stat
        raise KeyError(statistic_id)
