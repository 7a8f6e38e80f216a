"""Charts for the editors' report pages, drawn on the server as inline SVG.

Why drawn here, as SVG in the page: the desk's pages work without JavaScript (and its
Content-Security-Policy runs only its own scripts), a report is printed, saved and forwarded to funders,
and SVG stays sharp at any zoom while costing a few kilobytes. No library is needed for three kinds of
chart: this is the standard library and `markupsafe`, which comes with Jinja2. Each chart is a picture
of numbers the page also shows in a table beside it, so nothing is known only from the picture.

The accessibility rules followed:

- `role="img"` with `aria-labelledby` naming the chart's `<title>` and a `<desc>` that sums it up in
  one sentence (the highest and lowest values, or the largest bars), so a screen reader hears the
  point of the chart; "Nothing to show yet" when there is nothing (no data, or every value 0).
- Series are told apart by more than colour (WCAG 1.4.1): a legend names each one; lines differ in
  dash pattern and marker shape, columns keep the legend's order in every group. The colours have at
  least 3:1 contrast against white (WCAG 1.4.11), and the chart paints its own white backdrop, so the
  same colours hold when the page around it is dark.
- Text is at least 12 user units (13 here), dark (#222 on white: 15.9:1) and in the page's own kind of
  font (`system-ui, sans-serif`). Labels too long for the drawing are cut with an ellipsis there and
  given whole in a `<title>`; the x axis shows at most 12 labels, fewer when they would overlap.
- Every point, column and bar carries a `<title>` with its label and exact value, shown on hover.

And the rules of the page it goes into: presentation attributes only, never a `style` attribute or a
`<style>` element (the desk's policy, `style-src 'self'`, would block them); the only ids are
`{chart_id}-title` and `{chart_id}-desc`, so several charts share a page; every piece of text from the
data is escaped (everything is built as `Markup`, which escapes whatever plain string joins it). The
output is deterministic and coordinates have one decimal, so pages stay small and compare equal.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Each at least 3:1 against white (WCAG 1.4.11); the n-th series takes the n-th colour, dash and marker.
PALETTE = ("#1f5fa8", "#b3261e", "#2e7d32", "#6a3d9a", "#8a5a00")
DASHES = ("", "8 4", "2 3", "8 3 2 3", "14 4")
MARKERS = ("circle", "square", "triangle", "diamond", "cross")
TEXT = "#222222"
AXIS = "#595959"
GRID = "#d9d9d9"  # gridlines only guide the eye: the tick labels carry the values
BACKDROP = "#ffffff"
FONT = "system-ui, sans-serif"
FONT_SIZE = 13
CHAR = FONT_SIZE * 0.6  # a generous average width of one character, to keep labels apart
WIDTH = 600  # of the viewBox: the chart scales to its container
PLOT_HEIGHT = 220
MAX_X_LABELS = 12
X_LABEL_CHARS = 16
BAR_LABEL_CHARS = 26
MARK_EVERY_POINT = 40  # longer lines are marked at their labelled points only: the table has every value
ROW = 28
BAR = 18
NOTHING = "Nothing to show yet"
_CHART_ID = re.compile(r"[a-z][a-z0-9-]*")


@dataclass(frozen=True)
class Series:
    """One named row of values, one per label: a line, or the same column in every group."""

    name: str  # shown in the legend
    values: Sequence[float]  # one per label; not negative (the axes start at zero)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", str(self.name))  # plain text, even if handed over as Markup
        object.__setattr__(self, "values", tuple(_value(value) for value in self.values))


# --- Shared pieces ----------------------------------------------------------------------------------------


def _value(value: float) -> float:
    """A value as a float (a database may hand over a Decimal); ValueError for what cannot be drawn."""
    try:
        as_float = float(value) if not isinstance(value, str | bytes) else math.nan
    except (TypeError, ValueError):
        as_float = math.nan
    if not math.isfinite(as_float) or as_float < 0:
        raise ValueError(f"a chart's values are finite numbers, not negative: got {value!r}")
    return as_float


def _check_id(chart_id: str) -> None:
    if not isinstance(chart_id, str) or not _CHART_ID.fullmatch(chart_id):
        raise ValueError(f"chart_id must match [a-z][a-z0-9-]*: got {chart_id!r}")


def _coordinate(x: float) -> str:
    """One decimal at most: `12.0` is written `12`."""
    text = f"{x:.1f}".removesuffix(".0")
    return "0" if text == "-0" else text


def number(value: float, percent: bool = False) -> str:
    """How a value reads everywhere (ticks, titles, the desc): `12,000`, `3.25`, or `25%` for 0.25."""
    if percent:
        value *= 100
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return text + "%" if percent else text


def _with_unit(value: str, unit: str) -> str:
    return f"{value} {unit}" if unit else value


def _cut(text: str, most: int) -> str:
    """`text` shortened to `most` characters, the last an ellipsis, if it is longer."""
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"


def _width(text: str) -> float:
    return len(text) * CHAR


def _el(tag: str, *children: Markup | str, **attrs: object) -> Markup:
    """An element. Plain strings among the children are text and get escaped; so does every attribute.
    `class_` is written `class`, `text_anchor` is written `text-anchor`; None leaves an attribute out."""
    written = []
    for name, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, float):
            value = _coordinate(value)
        written.append(f' {name.rstrip("_").replace("_", "-")}="{escape(value)}"')
    opening = Markup(f"<{tag}{''.join(written)}")
    if not children:
        return opening + Markup("/>")
    return opening + Markup(">") + Markup("").join(children) + Markup(f"</{tag}>")


def _text(content: str, x: float, y: float, *, anchor: str | None = None, full: str | None = None) -> Markup:
    """A label; `full` is the whole text when `content` was cut, given in a title."""
    children: list[Markup | str] = [content]
    if full is not None and full != content:
        children.insert(0, _el("title", full))
    return _el("text", *children, x=float(x), y=float(y), text_anchor=anchor)


def _ticks(top: float, *, whole: bool, most: int = 5) -> list[float]:
    """Round values from 0 up to at least `top`, in at most `most` steps of 1, 2 or 5 × 10ⁿ (never
    a fraction of a step of 1 when every value is a whole number: there are no half members)."""
    if top <= 0:
        top = 1.0
    raw = top / most
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    if whole:
        step = max(step, 1.0)
    count = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(count + 1)]


def _nothing(values: Sequence[float], unit: str, percent: bool) -> str | None:
    """The desc of a chart with nothing to show, or None when there is something."""
    if not values:
        return f"{NOTHING}: there is no data."
    if not any(values):
        return f"{NOTHING}: every value is {_with_unit(number(0, percent), unit)}."
    return None


def _note(text: str, x: float, y: float) -> Markup:
    """The words shown in the middle of an empty chart."""
    return _el("text", text, x=float(x), y=float(y), text_anchor="middle", class_="chart-note")


def _legend(
    names: Sequence[str], sample: Callable[[int, float, float], Markup], sample_width: float
) -> tuple[Markup, float]:
    """A row (or rows) of samples and names across the top; returns it and its last baseline."""
    x, y = 8.0, 18.0
    items = []
    for index, name in enumerate(names):
        shown = _cut(name, 40)
        width = sample_width + 6 + _width(shown)
        if x > 8 and x + width > WIDTH - 8:
            x, y = 8.0, y + 20
        items.append(_el("g", sample(index, x, y - 4.5), _text(shown, x + sample_width + 6, y, full=name)))
        x += width + 18
    return _el("g", *items, class_="chart-legend"), y


def _svg(chart_id: str, title: str, desc: str, height: float, *body: Markup) -> Markup:
    """The chart's outer element: its name and summary for assistive technology, a white backdrop."""
    return _el(
        "svg",
        _el("title", str(title), id=f"{chart_id}-title"),
        _el("desc", desc, id=f"{chart_id}-desc"),
        _el("rect", width=float(WIDTH), height=float(height), fill=BACKDROP, class_="chart-backdrop"),
        *body,
        xmlns="http://www.w3.org/2000/svg",
        viewBox=f"0 0 {WIDTH} {_coordinate(height)}",
        width="100%",
        role="img",
        aria_labelledby=f"{chart_id}-title {chart_id}-desc",
        font_family=FONT,
        font_size=FONT_SIZE,
        fill=TEXT,
        class_="chart",
    )


