"""The event loop MedSpace's services run on: uvloop where it is installed (Linux and
macOS; a dependency there), asyncio's own elsewhere. The hub and every node spend much of
their CPU in the loop itself (one wake-up per channel frame, HTTP request and worker
thread hand-off), which uvloop does in C."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's if it is installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on `new_event_loop()`."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)


__all__ = ["new_event_loop", "run"]
