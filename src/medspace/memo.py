"""Remembering what is derived from a frozen object, by that object's identity.

A node answers statistic after statistic of one session against the same project and
spec objects; some of what it derives from them (the contract hash a task must carry,
the names that line up cells across queries) costs canonical JSON and a hash each time.
`by_identity` remembers such a function's result per (object, other arguments).

Keyed by identity, not equality: comparing two pydantic models field by field costs as
much as the work it saves. The cache holds the object itself, so its id cannot be reused
while the entry lives. Only for frozen objects, frozen all the way down (dict fields as
`medspace.frozen.FrozenDict`): a changed copy (`model_copy(update=...)`) is a new object
with its own entry.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from functools import wraps
from typing import TypeVar

R = TypeVar("R")


def by_identity(maxsize: int = 64) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Decorate `f(obj, *args)`: results remembered per (id(obj), args), least recently
    used first out beyond `maxsize`. Exceptions are not remembered."""

    def decorate(function: Callable[..., R]) -> Callable[..., R]:
        cache: OrderedDict[tuple[int, tuple[Hashable, ...]], tuple[object, R]] = OrderedDict()
        lock = threading.Lock()

        @wraps(function)
        def remembered(obj: object, *args: Hashable) -> R:
            key = (id(obj), args)
            with lock:
                found = cache.get(key)
                if found is not None and found[0] is obj:
                    cache.move_to_end(key)
                    return found[1]
            result = function(obj, *args)
            with lock:
                cache[key] = (obj, result)
                cache.move_to_end(key)
                while len(cache) > maxsize:
                    cache.popitem(last=False)
            return result

        return remembered

    return decorate


__all__ = ["by_identity"]
