"""JSON containers that cannot be changed in place, for the dict fields of frozen models.

A frozen pydantic model stops `project.cohort = ...` but not `project.cohort["x"] = ...`.
What is derived from a project or a spec is remembered per object
(`medspace.memo.by_identity`: the contract hash a node checks on every task, the names
that line up released cells), so a dict changed in place would leave a stale hash or
name behind without a word. `freeze` turns a JSON value into `FrozenDict` / `FrozenList`:
real `dict` and `list` subclasses (JSON encoders, pydantic and `==` treat them as their
plain kind), whose mutating methods raise `TypeError`. To change one, build a new model.
"""

from __future__ import annotations

from typing import Any, NoReturn


def _refuse(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise TypeError(
        f"this {type(self).__name__} belongs to a frozen model and cannot be changed in "
        "place (results derived from the model are remembered); build a new model instead"
    )


class FrozenDict(dict[str, Any]):
    """A `dict` whose contents cannot change after it is made."""

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    @classmethod
    def fromkeys(cls, keys: Any, value: Any = None) -> FrozenDict:  # type: ignore[override]
        """A frozen dict of `keys`, each holding `value`."""
        return cls(dict.fromkeys(keys, value))

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[str, Any]]]:
        return (FrozenDict, (dict(self),))

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
        return self


class FrozenList(list[Any]):
    """A `list` whose contents cannot change after it is made."""

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __reduce__(self) -> tuple[type[FrozenList], tuple[list[Any]]]:
        return (FrozenList, (list(self),))

    def __copy__(self) -> FrozenList:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenList:
        return self


def freeze(value: Any) -> Any:
    """`value` with every dict and list in it, at any depth, made anew as `FrozenDict` /
    `FrozenList` (a tuple stays a tuple of frozen items; other values are kept as they
    are: strings, numbers, frozen models)."""
    if isinstance(value, dict):
        return FrozenDict({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return FrozenList(freeze(item) for item in value)
    if type(value) is tuple:
        return tuple(freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """A plain, changeable deep copy of a (frozen) JSON value: dicts and lists anew."""
    if isinstance(value, dict):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(item) for item in value]
    return value


__all__ = ["FrozenDict", "FrozenList", "freeze", "thaw"]
