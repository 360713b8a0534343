"""Server-rendered SVG charts for the dashboard: data in, an SVG string out.

Pure functions with no I/O, so they are tested on their output alone. Every
chart is an accessible image: ``role="img"`` labelled by its ``<title>`` and
``<desc>``, with its numbers written as text next to the bars (not only as
lengths or colours) and a ``<title>`` tooltip on each bar. Labels come from
message data (account names, rule ids), so every piece of text is escaped.

Colours are presentation attributes, not ``style`` attributes: the console's
Content-Security-Policy forbids inline styles, and attributes are not styles.
Bars can link to the filtered decision log (``href``); SVG links are focusable,
so the charts work with the keyboard too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape

from markupsafe import Markup

#: Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")

#: The colour of an "everything else" layer.
OTHER_COLOUR = "#999999"

#: The colour of each decision action, the same in every chart and legend.
ACTION_COLOURS = {"pass": "#009E73", "quarantine": "#E69F00", "reject": "#D55E00"}

_FONT = 12  # px, the label size
_CHAR = 7.0  # px, the average width of one character at _FONT (for layout, not exact)
_LABEL_MAX = 32  # characters shown of a label before it is shortened (the tooltip has it whole)


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a bar chart.

    Attributes:
        label: what the bar counts (a rule id, an account...), shown as text.
        value: the count (negative values are drawn as zero).
        href: where the bar links to (the decision log filtered on it), if anywhere.
    """

    label: str
    value: int
    href: str | None = None


@dataclass(frozen=True, slots=True)
class Series:
    """One stacked layer of a column chart: a name, its colour and one value per column."""

    name: str
    values: tuple[int, ...]
    colour: str


def _attr(value: object) -> str:
    """``value`` escaped for a double-quoted XML attribute."""
    return escape(str(value), quote=True)


def _text(value: object) -> str:
    """``value`` escaped for XML text content."""
    return escape(str(value), quote=False)


def _num(value: float) -> str:
    """A coordinate with at most one decimal (keeps the SVG small and stable for tests)."""
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"


