"""SVG geometry for the DSO chart (pure: numbers in, shapes out; the template draws them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 200, 40, 26, 14
COLOURS = ["#2f5bea", "#0e9384", "#7a5af8", "#dc6803"]


@dataclass
class DsoBar:
    month: str
    label: str
    currency: str
    value: Decimal | None
    x: float
    y: float
    width: float
    height: float
    colour: str


@dataclass
class DsoChart:
    bars: list[DsoBar]
    gridlines: list[tuple[float, int]]
    months: list[tuple[str, float]]
    currencies: list[tuple[str, str]]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: float = field(default=HEIGHT - BOTTOM)


def dso_chart(rows: list, *, months: list[str], to_date: bool = False) -> DsoChart:
    """Grouped bars: one group per month, one bar per currency (DSO in days); with ``to_date``
    the last month is still running and is labelled so."""
    currencies = sorted({r.currency for r in rows})
    values = {(r.month, r.currency): r.dso for r in rows}
    top = max([v for v in values.values() if v is not None] + [Decimal(30)])
    top = Decimal(((int(top) // 30) + 1) * 30)
    plot_h = HEIGHT - BOTTOM - TOP
    group_w = (WIDTH - LEFT - 8) / max(len(months), 1)
    bar_w = min(22.0, (group_w - 10) / max(len(currencies), 1))
    bars = []
    for i, month in enumerate(months):
        start = LEFT + i * group_w + (group_w - bar_w * len(currencies)) / 2
        for j, currency in enumerate(currencies):
            value = values.get((month, currency))
            h = float(value / top) * plot_h if value else 0.0
            bars.append(
                DsoBar(
                    month=month,
                    label=f"{month} {currency}: {'—' if value is None else f'{value} days'}",
                    currency=currency,
                    value=value,
                    x=round(start + j * bar_w, 1),
                    y=round(HEIGHT - BOTTOM - h, 1),
                    width=round(bar_w - 2, 1),
                    height=round(h, 1),
                    colour=COLOURS[j % len(COLOURS)],
                )
            )
    step = int(top) // 3
    grid = [(round(HEIGHT - BOTTOM - float(Decimal(v) / top) * plot_h, 1), v) for v in range(0, int(top) + 1, step)]
    month_x = [
        (f"{m} to date" if to_date and i == len(months) - 1 else m, round(LEFT + i * group_w + group_w / 2, 1))
        for i, m in enumerate(months)
    ]
    return DsoChart(
        bars=bars,
        gridlines=grid,
        months=month_x,
        currencies=[(c, COLOURS[j % len(COLOURS)]) for j, c in enumerate(currencies)],
    )
