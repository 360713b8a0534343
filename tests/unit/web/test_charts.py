"""The dashboard's SVG charts: well-formed, accessible, escaped, and drawn to scale."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date

import pytest

from gateway.web.charts import (
    ACTION_COLOURS,
    Bar,
    Series,
    bar_chart,
    days_between,
    nice_ticks,
    shorten,
    stacked_columns,
)

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    """The chart as an XML tree (fails the test when it is not well-formed)."""
    return ET.fromstring(svg)


def texts(root: ET.Element) -> list[str]:
    """Every <text> element's content, in document order."""
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_bar_chart_is_an_accessible_image_labelled_by_title_and_desc() -> None:
    """role=img with aria-labelledby pointing at its own <title> and <desc>, which name the data."""
    root = parse(bar_chart("rules", "Top rules", [Bar("review.removal", 7), Bar("marketing", 3)]))
    assert root.get("role") == "img"
    title_id, desc_id = root.get("aria-labelledby", "").split()
    title = root.find(f"{SVG}title")
    desc = root.find(f"{SVG}desc")
    assert title is not None
    assert desc is not None
    assert (title.get("id"), desc.get("id")) == (title_id, desc_id)
    assert title.text == "Top rules"
    assert desc.text is not None
    assert "review.removal: 7" in desc.text
    assert "marketing: 3" in desc.text


def test_bar_chart_writes_each_label_and_count_as_text() -> None:
    """Numbers are readable text, not only bar lengths."""
    root = parse(bar_chart("acc", "Accounts", [Bar("acme", 12), Bar("globex", 4)]))
    assert texts(root) == ["acme", "12", "globex", "4"]


def test_bar_lengths_are_proportional_to_the_counts() -> None:
    """The largest bar spans the plot; the others are scaled to it."""
    root = parse(bar_chart("c", "Categories", [Bar("a", 10), Bar("b", 5), Bar("c", 0)]))
    widths = [float(r.get("width", "0")) for r in root.iter(f"{SVG}rect")]
    assert widths[0] == pytest.approx(2 * widths[1])
    assert widths[2] <= 1  # zero is drawn as a hairline, not as nothing at all


def test_hostile_labels_are_escaped_text_never_markup() -> None:
    """An account named like markup stays text: no element or attribute comes from data."""
    hostile = '<script>alert(1)</script>" onload="x'
    svg = bar_chart("x", "T <b>", [Bar(hostile, 1, href='/decisions?account="><script>')])
    assert "<script>" not in svg
    root = parse(svg)
    assert [e.tag for e in root.iter() if "script" in e.tag] == []
    assert root.find(f"{SVG}title").text == "T <b>"  # type: ignore[union-attr]
    link = root.find(f"{SVG}a")
    assert link is not None
    assert link.get("href") == '/decisions?account="><script>'
    assert all(not name.startswith("on") for e in root.iter() for name in e.attrib)


def test_long_labels_are_shortened_but_kept_whole_in_the_tooltip() -> None:
    """A long rule id fits the label column; hovering (the bar's <title>) shows all of it."""
    label = "contact.offplatform.messenger." + "x" * 40
    root = parse(bar_chart("r", "Rules", [Bar(label, 2)]))
    assert texts(root)[0] == shorten(label)
    assert texts(root)[0].endswith("…")
    tips = [t.text for t in root.iter(f"{SVG}title")]
    assert f"{label}: 2 decisions" in tips


def test_bars_link_to_their_filtered_log() -> None:
    """A bar with an href is a link (focusable with the keyboard)."""
    root = parse(bar_chart("l", "Languages", [Bar("de", 3, href="/decisions?language=de"), Bar("fr", 1)]))
    links = root.findall(f"{SVG}a")
    assert [a.get("href") for a in links] == ["/decisions?language=de"]


def test_empty_chart_says_so() -> None:
    """No data gives a small chart with the message, still titled."""
    root = parse(bar_chart("e", "Top rules", [], empty="Nothing decided yet."))
    assert texts(root) == ["Nothing decided yet."]
    assert root.find(f"{SVG}title").text == "Top rules"  # type: ignore[union-attr]


def days_chart() -> str:
    days = ["2025-05-01", "2025-05-02", "2025-05-03"]
    series = [
        Series("pass", (5, 0, 2), ACTION_COLOURS["pass"]),
        Series("quarantine", (3, 0, 1), ACTION_COLOURS["quarantine"]),
        Series("reject", (2, 0, 0), ACTION_COLOURS["reject"]),
    ]
    return stacked_columns("days", "Decisions per day", days, series, hrefs=[f"/d?day={d}" for d in days])


