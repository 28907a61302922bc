"""Bar charts as plain geometry for the SVG templates (no JavaScript, no inline style:
the page's CSS colours them, and print CSS keeps them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

WIDTH = 600
HEIGHT = 200
GAP = 4
LABEL_BAND = 0  # labels live in the data table next to the chart


@dataclasses.dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int  # index of the stacked part (CSS class series-N)


@dataclasses.dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]


def stacked_bars(columns: Sequence[Sequence[int]]) -> Chart:
    """One column per item, each a stack of non-negative values, scaled to the tallest."""
    tallest = max((sum(max(v, 0) for v in column) for column in columns), default=0)
    bars: list[Bar] = []
    if not columns:
        return Chart(WIDTH, HEIGHT, bars)
    step = WIDTH / len(columns)
    for index, column in enumerate(columns):
        top = float(HEIGHT)
        for series, value in enumerate(column):
            if value <= 0 or tallest == 0:
                continue
            height = HEIGHT * value / tallest
            top -= height
            bars.append(
                Bar(
                    round(index * step + GAP / 2, 1),
                    round(top, 1),
                    round(step - GAP, 1),
                    round(height, 1),
                    series,
                )
            )
    return Chart(WIDTH, HEIGHT, bars)
