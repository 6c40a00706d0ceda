"""Turning pydantic validation errors into policy errors without echoing input values."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from medspace.policy.errors import ProjectError

M = TypeVar("M", bound=BaseModel)


def describe(exc: ValidationError) -> str:
    """'field: problem; field: problem' naming locations and rules, never the input."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "value"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def parse(model: type[M], data: Any, what: str) -> M:
    """Validate `data` as `model`; raises `ProjectError` describing each problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ProjectError(f"invalid {what}: {describe(exc)}; fix these fields and retry") from None


def parse_json(model: type[M], text: str | bytes, what: str) -> M:
    """Validate JSON text as `model`; raises `ProjectError` describing each problem."""
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        raise ProjectError(f"invalid {what}: {describe(exc)}; fix these fields and retry") from None
