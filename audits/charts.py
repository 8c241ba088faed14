"""The report's "would have billed vs billed" chart as SVG geometry (pure: monthly rows in, shapes out).

Drawn by the page and the PDF alike (WeasyPrint renders SVG), no JavaScript. Amounts stay Decimal;
only coordinates become floats.
"""

from __future__ import annotations

from decimal import Decimal

WIDTH, HEIGHT, LEFT, BOTTOM, TOP, RIGHT = 640, 210, 70, 26, 10, 8
OWED_COLOUR, BILLED_COLOUR = "#2f5bea", "#98a2b3"


def _nice_max(value: Decimal) -> Decimal:
    if value <= 0:
        return Decimal(1)
    exponent = len(str(int(value))) - 1
    base = Decimal(10) ** exponent
    for step in (1, 2, 5, 10):
        if value <= step * base:
            return step * base
    return 10 * base


def monthly_chart(currency: str, months: list[dict], *, height: int = HEIGHT) -> dict:
    top = _nice_max(max([Decimal(m["owed"]) for m in months] + [Decimal(m["billed"]) for m in months] + [Decimal(0)]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    slot = plot_w / max(len(months), 1)
    bar_w = min(slot * 0.36, 22)
    bars = []
    for i, m in enumerate(months):
        owed, billed = Decimal(m["owed"]), max(Decimal(m["billed"]), Decimal(0))
        x = LEFT + i * slot + slot / 2
        h_owed = float(owed / top) * plot_h
        h_billed = float(billed / top) * plot_h
        bars.append(
            {
                **m,
                "x": x,
                "owed_x": x - bar_w - 1,
                "billed_x": x + 1,
                "width": bar_w,
                "owed_y": TOP + plot_h - h_owed,
                "owed_h": h_owed,
                "billed_y": TOP + plot_h - h_billed,
                "billed_h": h_billed,
                "short": owed - billed > 0,
                "over": owed - Decimal(m["billed"]) < 0,  # billed more than the contracts say
                "gap_abs": abs(owed - Decimal(m["billed"])),
                "show_label": len(months) <= 12 or i % 2 == 0,
            }
        )
    ticks = [(TOP + plot_h - plot_h * k / 4, top * k / 4) for k in range(5)]
    return {
        "currency": currency,
        "width": WIDTH,
        "height": height,
        "left": LEFT,
        "bars": bars,
        "any_over": any(b["over"] for b in bars),
        "ticks": ticks,
        "baseline": TOP + plot_h,
        "owed_colour": OWED_COLOUR,
        "billed_colour": BILLED_COLOUR,
    }
