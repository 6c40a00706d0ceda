"""Shared pieces of the query spec: limits, field types and the frozen base model."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

SPEC_VERSION = 1
DEFAULT_REFERENCE_DATE = date(2024, 1, 1)
MAX_FILTERS = 50
MAX_VARIABLES = 100
MAX_STATISTICS = 50
MAX_CATEGORIES = 100
MAX_EDGES = 1001
MAX_COVARIATES = 50

Domain = Literal["condition", "drug", "measurement", "observation", "procedure"]
Pick = Literal["earliest", "latest"]

_CODE = r"^[A-Za-z0-9][A-Za-z0-9.\-_/]{0,63}\*?$"
_SYSTEM = r"^[A-Za-z][A-Za-z0-9 .:/\-_]{0,127}$"
VariableName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
StatisticId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_\-]{0,39}$")]
Label = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[^\x00-\x1f]+$")]
#: Labels the layout uses for margins and totals; no category may be called that.
RESERVED_LABELS = frozenset({"all", "total"})
Code = Annotated[str, Field(pattern=_CODE)]
System = Annotated[str, Field(pattern=_SYSTEM)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _unreserved(label: str) -> str:
    if label.lower() in RESERVED_LABELS:
        raise ValueError(f"'{label}' is reserved for margins and totals; choose another label")
    return label


def _unique_labels(labels: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(labels)) != len(labels):
        raise ValueError("category labels must be unique")
    return labels
