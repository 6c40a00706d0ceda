"""Connectors by declared name ("fhir-ndjson", "hl7v2", ...), as STYLE.md asks for
extension points: a connector class declares `name` and registers itself with
`@register_connector`; `get_connector(name)` hands out an instance."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from medspace.connectors.base import Connector, ConnectorError

C = TypeVar("C", bound=Callable[[], Connector])

_REGISTRY: dict[str, Callable[[], Connector]] = {}


def register_connector(cls: C) -> C:
    """Class decorator: make a connector available under its declared `name`.

    Raises `ConnectorError` when the name is empty or already taken (two connectors must
    never answer to one name)."""
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not name:
        raise ConnectorError(f"{cls!r} declares no `name`; give the connector a name")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ConnectorError(f"connector name {name!r} is already registered; pick another")
    _REGISTRY[name] = cls
    return cls


def get_connector(name: str) -> Connector:
    """A connector instance by its declared name; `ConnectorError` names the known ones."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ConnectorError(f"unknown format {name!r}; use one of: {known}") from None
    return factory()


def connector_names() -> list[str]:
    """The registered format names, sorted."""
    return sorted(_REGISTRY)
