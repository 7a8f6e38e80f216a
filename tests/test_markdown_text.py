"""Markdown -> the plain-text part: readable in any mail client, every link written out."""

from __future__ import annotations

import pytest

from newsletter.render.markdown import to_html, to_text


def test_link_is_written_as_label_then_address():
    assert to_text("Read [the report](https://example.org/report) today.") == (
        "Read the report (https://example.org/report) today."
    )


@pytest.mark.parametrize(
    "source",
    ["<https://example.org/page>", "[https://example.org/page](https://example.org/page)"],
    ids=["autolink", "link labelled with its address"],
)
def test_address_used_as_its_own_label_is_written_once(source):
    assert to_text(f"See {source}.") == "See https://example.org/page."


def test_bare_address_is_written_once():
    assert to_text("See https://example.org/page for more.") == "See https://example.org/page for more."


def test_mail_link_shows_the_address_without_mailto():
    assert to_text("Write to [the team](mailto:team@example.org).") == "Write to the team (team@example.org)."


def test_bullet_list():
    assert to_text("Two aims:\n\n- homes that improve health;\n- a platform for leaders.") == (
        "Two aims:\n\n- homes that improve health;\n- a platform for leaders."
    )


def test_numbered_list_keeps_its_start():
    assert to_text("3. third\n4. fourth\n5. fifth") == "3. third\n4. fourth\n5. fifth"


def test_nested_list_is_indented():
    assert to_text("- housing\n  - homes\n  - places\n- work") == "- housing\n  - homes\n  - places\n- work"


def test_long_list_item_wraps_under_its_text():
    item = "consolidate and communicate the evidence base on the impact of homes and places on health equity"
    lines = to_text(f"- {item}").splitlines()
    assert lines[0].startswith("- consolidate")
    assert all(line.startswith("  ") for line in lines[1:])
    assert " ".join(line.strip(" -") for line in lines) == item
    assert max(len(line) for line in lines) <= 72


def test_paragraphs_wrap_at_72_and_stay_apart():
    words = "Around two hundred of the network's members attended the conference in Birmingham. " * 4
    text = to_text(f"{words}\n\nSecond paragraph.")
    paragraphs = text.split("\n\n")
    assert len(paragraphs) == 2
    assert all(len(line) <= 72 for line in text.splitlines())
    assert len(paragraphs[0].splitlines()) > 1
    assert paragraphs[1] == "Second paragraph."


def test_long_address_is_never_broken():
    url = (
        "https://www.instituteofhealthequity.example.org/resources-reports/" + "a-very-long-report-name-" * 4
    )
    text = to_text("Words " * 10 + f"[the full report]({url}) and more words after it " * 2)
    assert text.count(url) == 2
    assert all(url in line for line in text.splitlines() if "https://" in line)
    assert all(len(line) <= 72 for line in text.splitlines() if "https://" not in line)


def test_emphasis_and_code_become_plain_words():
    assert to_text("A **bold** and *quiet* `code` word.") == "A bold and quiet code word."


def test_blockquote_is_marked():
    assert to_text("> Growing a movement") == "> Growing a movement"


def test_image_becomes_its_alt_text():
    assert to_text("![A map of Leeds](https://example.org/map.png)") == "[A map of Leeds]"


def test_raw_html_block_becomes_its_text():
    assert to_text("<p>Hello <b>there</b></p>") == "Hello there"


@pytest.mark.parametrize("source", [None, ""])
def test_nothing_gives_nothing(source):
    assert to_text(source) == ""
    assert str(to_html(source)) == ""


def test_smart_quotes_in_both_parts():
    assert to_text('The network\'s "first" conference') == "The network’s “first” conference"
    assert "network’s “first”" in str(to_html('The network\'s "first" conference'))


def test_two_lists_in_a_row_stay_apart():
    text = to_text("- a\n- b\n\n1. one\n2. two")
    assert "- a\n- b\n\n1. one\n2. two" in text


def test_second_paragraph_of_a_list_item_stays_in_the_item():
    lines = to_text("- first\n\n  more about first\n- second").splitlines()
    assert "  more about first" in lines
    assert lines[0] == "- first"
    assert lines[-1] == "- second"