def test_stacked_columns_stack_each_series_and_label_totals() -> None:
    """Each day's segments sit on top of each other; the total is written above the column."""
    root = parse(days_chart())
    columns = [g for g in root if g.tag in (f"{SVG}a", f"{SVG}g")]
    assert len(columns) == 3
    first = columns[0]
    rects = first.findall(f"{SVG}rect")
    heights = [float(r.get("height", "0")) for r in rects]
    ys = [float(r.get("y", "0")) for r in rects]
    assert heights[0] == pytest.approx(heights[1] * 5 / 3, abs=0.2)
    assert ys[1] == pytest.approx(ys[0] - heights[1], abs=0.2)  # stacked, not overlapping
    assert [t.text for t in first.iter(f"{SVG}text")] == ["10"]
    assert first.find(f"{SVG}title").text == "2025-05-01: 10 decisions (pass 5, quarantine 3, reject 2)"  # type: ignore[union-attr]
    assert columns[1].findall(f"{SVG}rect") == []  # an empty day draws nothing


def test_stacked_columns_have_a_text_legend_and_day_labels() -> None:
    """Series names are written (colour is not the only cue); days are labelled MM-DD."""
    words = texts(parse(days_chart()))
    for name in ("pass", "quarantine", "reject", "05-01", "05-02", "05-03"):
        assert name in words


def test_only_days_with_decisions_link_to_the_log() -> None:
    """A day with nothing in it is not a link to an empty page."""
    root = parse(days_chart())
    assert [a.get("href") for a in root.findall(f"{SVG}a")] == ["/d?day=2025-05-01", "/d?day=2025-05-03"]


def test_stacked_columns_desc_sums_the_period() -> None:
    """The description gives the range and the totals per series for screen readers."""
    desc = parse(days_chart()).find(f"{SVG}desc")
    assert desc is not None
    assert desc.text == (
        "Decisions per day: 3 columns from 2025-05-01 to 2025-05-03, 13 decisions (pass 7; quarantine 4; reject 2)."
    )


def test_many_days_thin_out_the_axis_labels() -> None:
    """Ninety days do not print ninety overlapping labels."""
    days = [d.isoformat() for d in days_between(date(2025, 1, 1), date(2025, 3, 31))]
    series = [Series("pass", tuple(range(len(days))), ACTION_COLOURS["pass"])]
    labels = [t for t in texts(parse(stacked_columns("d", "Per day", days, series))) if "-" in t]
    assert 5 <= len(labels) < 30


def test_all_zero_columns_give_the_empty_chart() -> None:
    """A period with no decisions says so rather than drawing an empty axis."""
    root = parse(stacked_columns("z", "Per day", ["2025-05-01"], [Series("pass", (0,), "#000")]))
    assert texts(root) == ["No decisions in this period."]


def test_a_series_of_the_wrong_length_is_refused() -> None:
    """A programming error is reported with the series' name."""
    with pytest.raises(ValueError, match="'pass' has 1 values for 2 columns"):
        stacked_columns("z", "Per day", ["a", "b"], [Series("pass", (1,), "#000")])


@pytest.mark.parametrize(
    ("maximum", "ticks"),
    [(0, (0, 1)), (1, (0, 1)), (3, (0, 1, 2, 3)), (37, (0, 10, 20, 30, 40)), (120, (0, 50, 100, 150))],
)
def test_nice_ticks(maximum: int, ticks: tuple[int, ...]) -> None:
    """Axis ticks are round numbers from zero to at least the maximum."""
    assert nice_ticks(maximum) == ticks


def test_days_between_is_inclusive() -> None:
    """Both ends are included; a reversed range is empty."""
    assert days_between(date(2025, 2, 27), date(2025, 3, 1)) == (date(2025, 2, 27), date(2025, 2, 28), date(2025, 3, 1))
    assert days_between(date(2025, 3, 2), date(2025, 3, 1)) == ()


def test_a_long_legend_wraps_inside_the_chart() -> None:
    """Eight long series names do not run off the right edge: the legend takes more rows."""
    names = [f"category.number_{n}.with_a_long_name" for n in range(8)]
    series = [Series(name, (1, 2, 3), "#000") for name in names]
    root = parse(stacked_columns("w", "Per day by category", ["a", "b", "c"], series))
    width = float(root.get("width", "0"))
    keys = [t for t in root.findall(f"{SVG}text") if (t.text or "") in names]
    assert [k.text for k in keys] == names
    rows = {float(k.get("y", "0")) for k in keys}
    assert len(rows) > 1
    for key in keys:
        assert float(key.get("x", "0")) + len(key.text or "") * 7 <= width
    # The plot starts below the last legend row.
    first_grid = root.find(f"{SVG}line")
    assert first_grid is not None
    assert float(first_grid.get("y1", "0")) > max(rows)
