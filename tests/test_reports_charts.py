"""The report charts as a reader meets them: parsed as XML and looked at for what the eye (or a screen
reader) would notice: the longest bar is the largest value, ticks are round and reach the top, labels
do not collide, the summary names the highest value, and nothing from the data gets out unescaped."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET

import pytest
from jinja2 import Environment
from markupsafe import Markup

from contrast_support import AA_NON_TEXT, AA_TEXT, contrast
from newsletter.reports.charts import (
    FONT,
    PALETTE,
    TEXT,
    Series,
    bar_chart,
    column_chart,
    line_chart,
)

SVG = "{http://www.w3.org/2000/svg}"
MONTHS = ["2025-12", *(f"2026-{month:02d}" for month in range(1, 12))]
MEMBERS = [980, 1001, 1010, 1030, 1050, 1070, 1100, 1120, 1150, 1170, 1190, 1204]
CHAR = 13 * 0.6  # the widest a character of 13-unit text is taken to be


def parse(svg: str) -> ET.Element:
    return ET.fromstring(str(svg))


def group(root: ET.Element, name: str) -> ET.Element:
    found = root.find(f".//{SVG}g[@class='{name}']")
    assert found is not None, f"no <g class='{name}'>"
    return found


def words(element: ET.Element) -> str:
    """What a <text> shows (its own text and any tail after a <title> child), not its tooltip."""
    shown = element.text or ""
    for child in element:
        shown += child.tail or ""
    return shown


def texts(element: ET.Element) -> list[str]:
    return [words(text) for text in element.iter(f"{SVG}text")]


def titles(element: ET.Element) -> list[str]:
    return [title.text or "" for title in element.iter(f"{SVG}title")]


def desc(root: ET.Element) -> str:
    return root.find(f"{SVG}desc").text


def members_line(**changes) -> str:
    arguments = {
        "chart_id": "members",
        "title": "Members at each month's end",
        "labels": MONTHS,
        "series": [Series("Members", MEMBERS)],
        "y_label": "members",
    } | changes
    return line_chart(**arguments)


def changes_columns(**changes) -> str:
    arguments = {
        "chart_id": "changes",
        "title": "Joins and unsubscribes",
        "labels": MONTHS,
        "series": [
            Series("Joined", [34, 20, 12, 40, 5, 0, 3, 22, 18, 9, 10, 11]),
            Series("Unsubscribed", [1, 2, 3, 0, 4, 5, 2, 1, 0, 0, 3, 2]),
        ],
        "y_label": "members",
    } | changes
    return column_chart(**arguments)


DOMAINS = [("gmail.com", 1204), ("outlook.com", 980), ("nhs.net", 400), ("example.org", 12)]


def domains_bars(**changes) -> str:
    arguments = {
        "chart_id": "domains",
        "title": "Messages per domain",
        "bars": DOMAINS,
        "value_label": "messages",
    }
    return bar_chart(**(arguments | changes))


ALL_KINDS = [members_line, changes_columns, domains_bars]


# --- The frame: well-formed, scalable, named and described --------------------------------------------


@pytest.mark.parametrize("draw", ALL_KINDS)
def test_a_chart_is_well_formed_svg_that_scales_and_names_itself(draw):
    svg = draw()
    root = parse(svg)
    assert root.tag == f"{SVG}svg"
    assert 'xmlns="http://www.w3.org/2000/svg"' in svg
    x, y, width, height = (float(n) for n in root.get("viewBox").split())
    assert (x, y) == (0, 0) and width > 0 and height > 0
    assert root.get("width") == "100%" and root.get("height") is None  # no fixed pixel size
    assert root.get("role") == "img"
    title_id, desc_id = root.get("aria-labelledby").split()
    title, description = root[0], root[1]
    assert (title.tag, title.get("id")) == (f"{SVG}title", title_id)
    assert (description.tag, description.get("id")) == (f"{SVG}desc", desc_id)
    assert title.text in {"Members at each month's end", "Joins and unsubscribes", "Messages per domain"}
    assert description.text.endswith(".") and description.text.count(".") >= 1


@pytest.mark.parametrize("draw", ALL_KINDS)
def test_text_is_large_dark_and_in_the_pages_kind_of_font(draw):
    svg = draw()
    root = parse(svg)
    assert root.get("font-family") == FONT == "system-ui, sans-serif"
    sizes = [float(element.get("font-size")) for element in root.iter() if element.get("font-size")]
    assert sizes and min(sizes) >= 12
    assert root.get("fill") == TEXT and contrast(TEXT, "#ffffff") >= AA_TEXT
    for text in root.iter(f"{SVG}text"):
        assert text.get("fill") in (None, TEXT), "text takes the chart's dark fill"
    # A white backdrop behind everything, so the colours hold on a dark page too.
    backdrop = root.find(f"{SVG}rect")
    assert backdrop.get("fill") == "#ffffff" and backdrop.get("width") == root.get("viewBox").split()[2]


@pytest.mark.parametrize("draw", ALL_KINDS)
def test_no_style_attribute_or_element_which_the_desks_policy_would_block(draw):
    svg = draw()
    assert "style" not in svg
    assert "<script" not in svg


def test_the_palette_has_3_to_1_contrast_against_white():
    assert len(PALETTE) == 5
    for colour in PALETTE:
        assert contrast(colour, "#ffffff") >= AA_NON_TEXT, colour
    assert PALETTE[:5] == ("#1f5fa8", "#b3261e", "#2e7d32", "#6a3d9a", "#8a5a00")


@pytest.mark.parametrize("draw", ALL_KINDS)
def test_the_same_input_draws_the_same_string_with_short_numbers(draw):
    first, second = draw(), draw()
    assert first == second
    assert re.search(r"\d\.\d", first), "coordinates keep a decimal where it matters"
    assert not re.search(r"\d\.\d\d", first), "and only one"


def test_ids_come_from_chart_id_and_never_clash_on_one_page():
    page = members_line(chart_id="members") + changes_columns(chart_id="changes") + domains_bars()
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)) == 6
    assert sorted(ids) == sorted(
        f"{chart}-{part}" for chart in ("members", "changes", "domains") for part in ("title", "desc")
    )
    twice = parse(members_line(chart_id="members-2026"))
    assert twice.get("aria-labelledby") == "members-2026-title members-2026-desc"


@pytest.mark.parametrize("chart_id", ["", "Members", "1chart", "a b", "a_b", 'a"b', "chart-<x>", "-a"])
@pytest.mark.parametrize("draw", ALL_KINDS)
def test_a_bad_chart_id_is_refused(draw, chart_id):
    with pytest.raises(ValueError, match="chart_id"):
        draw(chart_id=chart_id)


def test_series_of_another_length_than_the_labels_are_refused():
    with pytest.raises(ValueError, match="Short"):
        members_line(series=[Series("Members", MEMBERS), Series("Short", MEMBERS[:-1])])
    with pytest.raises(ValueError, match="Long"):
        changes_columns(series=[Series("Long", [*MEMBERS, 5])])


def test_values_that_cannot_be_drawn_from_zero_are_refused():
    for bad in (-1, math.nan, math.inf, "12"):
        with pytest.raises(ValueError):
            Series("Members", [1, bad])
        with pytest.raises(ValueError):
            domains_bars(bars=[("a", bad)])
    with pytest.raises(ValueError, match="at most 5"):
        members_line(series=[Series(f"S{i}", MEMBERS) for i in range(6)])


# --- Escaping -------------------------------------------------------------------------------------------

HOSTILE = "<script>alert(1)</script>"
QUOTES = "\"&'"


def hostile_charts() -> list[str]:
    series = [Series(HOSTILE, [1, 2]), Series(QUOTES, [3, 4])]
    return [
        line_chart("a", HOSTILE, [HOSTILE, QUOTES], series, y_label=QUOTES),
        column_chart("b", QUOTES, [HOSTILE, QUOTES], series, y_label=HOSTILE),
        bar_chart("c", HOSTILE, [(HOSTILE, 3), (QUOTES, 1)], value_label=QUOTES),
    ]


@pytest.mark.parametrize("svg", hostile_charts())
def test_text_from_the_data_appears_only_escaped(svg):
    assert "<script" not in svg and "</script>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert QUOTES not in svg  # the quote would close an attribute, the ampersand start an entity
    assert "&#34;&amp;&#39;" in svg
    root = parse(svg)  # a bare & or < would not parse
    assert not list(root.iter("script")) and not list(root.iter(f"{SVG}script"))
    # The reader still sees the text as it was written.
    shown = titles(root) + texts(root)
    assert any(HOSTILE in text for text in shown)
    assert any(QUOTES in text for text in shown)


def test_markup_returned_is_safe_to_put_in_a_template_as_it_is():
    page = (
        Environment(autoescape=True)
        .from_string("<figure>{{ chart }}</figure>")
        .render(chart=hostile_charts()[0])
    )
    assert "<svg" in page and "<script" not in page and "&amp;lt;" not in page


# --- What the reader sees --------------------------------------------------------------------------------


def bar_rows(root: ET.Element) -> list[tuple[str, float, str]]:
    """(label shown, bar length, value written) for each bar, top to bottom."""
    rows = []
    for row in group(root, "chart-bars"):
        label, value = (words(text) for text in row.iter(f"{SVG}text"))
        rows.append((label, float(row.find(f"{SVG}rect").get("width")), value))
    return rows


def test_the_largest_value_is_the_longest_bar_and_the_order_is_kept():
    bars = [("nhs.net", 400), ("gmail.com", 1204), ("example.org", 12), ("outlook.com", 980)]
    rows = bar_rows(parse(domains_bars(bars=bars)))
    assert [label for label, _, _ in rows] == ["nhs.net", "gmail.com", "example.org", "outlook.com"]
    assert [value for _, _, value in rows] == ["400", "1,204", "12", "980"]
    lengths = [length for _, length, _ in rows]
    assert max(lengths) == lengths[1]
    assert sorted(lengths) == [lengths[2], lengths[0], lengths[3], lengths[1]]
    # Lengths are in proportion to the values (to the rounding of coordinates).
    assert lengths[0] / lengths[1] == pytest.approx(400 / 1204, rel=0.01)


def test_each_bar_column_and_point_says_its_exact_value_on_hover():
    bars = titles(group(parse(domains_bars()), "chart-bars"))
    assert bars == [
        "gmail.com: 1,204 messages",
        "outlook.com: 980 messages",
        "nhs.net: 400 messages",
        "example.org: 12 messages",
    ]
    points = titles(group(parse(members_line()), "chart-series"))
    assert "2026-11: 1,204 members" in points and "2025-12: 980 members" in points
    columns = titles(parse(changes_columns()))
    assert "Joined, 2026-03: 40 members" in columns and "Unsubscribed, 2026-05: 5 members" in columns
    rates = column_chart(
        "rates",
        "Rates",
        ["C-1", "C-2"],
        [Series("Bounces", [0.025, 0.1234])],
        y_label="of delivered",
        percent=True,
    )
    assert titles(group(parse(rates), "chart-series")) == [
        "C-1: 2.5% of delivered",
        "C-2: 12.34% of delivered",
    ]


def test_a_long_bar_label_is_cut_in_the_drawing_and_whole_in_its_title():
    link = "https://example.org/news/2026/a-very-long-article-address-that-goes-on"
    rows = bar_rows(parse(domains_bars(bars=[(link, 40), ("https://example.org/", 3)])))
    assert rows[0][0].endswith("…") and link.startswith(rows[0][0][:-1]) and len(rows[0][0]) <= 26
    assert rows[1][0] == "https://example.org/"
    assert titles(group(parse(domains_bars(bars=[(link, 40)])), "chart-bars")) == [f"{link}: 40 messages"]


def tick_values(labels: list[str]) -> list[float]:
    return [float(label.rstrip("%").replace(",", "")) for label in labels]


def is_round(step: float) -> bool:
    exponent = math.floor(math.log10(step))
    return any(math.isclose(step, m * 10.0**exponent) for m in (1, 2, 5))


@pytest.mark.parametrize("top", [1, 7, 40, 98, 1204, 12_000, 12_345, 999_999, 3_000_001])
def test_ticks_are_round_start_at_zero_and_reach_the_largest_value(top):
    values = [top // 3, top, top // 2]
    for svg, axis in (
        (line_chart("a", "A", ["x", "y", "z"], [Series("S", values)], y_label="members"), "chart-y-axis"),
        (column_chart("b", "B", ["x", "y", "z"], [Series("S", values)], y_label="members"), "chart-y-axis"),
        (bar_chart("c", "C", list(zip("xyz", values, strict=True)), value_label="members"), "chart-x-axis"),
    ):
        labels = texts(group(parse(svg), axis))
        ticks = tick_values(labels)
        assert ticks[0] == 0 and ticks[-1] >= top
        steps = {b - a for a, b in itertools.pairwise(ticks)}
        assert len(steps) == 1, labels
        (step,) = steps
        assert is_round(step) and step >= 1, labels  # never half a member
        assert ticks[-1] - step < top, "no empty step above the largest value"
        assert 2 <= len(ticks) <= 11
        for label in labels:
            assert label == f"{int(float(label.replace(',', ''))):,}"  # thousands separated: 12,000


def test_percent_ticks_are_round_percentages():
    rates = [0.012, 0.23, 0.05]
    svg = column_chart(
        "rates",
        "Rates",
        ["C-1", "C-2", "C-3"],
        [Series("Clicks", rates)],
        y_label="of delivered",
        percent=True,
    )
    labels = texts(group(parse(svg), "chart-y-axis"))
    assert labels == ["0%", "5%", "10%", "15%", "20%", "25%"]
    small = column_chart("r", "R", ["C-1"], [Series("Bounces", [0.004])], y_label="", percent=True)
    ticks = tick_values(texts(group(parse(small), "chart-y-axis")))
    assert ticks[-1] >= 0.4 and is_round(ticks[1])


def test_the_desc_names_the_highest_and_lowest_values():
    assert desc(parse(members_line())) == "Highest: 1,204 members in 2026-11; lowest: 980 in 2025-12."
    several = desc(parse(changes_columns()))
    assert several == "Highest: 40 members in 2026-03 (Joined); lowest: 0 in 2026-05 (Joined)."
    assert desc(parse(domains_bars())) == (
        "Largest: gmail.com with 1,204 messages, outlook.com with 980, nhs.net with 400; 4 in all."
    )
    rates = column_chart(
        "r", "R", ["C-1", "C-2"], [Series("Bounces", [0.025, 0.01])], y_label="of delivered", percent=True
    )
    assert desc(parse(rates)) == "Highest: 2.5% of delivered in C-1; lowest: 1% in C-2."


def test_legends_list_every_series_and_lines_differ_by_more_than_colour():
    names = ["Accepted", "Deferred", "Failed"]
    minutes = [f"10:{m:02d}" for m in range(5)]
    series = [Series(name, [i * (n + 1) for i in range(5)]) for n, name in enumerate(names)]
    lines = parse(line_chart("accepted", "Accepted", minutes, series, y_label="messages"))
    assert texts(group(lines, "chart-legend")) == names
    drawn = [g for g in lines.iter(f"{SVG}g") if g.get("class") == "chart-series"]
    assert [g.get("stroke") for g in drawn] == list(PALETTE[:3])
    dashes = [g.find(f"{SVG}path").get("stroke-dasharray") for g in drawn]
    assert len(set(dashes)) == 3, "each line has its own dash pattern"
    markers = [(g[1].tag, g[1].get("d", "").count("L")) for g in drawn]  # circle, square, triangle...
    assert len(set(markers)) == 3, f"each line has its own marker shape: {markers}"
    # The legend shows each line's dash and marker too.
    samples = group(lines, "chart-legend")
    assert [sample.find(f".//{SVG}line").get("stroke-dasharray") for sample in samples] == dashes

    columns = parse(changes_columns())
    assert texts(group(columns, "chart-legend")) == ["Joined", "Unsubscribed"]
    fills = [g.get("fill") for g in columns.iter(f"{SVG}g") if g.get("class") == "chart-series"]
    assert fills == list(PALETTE[:2])
    legend_fills = [rect.get("fill") for rect in group(columns, "chart-legend").iter(f"{SVG}rect")]
    assert legend_fills == fills


def test_columns_in_a_group_keep_the_legends_order_and_heights_follow_values():
    root = parse(changes_columns())
    joined, unsubscribed = (g for g in root.iter(f"{SVG}g") if g.get("class") == "chart-series")
    first_joined, first_left = joined[0], unsubscribed[0]
    assert float(first_joined.get("x")) < float(first_left.get("x"))  # Joined left of Unsubscribed
    heights = [float(rect.get("height")) for rect in joined]
    assert heights.index(max(heights)) == 3  # 40 joined in 2026-03
    assert heights[5] == 0


def shown_x_labels(svg: str) -> list[tuple[float, str]]:
    axis = group(parse(svg), "chart-x-axis")
    return [(float(text.get("x")), words(text)) for text in axis.iter(f"{SVG}text")]


def assert_apart(shown: list[tuple[float, str]]) -> None:
    for (x1, one), (x2, two) in itertools.pairwise(shown):
        assert x2 - x1 >= (len(one) + len(two)) / 2 * CHAR + 4, f"{one!r} and {two!r} overlap"


def test_many_x_labels_are_thinned_so_they_do_not_overlap():
    minutes = [f"{10 + i // 60:02d}:{i % 60:02d}" for i in range(600)]
    svg = line_chart(
        "accepted",
        "Accepted",
        minutes,
        [Series("Accepted", [i * 37 for i in range(600)])],
        y_label="messages",
    )
    shown = shown_x_labels(svg)
    assert 4 <= len(shown) <= 12
    assert shown[0][1] == "10:00"
    assert_apart(shown)
    assert len(svg) < 30_000, "600 points stay a small page"

    months = shown_x_labels(members_line())
    assert 6 <= len(months) <= 12 and months[0][1] == "2025-12"
    assert_apart(months)

    campaigns = [f"Spring issue {n}: the longest name of a campaign" for n in range(12)]
    rates = column_chart(
        "rates", "Rates", campaigns, [Series("Clicks", [0.1] * 12)], y_label="", percent=True
    )
    shown = shown_x_labels(rates)
    # Long names are cut, and only as many shown as fit apart: every third campaign, from the first.
    assert [label for _, label in shown] == [f"Spring issue {n}:…" for n in (0, 3, 6, 9)]
    assert_apart(shown)
    # The whole name is in the column's title.
    assert "Spring issue 11: the longest name of a campaign: 10%" in titles(parse(rates))


def test_few_labels_are_all_shown():
    quarter = ["2026-01", "2026-02", "2026-03"]
    shown = shown_x_labels(members_line(labels=quarter, series=[Series("Members", [1, 2, 3])]))
    assert [label for _, label in shown] == quarter


@pytest.mark.parametrize(
    "svg",
    [
        line_chart("a", "A", [], [], y_label="members"),
        line_chart("b", "B", [], [Series("Members", [])], y_label="members"),
        column_chart("c", "C", ["2026-01", "2026-02"], [Series("Joined", [0, 0])], y_label="members"),
        column_chart("d", "D", ["C-1"], [Series("Bounces", [0])], y_label="of delivered", percent=True),
        line_chart(
            "e", "E", ["10:00", "10:01"], [Series("A", [0, 0]), Series("B", [0, 0])], y_label="messages"
        ),
        bar_chart("f", "F", [], value_label="clicks"),
        bar_chart("g", "G", [("https://example.org/", 0)], value_label="clicks"),
    ],
)
def test_empty_or_all_zero_data_give_a_valid_chart_that_says_so(svg):
    root = parse(svg)
    assert desc(root).startswith("Nothing to show yet")
    assert "Nothing to show yet" in texts(root)
    assert "nan" not in svg.lower() and "inf" not in svg.lower()
    viewbox = [float(n) for n in root.get("viewBox").split()]
    assert all(math.isfinite(n) for n in viewbox)


def test_all_zero_desc_says_what_every_value_is():
    zeros = column_chart("c", "C", ["2026-01"], [Series("Joined", [0])], y_label="members")
    assert desc(parse(zeros)) == "Nothing to show yet: every value is 0 members."
    assert (
        desc(parse(line_chart("a", "A", [], [], y_label="members")))
        == "Nothing to show yet: there is no data."
    )


def test_one_point_works():
    one_line = parse(members_line(labels=["2026-11"], series=[Series("Members", [1204])]))
    assert desc(one_line) == "One value: 1,204 members in 2026-11."
    assert "2026-11: 1,204 members" in titles(one_line)
    one_column = parse(changes_columns(labels=["2026-11"], series=[Series("Joined", [7])]))
    assert float(group(one_column, "chart-series")[0].get("height")) > 0
    one_bar = parse(domains_bars(bars=[("gmail.com", 5)]))
    assert desc(one_bar) == "Only gmail.com: 5 messages."
    assert bar_rows(one_bar)[0][0] == "gmail.com" and bar_rows(one_bar)[0][1] > 0


def test_markup_handed_over_as_a_label_is_still_drawn_as_plain_text():
    svg = domains_bars(bars=[(Markup("R&amp;D <b>team</b>"), 3)], title=Markup("<i>Clicks</i>"))
    root = parse(svg)
    assert "<b>" not in svg and "<i>" not in svg
    assert titles(group(root, "chart-bars")) == ["R&amp;D <b>team</b>: 3 messages"]
