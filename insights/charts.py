"""Chart geometry for server-rendered SVG (pure: numbers in, shapes out; no JS, no CDN).

The templates draw what these functions compute: bars as rectangles in a fixed viewBox, so a
chart scales with its container and prints. Amounts stay Decimal until they become coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from insights.forecast import KIND_LABELS, KINDS, MonthTotals

KIND_COLOURS = {
    "recurring": "#2f5bea",
    "milestone": "#0e9384",
    "fixed_fee": "#7a5af8",
    "time_and_materials": "#dc6803",
    "usage": "#4ca30d",
}
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 240, 64, 28, 12


def _share(part: Decimal, whole: Decimal) -> float:
    """The fraction of an axis an amount fills: the one place a Decimal becomes a (pixel) float.

    Amounts themselves stay Decimal on every bar and segment; only SVG coordinates are floats.
    """
    return float(part / whole) if whole else 0.0


def _nice_max(value: Decimal) -> Decimal:
    """A round axis maximum ≥ value: 1, 2 or 5 × a power of ten."""
    if value <= 0:
        return Decimal(1)
    exponent = len(str(int(value))) - 1
    base = Decimal(10) ** exponent
    for step in (1, 2, 5, 10):
        if value <= step * base:
            return step * base
    return 10 * base


@dataclass
class Segment:
    kind: str
    label: str
    colour: str
    x: float
    y: float
    width: float
    height: float
    amount: Decimal
    href: str


@dataclass
class Bar:
    month: date
    label: str
    x: float
    total: Decimal
    href: str
    segments: list[Segment] = field(default_factory=list)


@dataclass
class StackedChart:
    currency: str
    bars: list[Bar]
    ticks: list[tuple[float, Decimal]]
    legend: list[tuple[str, str]]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom_y: int = HEIGHT - BOTTOM


def forecast_chart(*, rows: list[MonthTotals], currency: str, href: str) -> StackedChart:
    """Net amounts per month stacked by kind; ``href`` is formatted with month (YYYY-MM) and kind."""
    plot_h = HEIGHT - BOTTOM - TOP
    totals = [sum((m.net for (c, _), m in row.by_currency_kind.items() if c == currency), Decimal(0)) for row in rows]
    top = _nice_max(max(totals, default=Decimal(0)))
    slot = (WIDTH - LEFT - 8) / max(len(rows), 1)
    bar_w = min(slot * 0.62, 56)
    bars: list[Bar] = []
    used: set[str] = set()
    for index, (row, total) in enumerate(zip(rows, totals, strict=True)):
        x = LEFT + slot * index + (slot - bar_w) / 2
        month = row.month.strftime("%Y-%m")
        bar = Bar(
            month=row.month,
            label=row.month.strftime("%b") + (f" {row.month:%Y}" if row.month.month == 1 or index == 0 else ""),
            x=x,
            total=total,
            href=href.format(month=month, kind=""),
        )
        y = HEIGHT - BOTTOM
        for kind in KINDS:
            money = row.by_currency_kind.get((currency, kind))
            if money is None or money.net <= 0:
                continue
            h = _share(money.net, top) * plot_h
            y -= h
            used.add(kind)
            bar.segments.append(
                Segment(
                    kind,
                    KIND_LABELS[kind],
                    KIND_COLOURS[kind],
                    x,
                    y,
                    bar_w,
                    h,
                    money.net,
                    href.format(month=month, kind=kind),
                )
            )
        bars.append(bar)
    ticks = [(HEIGHT - BOTTOM - plot_h * i / 4, top * i / 4) for i in range(5)]
    legend = [(KIND_LABELS[k], KIND_COLOURS[k]) for k in KINDS if k in used]
    return StackedChart(currency=currency, bars=bars, ticks=ticks, legend=legend)


@dataclass
class HBar:
    label: str
    sublabel: str
    y: float
    width: float
    amount: Decimal
    count: int
    href: str


def horizontal_bars(
    *, items: list[tuple[str, str, Decimal, int, str]], width: int = 360, row_h: int = 26
) -> tuple[list[HBar], int]:
    """(label, sublabel, amount, count, href) → bars scaled to the largest amount, and the chart height."""
    top = max((amount for _, _, amount, _, _ in items), default=Decimal(0)) or Decimal(1)
    bars = [
        HBar(label, sub, i * row_h, _share(amount, top) * width, amount, count, href)
        for i, (label, sub, amount, count, href) in enumerate(items)
    ]
    return bars, max(len(items) * row_h, row_h)
