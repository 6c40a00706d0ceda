"""One benchmark metric record, as every suite writes it to `bench/results/<name>.json`.

The keys are the ones `bench/__main__.py` renders: metric, value, unit, target, anchor, met.
"""

from __future__ import annotations

from typing import Any


def metric(
    name: str,
    value: float,
    unit: str,
    *,
    target: str | None = None,
    met: bool | None = None,
    anchor: str | None = None,
    digits: int | None = 3,
) -> dict[str, Any]:
    """Build one metric record.

    `value` is rounded to `digits` decimal places (integers stay integers); pass
    `digits=None` to keep it as measured. `target` says the goal in words, `met` whether
    this run reached it (None: no goal), `anchor` a published figure to compare with.
    """
    return {
        "metric": name,
        "value": value if digits is None else round(value, digits),
        "unit": unit,
        "target": target,
        "anchor": anchor,
        "met": met,
    }