def _label_step(count: int, labels: Sequence[str], room: float) -> int:
    """Show every n-th x label: at most MAX_X_LABELS, each with its own room and a gap."""
    if not count:
        return 1
    widest = max(_width(label) for label in labels) + 12
    fit = max(1, min(MAX_X_LABELS, int(room // widest)))
    least = math.ceil(count / fit)
    return next(step for step in _label_steps() if step >= least)


def _label_steps() -> Iterator[int]:
    """Steps that suit months (3, 6, 12) and minutes (5, 15, 30, 60, 120), then 1, 2, 5 × 10ⁿ."""
    yield from (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 120, 240)
    for magnitude in itertools.count(2):
        yield from (5 * 10**magnitude, 10 ** (magnitude + 1), 2 * 10 ** (magnitude + 1))


# --- Line and column charts: the same frame -----------------------------------------------------------


@dataclass(frozen=True)
class _Plot:
    """Where the data go, and the value at its top."""

    left: float
    top: float
    right: float
    bottom: float
    ceiling: float

    def y(self, value: float) -> float:
        return self.bottom - value / self.ceiling * (self.bottom - self.top)


def _checked(chart_id: str, labels: Sequence[str], series: Sequence[Series]) -> list[str]:
    _check_id(chart_id)
    if len(series) > len(PALETTE):
        raise ValueError(f"at most {len(PALETTE)} series can be told apart: got {len(series)}")
    for one in series:
        if len(one.values) != len(labels):
            raise ValueError(f"series {one.name!r} has {len(one.values)} values for {len(labels)} labels")
    return [str(label) for label in labels]  # plain text, even if handed over as Markup


def _frame(
    labels: Sequence[str],
    series: Sequence[Series],
    y_label: str,
    percent: bool,
    sample: Callable[[int, float, float], Markup],
    sample_width: float,
) -> tuple[_Plot, list[Markup]]:
    """The legend, the y axis with its ticks and gridlines, and the axis's name: shared by line and
    column charts, which differ only in what they draw inside."""
    values = [value for one in series for value in one.values]
    whole = not percent and all(float(value).is_integer() for value in values)
    ticks = _ticks(max(values, default=0.0), whole=whole)
    tick_texts = [number(tick, percent) for tick in ticks]
    legend, legend_bottom = _legend([one.name for one in series], sample, sample_width)
    name_y = legend_bottom + 24
    top = name_y + 16
    plot = _Plot(
        left=14 + max(_width(text) for text in tick_texts),
        top=top,
        right=WIDTH - 12,
        bottom=top + PLOT_HEIGHT,
        ceiling=ticks[-1],
    )
    axis = []
    for tick, text in zip(ticks, tick_texts, strict=True):
        y = plot.y(tick)
        axis.append(_el("line", x1=plot.left, x2=plot.right, y1=y, y2=y, stroke=AXIS if tick == 0 else GRID))
        axis.append(_text(text, plot.left - 6, y + 4.5, anchor="end"))
    shown_name = _cut(y_label, 70)
    parts = [
        legend,
        _el("text", *_titled(shown_name, y_label), x=8.0, y=name_y, class_="chart-y-label"),
        _el("g", *axis, class_="chart-y-axis"),
    ]
    return plot, parts


def _titled(shown: str, full: str) -> list[Markup | str]:
    return [shown] if shown == full else [_el("title", full), shown]


def _x_axis(labels: Sequence[str], xs: Sequence[float], plot: _Plot, room: float) -> Markup:
    """The x labels, thinned so that they never overlap."""
    shown = [_cut(label, X_LABEL_CHARS) for label in labels]
    step = _label_step(len(labels), shown, room)
    texts = [
        _text(shown[i], xs[i], plot.bottom + 20, anchor="middle", full=labels[i])
        for i in range(0, len(labels), step)
    ]
    return _el("g", *texts, class_="chart-x-axis")


def _series_desc(labels: Sequence[str], series: Sequence[Series], unit: str, percent: bool) -> str:
    """One sentence: the highest and the lowest value, where they are and (of several) which series."""
    points = [
        (value, label, one.name) for one in series for label, value in zip(labels, one.values, strict=True)
    ]
    nothing = _nothing([point[0] for point in points], unit, percent)
    if nothing:
        return nothing

    def where(point: tuple[float, str, str]) -> str:
        return f"in {point[1]}" + (f" ({point[2]})" if len(series) > 1 else "")

    high = max(points, key=lambda point: point[0])
    low = min(points, key=lambda point: point[0])
    if len(points) == 1:
        return f"One value: {_with_unit(number(high[0], percent), unit)} {where(high)}."
    if high[0] == low[0]:
        return f"Every value is {_with_unit(number(high[0], percent), unit)}."
    return (
        f"Highest: {_with_unit(number(high[0], percent), unit)} {where(high)}; "
        f"lowest: {number(low[0], percent)} {where(low)}."
    )


def _tip(label: str, value: float, unit: str, percent: bool, name: str | None) -> str:
    """What hovering a point or column shows: `2026-11: 1,204 members`."""
    return (f"{name}, " if name else "") + f"{label}: {_with_unit(number(value, percent), unit)}"


def _marker(index: int, x: float, y: float, *children: Markup | str) -> Markup:
    """The index-th series' marker shape, centred on (x, y); filled with the series' colour."""
    shape = MARKERS[index % len(MARKERS)]
    r = 4.0
    if shape == "circle":
        return _el("circle", *children, cx=float(x), cy=float(y), r=r)
    if shape == "square":
        return _el("rect", *children, x=x - r, y=y - r, width=2 * r, height=2 * r)
    corners = {
        "triangle": [(0, -r - 1), (r + 1, r), (-r - 1, r)],
        "diamond": [(0, -r - 1), (r + 1, 0), (0, r + 1), (-r - 1, 0)],
        "cross": [(-r, -r), (r, r), (0, 0), (r, -r), (-r, r), (0, 0)],
    }[shape]
    d = "M" + " L".join(f"{_coordinate(x + dx)} {_coordinate(y + dy)}" for dx, dy in corners)
    if shape == "cross":
        return _el("path", *children, d=d, fill="none", stroke_width=2.5)
    return _el("path", *children, d=d + " Z")


def _line_sample(index: int, x: float, y: float) -> Markup:
    return _el(
        "g",
        _el("line", x1=x, x2=x + 28, y1=y, y2=y, stroke_dasharray=DASHES[index] or None, stroke_width=2.0),
        _marker(index, x + 14, y),
        fill=PALETTE[index],
        stroke=PALETTE[index],
    )


def _column_sample(index: int, x: float, y: float) -> Markup:
    return _el("rect", x=x, y=y - 6, width=12.0, height=12.0, fill=PALETTE[index])


def line_chart(
    chart_id: str, title: str, labels: Sequence[str], series: Sequence[Series], *, y_label: str
) -> Markup:
    """Values over time, one line per series (messages accepted by each minute, members at each month's
    end): the shape of a change reads better as a line than as a table. Lines differ in colour, dash
    and marker shape; a long line (over 40 points) is marked only where its x labels are."""
    labels = _checked(chart_id, labels, series)
    y_label = str(y_label)
    plot, parts = _frame(labels, series, y_label, False, _line_sample, 28.0)
    count = len(labels)
    inset = min(max((_width(_cut(label, X_LABEL_CHARS)) for label in labels), default=0) / 2 + 4, 60)
    first, last = plot.left + inset, plot.right - inset
    xs = (
        [(first + last) / 2]
        if count == 1
        else [first + i * (last - first) / (count - 1) for i in range(count)]
    )
    step = _label_step(count, [_cut(label, X_LABEL_CHARS) for label in labels], last - first)
    marked = range(count) if count <= MARK_EVERY_POINT else sorted({*range(0, count, step), count - 1})
    several = len(series) > 1
    for index, one in enumerate(series):
        ys = [plot.y(value) for value in one.values]
        d = "M" + " L".join(f"{_coordinate(x)} {_coordinate(y)}" for x, y in zip(xs, ys, strict=True))
        tips = [
            _marker(
                index,
                xs[i],
                ys[i],
                _el("title", _tip(labels[i], one.values[i], y_label, False, one.name if several else None)),
            )
            for i in marked
        ]
        parts.append(
            _el(
                "g",
                _el(
                    "path",
                    _el("title", one.name),
                    d=d,
                    fill="none",
                    stroke_width=2.0,
                    stroke_dasharray=DASHES[index] or None,
                ),
                *tips,
                class_="chart-series",
                fill=PALETTE[index],
                stroke=PALETTE[index],
            )
        )
    parts.append(_x_axis(labels, xs, plot, last - first))
    desc = _series_desc(labels, series, y_label, False)
    if desc.startswith(NOTHING):
        parts.append(_note(NOTHING, (plot.left + plot.right) / 2, (plot.top + plot.bottom) / 2))
    return _svg(chart_id, title, desc, plot.bottom + 36, *parts)


def column_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_label: str,
    percent: bool = False,
) -> Markup:
    """Counts or rates side by side, one group of columns per label (joins and unsubscribes per month,
    the rates of the last campaigns): for comparing amounts, where a line would suggest a trend between
    things that are separate. With `percent`, values are fractions (0.25) written as percentages (25%)."""
    labels = _checked(chart_id, labels, series)
    y_label = str(y_label)
    plot, parts = _frame(labels, series, y_label, percent, _column_sample, 12.0)
    count = len(labels)
    band = (plot.right - plot.left) / max(count, 1)
    gap = band * 0.2
    column = (band - gap) / max(len(series), 1)
    xs = [plot.left + (i + 0.5) * band for i in range(count)]
    several = len(series) > 1
    for index, one in enumerate(series):
        columns = []
        for i, value in enumerate(one.values):
            y = plot.y(value)
            columns.append(
                _el(
                    "rect",
                    _el("title", _tip(labels[i], value, y_label, percent, one.name if several else None)),
                    x=plot.left + i * band + gap / 2 + index * column,
                    y=y,
                    width=max(column - (1 if several else 0), 0.5),  # a hairline of white between columns
                    height=plot.bottom - y,
                )
            )
        parts.append(_el("g", *columns, class_="chart-series", fill=PALETTE[index]))
    parts.append(_x_axis(labels, xs, plot, plot.right - plot.left))
    desc = _series_desc(labels, series, y_label, percent)
    if desc.startswith(NOTHING):
        parts.append(_note(NOTHING, (plot.left + plot.right) / 2, (plot.top + plot.bottom) / 2))
    return _svg(chart_id, title, desc, plot.bottom + 36, *parts)


# --- Bar charts -------------------------------------------------------------------------------------------


def _bars_desc(bars: Sequence[tuple[str, float]], unit: str) -> str:
    """One sentence: the three largest bars (of how many), biggest first."""
    nothing = _nothing([value for _, value in bars], unit, False)
    if nothing:
        return nothing
    if len(bars) == 1:
        label, value = bars[0]
        return f"Only {_cut(label, 60)}: {_with_unit(number(value), unit)}."
    ranked = sorted(bars, key=lambda bar: -bar[1])[:3]
    named = [
        f"{_cut(label, 60)} with {_with_unit(number(value), unit) if i == 0 else number(value)}"
        for i, (label, value) in enumerate(ranked)
    ]
    return f"Largest: {', '.join(named)}; {len(bars)} in all."


def bar_chart(chart_id: str, title: str, bars: Sequence[tuple[str, float]], *, value_label: str) -> Markup:
    """Amounts by name, one horizontal bar each, in the order given (messages per recipient domain,
    members per sector, clicks per link): long names read across, the value is written at the bar's
    end. Names longer than 26 characters are cut in the drawing and given whole in the bar's title."""
    _check_id(chart_id)
    value_label = str(value_label)
    bars = [(str(label), _value(value)) for label, value in bars]
    values = [value for _, value in bars]
    written = [number(value) for value in values]
    shown = [_cut(label, BAR_LABEL_CHARS) for label, _ in bars]
    left = 16 + max((_width(text) for text in shown), default=0.0) + 8
    right = WIDTH - 8 - max((_width(text) for text in written), default=CHAR) - 8
    whole = all(float(value).is_integer() for value in values)
    for most in (5, 4, 3, 2, 1):  # as many ticks as have room for their numbers
        ticks = _ticks(max(values, default=0.0), whole=whole, most=most)
        tick_texts = [number(tick) for tick in ticks]
        if (right - left) / (len(ticks) - 1) >= max(_width(text) for text in tick_texts) + 12:
            break
    top = 12.0
    bottom = top + max(len(bars), 1) * ROW

    def x(value: float) -> float:
        return left + value / ticks[-1] * (right - left)

    axis = []
    for tick, text in zip(ticks, tick_texts, strict=True):
        axis.append(
            _el("line", x1=x(tick), x2=x(tick), y1=top, y2=bottom, stroke=AXIS if tick == 0 else GRID)
        )
        axis.append(_text(text, x(tick), bottom + 18, anchor="middle"))
    rows = []
    for i, ((label, value), cut, text) in enumerate(zip(bars, shown, written, strict=True)):
        y = top + i * ROW + (ROW - BAR) / 2
        rows.append(
            _el(
                "g",
                _el("title", f"{label}: {_with_unit(text, value_label)}"),
                _text(cut, left - 8, y + BAR / 2 + 4.5, anchor="end"),
                _el("rect", x=left, y=y, width=x(value) - left, height=float(BAR), fill=PALETTE[0]),
                _text(text, x(value) + 6, y + BAR / 2 + 4.5),
            )
        )
    parts = [
        _el("g", *axis, class_="chart-x-axis"),
        _el("g", *rows, class_="chart-bars"),
        _el(
            "text",
            *_titled(_cut(value_label, 70), value_label),
            x=(left + right) / 2,
            y=bottom + 40,
            text_anchor="middle",
            class_="chart-x-label",
        ),
    ]
    desc = _bars_desc(bars, value_label)
    if desc.startswith(NOTHING):
        parts.append(_note(NOTHING, (left + right) / 2, (top + bottom) / 2 + 4.5))
    return _svg(chart_id, title, desc, bottom + 52, *parts)