def shorten(label: str, limit: int = _LABEL_MAX) -> str:
    """``label`` cut to ``limit`` characters with an ellipsis when it is longer."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def nice_ticks(maximum: int, count: int = 4) -> tuple[int, ...]:
    """Round axis ticks from 0 covering ``maximum``: 1, 2 or 5 times a power of ten apart.

    >>> nice_ticks(37)
    (0, 10, 20, 30, 40)
    """
    if maximum <= 0:
        return (0, 1)
    raw = maximum / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(1, int(step))
    top = math.ceil(maximum / step) * step
    return tuple(range(0, top + 1, step))


def days_between(first: date, last: date) -> tuple[date, ...]:
    """Every calendar day from ``first`` to ``last`` inclusive (empty when ``last`` is before)."""
    return tuple(first + timedelta(days=n) for n in range((last - first).days + 1))


def _open(chart_id: str, title: str, desc: str, width: float, height: float) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{_attr(chart_id)}" role="img"'
        f' viewBox="0 0 {_num(width)} {_num(height)}" width="{_num(width)}" height="{_num(height)}"'
        f' aria-labelledby="{_attr(chart_id)}-title {_attr(chart_id)}-desc" font-size="{_FONT}"'
        ' font-family="system-ui, sans-serif">',
        f'<title id="{_attr(chart_id)}-title">{_text(title)}</title>',
        f'<desc id="{_attr(chart_id)}-desc">{_text(desc)}</desc>',
    ]


def _empty(chart_id: str, title: str, message: str) -> Markup:
    parts = _open(chart_id, title, message, 480, 48)
    parts.append(f'<text x="8" y="28" fill="#444">{_text(message)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every piece above was escaped)


def bar_chart(
    chart_id: str,
    title: str,
    bars: Sequence[Bar],
    *,
    unit: str = "decisions",
    colour: str = PALETTE[0],
    empty: str = "No decisions in this period.",
) -> Markup:
    """A horizontal bar chart, one labelled row per bar, in the order given.

    Args:
        chart_id: unique id on the page (prefixes the title and desc ids).
        title: what the chart shows; read out by screen readers.
        bars: the rows; their labels and counts are drawn as text.
        unit: the counted noun, for the description and tooltips.
        colour: the bars' fill.
        empty: what the chart says when there is nothing to draw.
    """
    if not bars:
        return _empty(chart_id, title, empty)
    row, gap, pad = 22, 6, 8
    labels = [shorten(b.label or "(none)") for b in bars]
    label_width = min(_LABEL_MAX, max(len(label) for label in labels)) * _CHAR + pad
    plot_width = 280.0
    value_width = max(len(str(b.value)) for b in bars) * _CHAR + pad
    width = pad + label_width + plot_width + value_width
    height = pad * 2 + len(bars) * (row + gap) - gap
    top = max(max(b.value for b in bars), 1)
    summary = "; ".join(f"{b.label or '(none)'}: {b.value}" for b in bars)
    parts = _open(chart_id, title, f"{title}, {unit} per row. {summary}.", width, height)
    for index, (bar, label) in enumerate(zip(bars, labels, strict=True)):
        y = pad + index * (row + gap)
        length = plot_width * max(bar.value, 0) / top
        x0 = pad + label_width
        tip = f"{bar.label or '(none)'}: {bar.value} {unit}"
        body = [
            f"<title>{_text(tip)}</title>",
            f'<text x="{_num(x0 - pad)}" y="{_num(y + row * 0.7)}" text-anchor="end" fill="#222">{_text(label)}</text>',
            f'<rect x="{_num(x0)}" y="{_num(y)}" width="{_num(max(length, 1))}" height="{row}"'
            f' fill="{_attr(colour)}"/>',
            f'<text x="{_num(x0 + length + 4)}" y="{_num(y + row * 0.7)}" fill="#222">{bar.value}</text>',
        ]
        if bar.href:
            parts.append(f'<a href="{_attr(bar.href)}" class="bar">{"".join(body)}</a>')
        else:
            parts.append(f'<g class="bar">{"".join(body)}</g>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every piece above was escaped)


def stacked_columns(
    chart_id: str,
    title: str,
    columns: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "decisions",
    hrefs: Sequence[str | None] | None = None,
    empty: str = "No decisions in this period.",
) -> Markup:
    """Vertical columns (one per day, say) with one stacked segment per series, and a legend.

    Args:
        chart_id: unique id on the page.
        title: what the chart shows.
        columns: the column labels, left to right (dates as ``YYYY-MM-DD``).
        series: the stacked layers, bottom first; each has one value per column.
        unit: the counted noun.
        hrefs: per column, where clicking it leads (the log for that day), if anywhere.
        empty: what the chart says when every value is zero.

    Raises:
        ValueError: a series does not have one value per column.
    """
    for layer in series:
        if len(layer.values) != len(columns):
            raise ValueError(f"series {layer.name!r} has {len(layer.values)} values for {len(columns)} columns")
    totals = [sum(max(layer.values[i], 0) for layer in series) for i in range(len(columns))]
    if not columns or not any(totals):
        return _empty(chart_id, title, empty)
    left, right, top_pad, bottom = 44, 12, 22, 40
    plot_height = 180.0
    slot = max(12.0, min(96.0, 720.0 / len(columns)))
    width = left + slot * len(columns) + right
    keys = _legend(series, left, max(width, 320) - right)
    legend = keys[-1][1] + 20 if keys else 0
    height = legend + top_pad + plot_height + bottom
    ticks = nice_ticks(max(totals))
    scale = plot_height / ticks[-1]
    base = legend + top_pad + plot_height
    per_series = "; ".join(f"{layer.name} {sum(layer.values)}" for layer in series)
    desc = f"{title}: {len(columns)} columns from {columns[0]} to {columns[-1]}, {sum(totals)} {unit} ({per_series})."
    parts = _open(chart_id, title, desc, max(width, 320), height)
    # Legend: a swatch and the series name as text, so colour is never the only cue.
    for layer, (x, y) in zip(series, keys, strict=True):
        parts.append(f'<rect x="{_num(x)}" y="{_num(y)}" width="12" height="12" fill="{_attr(layer.colour)}"/>')
        parts.append(f'<text x="{_num(x + 16)}" y="{_num(y + 10)}" fill="#222">{_text(layer.name)}</text>')
    # Axis: horizontal grid lines with their values.
    for tick in ticks:
        y = base - tick * scale
        parts.append(
            f'<line x1="{left}" y1="{_num(y)}" x2="{_num(width - right)}" y2="{_num(y)}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{_num(y + 4)}" text-anchor="end" fill="#444">{tick}</text>'
        )
    # One x label every ``every`` columns so the labels never overlap.
    every = max(1, math.ceil(6 * _CHAR / slot))
    for index, column in enumerate(columns):
        x0 = left + index * slot
        bar_width = slot * 0.7
        y = base
        body = [f"<title>{_text(_column_tip(column, series, index, totals[index], unit))}</title>"]
        for layer in series:
            value = max(layer.values[index], 0)
            if not value:
                continue
            h = value * scale
            y -= h
            body.append(
                f'<rect x="{_num(x0 + slot * 0.15)}" y="{_num(y)}" width="{_num(bar_width)}"'
                f' height="{_num(h)}" fill="{_attr(layer.colour)}"/>'
            )
        if totals[index] and slot >= 3 * _CHAR:
            body.append(
                f'<text x="{_num(x0 + slot / 2)}" y="{_num(y - 4)}" text-anchor="middle" fill="#222">'
                f"{totals[index]}</text>"
            )
        href = hrefs[index] if hrefs is not None and index < len(hrefs) else None
        if href and totals[index]:
            parts.append(f'<a href="{_attr(href)}" class="column">{"".join(body)}</a>')
        else:
            parts.append(f'<g class="column">{"".join(body)}</g>')
        if index % every == 0:
            parts.append(
                f'<text x="{_num(x0 + slot / 2)}" y="{_num(base + 16)}" text-anchor="middle" fill="#444">'
                f"{_text(_short_day(column))}</text>"
            )
    parts.append(f'<line x1="{left}" y1="{_num(base)}" x2="{_num(width - right)}" y2="{_num(base)}" stroke="#888"/>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every piece above was escaped)


def _legend(series: Sequence[Series], left: float, right: float) -> list[tuple[float, float]]:
    """Where each legend key goes: left to right, wrapping onto a new row before ``right``."""
    places: list[tuple[float, float]] = []
    x, y = left, 4.0
    for layer in series:
        span = 16 + len(layer.name) * _CHAR + 16
        if x > left and x + span > right:
            x, y = left, y + 18
        places.append((x, y))
        x += span
    return places


def _column_tip(column: str, series: Sequence[Series], index: int, total: int, unit: str) -> str:
    shares = ", ".join(f"{layer.name} {layer.values[index]}" for layer in series if layer.values[index])
    return f"{column}: {total} {unit}" + (f" ({shares})" if shares else "")


def _short_day(column: str) -> str:
    """``2025-05-01`` as ``05-01`` (the year is in the title); other labels unchanged."""
    if len(column) == 10 and column[4] == "-" and column[7] == "-":
        return column[5:]
    return column
