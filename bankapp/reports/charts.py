"""Server-rendered SVG charts: no script, no style attributes (the CSP is 'self' only).

Each chart is an ``<svg role="img">`` named by its ``<title>`` and described by its ``<desc>``
(``aria-labelledby``); the table next to it on the page carries the same figures as text.
Colours are SVG presentation attributes (``fill=``), which the CSP allows; the text and
lines also take classes styled in app.css.
"""
from __future__ import annotations

from decimal import Decimal
from xml.sax.saxutils import escape

from babel.dates import format_date
from babel.numbers import format_decimal
from flask_babel import gettext
from markupsafe import Markup

from bankapp.platform.formatting import format_day, format_money
from bankapp.platform.i18n import current_locale
from bankapp.reports.service import Summary

WIDTH, HEIGHT = 760, 320
LEFT, RIGHT, TOP, BOTTOM = 84, 16, 40, 64
IN_COLOUR, OUT_COLOUR, LINE_COLOUR = "#047857", "#b91c1c", "#1d4ed8"


def _nice_step(span: Decimal, ticks: int = 5) -> Decimal:
    """A round tick step (1, 2, 2.5 or 5 × 10^n) that splits ``span`` into about ``ticks``."""
    if span <= 0:
        return Decimal(1)
    raw = span / ticks
    magnitude = Decimal(10) ** (len(str(int(raw))) - 1) if raw >= 1 else Decimal("0.01")
    for factor in (1, 2, Decimal("2.5"), 5, 10):
        if raw <= magnitude * factor:
            return magnitude * factor
    return magnitude * 10


def _scale(low: Decimal, high: Decimal):
    step = _nice_step(high - low)
    low = (low / step).to_integral_value(rounding="ROUND_FLOOR") * step
    high = (high / step).to_integral_value(rounding="ROUND_CEILING") * step
    if high == low:
        high = low + step
    ticks = []
    value = low
    while value <= high:
        ticks.append(value)
        value += step
    plot_height = HEIGHT - TOP - BOTTOM

    def y(value) -> float:
        return TOP + plot_height * float((high - Decimal(value)) / (high - low))

    return ticks, y


def _tick_label(value: Decimal) -> str:
    locale = current_locale()
    if abs(value) >= 1_000_000:
        return format_decimal(value / 1_000_000, "#,##0.#", locale=locale) + "M"
    if abs(value) >= 10_000:
        return format_decimal(value / 1000, "#,##0", locale=locale) + "k"
    return format_decimal(value, "#,##0", locale=locale)


def _month(month) -> str:
    """A month in titles and descriptions ("Dec 2026", "déc. 2026")."""
    return format_day(month.month, "month")


def _axis_month(month) -> str:
    """A month under the x axis, kept short ("Dec 26", "déc. 26")."""
    return format_date(month.month, "MMM yy", locale=current_locale())


def _open(chart_id: str, title: str, desc: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{chart_id}" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
    ]


def _axes(ticks, y, x_title: str, y_title: str) -> list[str]:
    parts = ['<g class="axis y-axis">']
    for value in ticks:
        ypos = y(value)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ypos:.1f}" '
                     f'y2="{ypos:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{ypos + 4:.1f}" text-anchor="end" '
                     f'font-size="11" fill="#374151">{escape(_tick_label(value))}</text>')
    parts.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" '
                 f'stroke="#6b7280"/>')
    parts.append(f'<text class="axis-title" x="16" y="{(TOP + HEIGHT - BOTTOM) / 2:.0f}" '
                 f'text-anchor="middle" font-size="12" fill="#374151" '
                 f'transform="rotate(-90 16 {(TOP + HEIGHT - BOTTOM) / 2:.0f})">'
                 f'{escape(y_title)}</text>')
    parts.append('</g>')
    parts.append(f'<text class="axis-title" x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" '
                 f'y="{HEIGHT - 8}" text-anchor="middle" font-size="12" fill="#374151">'
                 f'{escape(x_title)}</text>')
    return parts


def _legend(items: list[tuple[str, str, str]]) -> list[str]:
    parts = ['<g class="legend">']
    x = LEFT
    for shape, colour, label in items:
        if shape == "line":
            parts.append(f'<line x1="{x}" x2="{x + 18}" y1="16" y2="16" stroke="{colour}" '
                         f'stroke-width="3"/>')
        else:
            parts.append(f'<rect x="{x}" y="9" width="14" height="14" fill="{colour}"/>')
        parts.append(f'<text x="{x + 22}" y="20" font-size="12" fill="#1f2937">'
                     f'{escape(label)}</text>')
        x += 30 + 8 * len(label)
    parts.append('</g>')
    return parts


