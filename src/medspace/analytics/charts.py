"""Inline SVG bar charts for reports: no JavaScript, no fonts or files fetched.

A report must open on a clinician's locked-down workstation, offline, years later, so the
charts are plain SVG written here. Every text that reaches the SVG is escaped.
Bars are horizontal (labels stay readable however long), drawn from a zero line so
negative values (regression coefficients) go left; hidden values are drawn as an empty
dashed outline with their display text (e.g. "<5"); optional whiskers show an interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

ROW = 22
LABEL_WIDTH = 190
PLOT_WIDTH = 360
VALUE_WIDTH = 120


@dataclass(frozen=True)
class Bar:
    """One bar: its label, its value (None when hidden), the text shown beside it, and
    an optional interval (low, high) drawn as a whisker."""

    label: str
    value: float | None
    display: str
    interval: tuple[float, float] | None = None


def bar_chart(bars: Sequence[Bar], *, title: str) -> str:
    """An SVG bar chart (a string to put inside HTML) of `bars`, with an accessible title."""
    height = ROW * max(len(bars), 1) + 12
    width = LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH
    low, high = _extent(bars)
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return LABEL_WIDTH + (value - low) / span * PLOT_WIDTH

    zero = x(0.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{zero:.1f}" y1="0" x2="{zero:.1f}" y2="{height - 6}" class="axis"/>',
    ]
    for row, bar in enumerate(bars):
        top = 6 + row * ROW
        middle = top + ROW / 2
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{middle + 4:.1f}" text-anchor="end">'
            f"{escape(_clip(bar.label))}</text>"
        )
        if bar.value is None or not math.isfinite(bar.value):
            parts.append(
                f'<rect x="{zero:.1f}" y="{top + 3}" width="{PLOT_WIDTH / 10:.1f}" '
                f'height="{ROW - 6}" class="hidden"/>'
            )
            end = zero + PLOT_WIDTH / 10
        else:
            left, right = sorted((zero, x(bar.value)))
            parts.append(
                f'<rect x="{left:.1f}" y="{top + 3}" width="{max(right - left, 0.5):.1f}" '
                f'height="{ROW - 6}" class="bar"/>'
            )
            end = right
        if bar.interval is not None and all(math.isfinite(v) for v in bar.interval):
            a, b = x(bar.interval[0]), x(bar.interval[1])
            parts.append(
                f'<line x1="{a:.1f}" y1="{middle:.1f}" x2="{b:.1f}" y2="{middle:.1f}" '
                f'class="whisker"/>'
            )
            end = max(end, a, b)
        parts.append(
            f'<text x="{min(end + 6, width - VALUE_WIDTH + 60):.1f}" y="{middle + 4:.1f}">'
            f"{escape(bar.display)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _extent(bars: Sequence[Bar]) -> tuple[float, float]:
    values = [0.0]
    for bar in bars:
        if bar.value is not None and math.isfinite(bar.value):
            values.append(bar.value)
        if bar.interval is not None:
            values.extend(v for v in bar.interval if math.isfinite(v))
    return min(values), max(values)


def _clip(label: str, limit: int = 28) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
