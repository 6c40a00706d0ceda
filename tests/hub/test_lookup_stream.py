"""The hub's NDJSON stream of a lookup: every line, in order, whole; answers that are
already waiting when the stream is written leave together in one chunk."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

from medspace.hub.lookup import LookupHub, LookupRun


def _chunks(produce: Any) -> list[bytes]:
    hub = LookupHub(cast(Any, None), cast(Any, None))
    hub._fan_out = produce  # type: ignore[method-assign]

    async def main() -> list[bytes]:
        return [chunk async for chunk in hub.stream(cast(LookupRun, None))]

    return asyncio.run(main())


def _line(n: int) -> bytes:
    return json.dumps({"type": "answer", "node": f"h{n}"}).encode() + b"\n"


def test_answers_waiting_together_leave_in_one_chunk_in_order() -> None:
    async def produce(_run: LookupRun, lines: asyncio.Queue[bytes | None]) -> None:
        for n in range(3):
            lines.put_nowait(_line(n))
        lines.put_nowait(None)

    chunks = _chunks(produce)
    assert chunks == [_line(0) + _line(1) + _line(2)]


def test_answers_arriving_apart_stream_as_they_come() -> None:
    async def produce(_run: LookupRun, lines: asyncio.Queue[bytes | None]) -> None:
        for n in range(3):
            lines.put_nowait(_line(n))
            await asyncio.sleep(0.01)
        lines.put_nowait(None)

    chunks = _chunks(produce)
    assert chunks == [_line(0), _line(1), _line(2)]
    text = b"".join(chunks).decode()
    assert [json.loads(line)["node"] for line in text.splitlines()] == ["h0", "h1", "h2"]


def test_an_empty_stream_ends_at_once() -> None:
    async def produce(_run: LookupRun, lines: asyncio.Queue[bytes | None]) -> None:
        lines.put_nowait(None)

    assert _chunks(produce) == []
