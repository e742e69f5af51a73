"""Server-rendered SVG charts: no script, no style attributes (the CSP is 'self' only).

Each chart is an ``<svg role="img">`` named by its ``<title>`` and described by its ``<desc>``
(``aria-labelledby``); the table next to it on the page carries the same figures as text.
Each is drawn in two frames (wide and narrow, see ``Frame``); the page shows one of them.
Colours are SVG presentation attributes (``fill=``), which the CSP allows; the text and
lines also take classes styled in app.css.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from xml.sax.saxutils import escape

from babel.dates import format_date
from babel.numbers import format_decimal
from flask_babel import gettext
from markupsafe import Markup

from bankapp.platform.formatting import format_day, format_money
from bankapp.platform.i18n import current_locale
from bankapp.reports.service import Summary

IN_COLOUR, OUT_COLOUR, LINE_COLOUR = "#047857", "#b91c1c", "#1d4ed8"


@dataclass(frozen=True)
class Frame:
    """One drawing of a chart: its size in SVG units, its margins and its text size.

    An SVG scales with its box, text included, so one drawing cannot be readable everywhere:
    760 units shrunk to a phone's 310 px made 11-unit labels 4-5 px. Each chart is drawn
    twice and app.css shows the one that fits its figure (a container query): the wide one
    from 720 px up (13 units ≥ 12 px), the narrow one below it (15 units at 360 units wide
    stay ≥ 12 px down to a 288 px figure, i.e. a 360 px phone).
    """

    name: str
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    font: int


WIDE = Frame("wide", 760, 320, 72, 16, 52, 60, 13)
NARROW = Frame("narrow", 360, 300, 56, 24, 60, 58, 15)
FRAMES = (WIDE, NARROW)


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


def _scale(low: Decimal, high: Decimal, frame: Frame):
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
    plot_height = frame.height - frame.top - frame.bottom

    def y(value) -> float:
        return frame.top + plot_height * float((high - Decimal(value)) / (high - low))

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


def _open(chart_id: str, title: str, desc: str, frame: Frame) -> list[str]:
    chart_id = f"{chart_id}-{frame.name}"
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{frame.name}" '
        f'id="{chart_id}" role="img" viewBox="0 0 {frame.width} {frame.height}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
    ]


def _text(x: float, y: float, label: str, frame: Frame, anchor: str = "middle",
          css_class: str = "", fill: str = "#374151") -> str:
    attributes = f' class="{css_class}"' if css_class else ""
    return (f'<text{attributes} x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" '
            f'font-size="{frame.font}" fill="{fill}">{escape(label)}</text>')


def _axes(ticks, y, x_title: str, y_title: str, frame: Frame) -> list[str]:
    # The y axis's title sits level above the axis: turned on its side it would need its own
    # column of width, which a phone does not have.
    parts = ['<g class="axis y-axis">']
    for value in ticks:
        ypos = y(value)
        parts.append(f'<line class="grid" x1="{frame.left}" x2="{frame.width - frame.right}" '
                     f'y1="{ypos:.1f}" y2="{ypos:.1f}" stroke="#e5e7eb"/>')
        parts.append(_text(frame.left - 6, ypos + frame.font * 0.35, _tick_label(value), frame,
                           anchor="end"))
    parts.append(f'<line x1="{frame.left}" x2="{frame.left}" y1="{frame.top}" '
                 f'y2="{frame.height - frame.bottom}" stroke="#6b7280"/>')
    parts.append(_text(4, frame.top - frame.font, y_title, frame, anchor="start",
                       css_class="axis-title"))
    parts.append('</g>')
    parts.append(_text((frame.left + frame.width - frame.right) / 2, frame.height - 8, x_title,
                       frame, css_class="axis-title"))
    return parts


def _legend(items: list[tuple[str, str, str]], frame: Frame) -> list[str]:
    parts = ['<g class="legend">']
    x = frame.left
    baseline = 6 + frame.font
    middle = baseline - frame.font * 0.35
    for shape, colour, label in items:
        if shape == "line":
            parts.append(f'<line x1="{x}" x2="{x + 18}" y1="{middle:.1f}" y2="{middle:.1f}" '
                         f'stroke="{colour}" stroke-width="3"/>')
        else:
            parts.append(f'<rect x="{x}" y="{middle - 7:.1f}" width="14" height="14" '
                         f'fill="{colour}"/>')
        parts.append(_text(x + 22, baseline, label, frame, anchor="start", fill="#1f2937"))
        x += 22 + round(_text_width(label, frame)) + 16
    parts.append('</g>')
    return parts


def _x_positions(count: int, frame: Frame):
    plot_width = frame.width - frame.left - frame.right
    slot = plot_width / max(count, 1)
    return slot, [frame.left + slot * i for i in range(count)]


def _text_width(label: str, frame: Frame) -> float:
    """About 0.6 em a letter in a sans-serif face: enough to keep labels apart."""
    return 0.6 * frame.font * len(label)


def _month_labels(months, xs, frame: Frame) -> list[str]:
    """The months' names under the axis: every one when they fit side by side, otherwise
    every n-th counting back from the last (the table lists every month)."""
    labels = [_axis_month(month) for month in months]
    spacing = xs[1] - xs[0] if len(xs) > 1 else frame.width
    widest = max(_text_width(label, frame) for label in labels) + frame.font / 2
    every = max(1, math.ceil(widest / spacing))
    baseline = frame.height - frame.bottom + frame.font + 4
    return [_text(x, baseline, label, frame) if (len(labels) - 1 - index) % every == 0 else ""
            for index, (label, x) in enumerate(zip(labels, xs))]


def in_out_bar_chart(summary: Summary, chart_id: str = "chart-in-out") -> Markup:
    """Grouped bars: money in and money out for each month, a wide and a narrow drawing."""
    return Markup("".join(_in_out_bars(summary, chart_id, frame) for frame in FRAMES))


def _in_out_bars(summary: Summary, chart_id: str, frame: Frame) -> str:
    months = summary.months
    high = max([m.money_in for m in months] + [m.money_out for m in months] + [Decimal(0)])
    ticks, y = _scale(Decimal(0), high, frame)
    first, last = _month(months[0]), _month(months[-1])
    desc = gettext("Money in and money out per month from %(first)s to %(last)s. Total in "
                   "%(total_in)s, total out %(total_out)s. The table below lists every figure.",
                   first=first, last=last, total_in=format_money(summary.total_in),
                   total_out=format_money(summary.total_out))
    parts = _open(chart_id, gettext("Money in and out per month, %(first)s to %(last)s",
                                    first=first, last=last), desc, frame)
    parts += _legend([("rect", IN_COLOUR, gettext("Money in")),
                      ("rect", OUT_COLOUR, gettext("Money out"))], frame)
    parts += _axes(ticks, y, gettext("Month"), gettext("Amount"), frame)
    slot, xs = _x_positions(len(months), frame)
    bar = slot * 0.36
    base = y(0)
    labels = _month_labels(months, [x + slot / 2 for x in xs], frame)
    for month, x, label in zip(months, xs, labels):
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
        parts.append(label)
        parts.append('</g>')
    parts.append('</svg>')
    return "".join(parts)


def balance_line_chart(summary: Summary, chart_id: str = "chart-balance") -> Markup:
    """A line through the month-end balances, a wide and a narrow drawing."""
    return Markup("".join(_balance_line(summary, chart_id, frame) for frame in FRAMES))


def _balance_line(summary: Summary, chart_id: str, frame: Frame) -> str:
    months = summary.months
    values = [m.end_balance for m in months]
    ticks, y = _scale(min(values + [Decimal(0)]), max(values + [Decimal(0)]), frame)
    first, last = _month(months[0]), _month(months[-1])
    desc = gettext("Balance at the end of each month from %(first)s (%(opening)s) to %(last)s "
                   "(%(closing)s). The table below lists every figure.", first=first,
                   opening=format_money(values[0]), last=last, closing=format_money(values[-1]))
    parts = _open(chart_id, gettext("Month-end balance, %(first)s to %(last)s", first=first,
                                    last=last), desc, frame)
    parts += _legend([("line", LINE_COLOUR, gettext("Month-end balance"))], frame)
    parts += _axes(ticks, y, gettext("Month"), gettext("Balance"), frame)
    slot, xs = _x_positions(len(months), frame)
    points = [(x + slot / 2, y(v)) for x, v in zip(xs, values)]
    path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
    parts.append(f'<polyline class="balance-line" points="{path}" fill="none" '
                 f'stroke="{LINE_COLOUR}" stroke-width="2.5"/>')
    labels = _month_labels(months, [px for px, _ in points], frame)
    for month, (px, py), value, label in zip(months, points, values, labels):
        parts.append(f'<g class="point" data-month="{month.month.strftime("%Y-%m")}">'
                     f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{LINE_COLOUR}">'
                     f'<title>{escape(f"{_month(month)}: {format_money(value)}")}</title>'
                     f'</circle>'
                     + label + '</g>')
    parts.append('</svg>')
    return "".join(parts)


__all__ = ["in_out_bar_chart", "balance_line_chart"]