def _x_positions(count: int):
    plot_width = WIDTH - LEFT - RIGHT
    slot = plot_width / max(count, 1)
    return slot, [LEFT + slot * i for i in range(count)]


def in_out_bar_chart(summary: Summary, chart_id: str = "chart-in-out") -> Markup:
    """Grouped bars: money in and money out for each month."""
    months = summary.months
    high = max([m.money_in for m in months] + [m.money_out for m in months] + [Decimal(0)])
    ticks, y = _scale(Decimal(0), high)
    first, last = _month(months[0]), _month(months[-1])
    desc = gettext("Money in and money out per month from %(first)s to %(last)s. Total in "
                   "%(total_in)s, total out %(total_out)s. The table below lists every figure.",
                   first=first, last=last, total_in=format_money(summary.total_in),
                   total_out=format_money(summary.total_out))
    parts = _open(chart_id, gettext("Money in and out per month, %(first)s to %(last)s",
                                    first=first, last=last), desc)
    parts += _legend([("rect", IN_COLOUR, gettext("Money in")),
                      ("rect", OUT_COLOUR, gettext("Money out"))])
    parts += _axes(ticks, y, gettext("Month"), gettext("Amount"))
    slot, xs = _x_positions(len(months))
    bar = slot * 0.36
    base = y(0)
    for month, x in zip(months, xs):
        parts.append(f'<g class="bar-group" data-month="{month.month.strftime("%Y-%m")}">')
        for offset, value, colour, name, title in (
                (slot * 0.12, month.money_in, IN_COLOUR, "in",
                 gettext("%(month)s: money in %(amount)s", month=_month(month),
                         amount=format_money(month.money_in))),
                (slot * 0.52, month.money_out, OUT_COLOUR, "out",
                 gettext("%(month)s: money out %(amount)s", month=_month(month),
                         amount=format_money(month.money_out)))):
            top = y(value)
            parts.append(
                f'<rect class="bar bar-{name}" x="{x + offset:.1f}" y="{top:.1f}" '
                f'width="{bar:.1f}" height="{max(base - top, 0):.1f}" fill="{colour}">'
                f'<title>{escape(title)}</title>'
                f'</rect>')
        parts.append(f'<text x="{x + slot / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                     f'text-anchor="middle" font-size="11" fill="#374151">'
                     f'{escape(_axis_month(month))}</text>')
        parts.append('</g>')
    parts.append('</svg>')
    return Markup("".join(parts))


def balance_line_chart(summary: Summary, chart_id: str = "chart-balance") -> Markup:
    """A line through the month-end balances."""
    months = summary.months
    values = [m.end_balance for m in months]
    ticks, y = _scale(min(values + [Decimal(0)]), max(values + [Decimal(0)]))
    first, last = _month(months[0]), _month(months[-1])
    desc = gettext("Balance at the end of each month from %(first)s (%(opening)s) to %(last)s "
                   "(%(closing)s). The table below lists every figure.", first=first,
                   opening=format_money(values[0]), last=last, closing=format_money(values[-1]))
    parts = _open(chart_id, gettext("Month-end balance, %(first)s to %(last)s", first=first,
                                    last=last), desc)
    parts += _legend([("line", LINE_COLOUR, gettext("Month-end balance"))])
    parts += _axes(ticks, y, gettext("Month"), gettext("Balance"))
    slot, xs = _x_positions(len(months))
    points = [(x + slot / 2, y(v)) for x, v in zip(xs, values)]
    path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
    parts.append(f'<polyline class="balance-line" points="{path}" fill="none" '
                 f'stroke="{LINE_COLOUR}" stroke-width="2.5"/>')
    for month, (px, py), value in zip(months, points, values):
        parts.append(f'<g class="point" data-month="{month.month.strftime("%Y-%m")}">'
                     f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{LINE_COLOUR}">'
                     f'<title>{escape(f"{_month(month)}: {format_money(value)}")}</title>'
                     f'</circle>'
                     f'<text x="{px:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                     f'font-size="11" fill="#374151">{escape(_axis_month(month))}'
                     f'</text></g>')
    parts.append('</svg>')
    return Markup("".join(parts))


__all__ = ["in_out_bar_chart", "balance_line_chart"]
