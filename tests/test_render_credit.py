"""Issue 18: an item a member organisation shared says so ("Shared by ORGANISATION") in the email, its
text part and the web version, escaped like every text, after the item's words and before its links;
an item without a credit says nothing of the kind."""

from __future__ import annotations

import re

import pytest

from newsletter.editor import CheckedIssue

UNSAFE = "Leeds <script>alert(1)</script> & Partners"
CREDITED = """\
title: November 2023 Newsletter
date: 2023-11-17
subject: Who shared what
preheader: Reports, places and events from members
editor: E
sections:
  - kind: story
    title: Homes first
    body: Housing matters in Leeds.
    links:
      - label: The housing plan
        url: https://example.org/plan
    credit: "Leeds <script>alert(1)</script> & Partners"
  - kind: publications
    items:
      - title: Credited report
        url: https://example.org/credited
        summary: A report a member shared.
        date: 2023-11-01
        credit: UCL Institute of Health Equity
      - title: Uncredited report
        url: https://example.org/uncredited
        summary: A report the network found itself.
        date: 2023-11-01
  - kind: places
    items:
      - place: Gwent
        region: wales
        updates: Gwent opened a community hub.
        link:
          label: The hub
          url: https://example.org/hub
        credit: Gwent Public Services Board
  - kind: collaborations
    items:
      - title: Norway
        body: A rapid review with partners abroad.
        credit: Norwegian Directorate of Health
  - kind: events
    items:
      - title: Launch webinar
        start: 2023-12-05 10:30
        online: yes
        url: https://example.org/webinar
        summary: An hour on the network.
        credit: "  Birmingham City Council  "
"""
# Each credit as shown, and the item's words it follows and the link it comes before (None: none).
SHOWN = [
    ("Leeds &lt;script&gt;alert(1)&lt;/script&gt; &amp; Partners", "Housing matters", "The housing plan"),
    ("UCL Institute of Health Equity", "A report a member shared.", "https://example.org/credited"),
    ("Gwent Public Services Board", "community hub", "https://example.org/hub"),
    ("Norwegian Directorate of Health", "partners abroad", None),
    ("Birmingham City Council", "An hour on the network.", "Add to calendar"),
]


@pytest.fixture
def credited(check_yaml) -> CheckedIssue:
    checked = check_yaml(CREDITED, slug="2023-11")
    assert checked.problems == []
    return checked


@pytest.fixture
def web_page(credited, tmp_editor) -> str:
    """The web version (`web.html`) of the credited issue."""
    return tmp_editor.web_renderer.standalone(credited.edition.issue)


def _follows_and_precedes(output: str, credit: str, words: str, link: str | None) -> None:
    at = output.index(f"Shared by {credit}")
    assert output.index(words) < at, f"{credit} comes before the item's words"
    if link:
        assert at < output.index(link, at - 1), f"{credit} comes after the item's link"


def test_the_email_says_who_shared_each_credited_item_small_and_muted(credited):
    html = credited.edition.html
    shown = re.findall(r'<p class="nl-meta nl-credit" style="([^"]*)">Shared by ([^<]*)</p>', html)
    assert [name for _, name in shown] == [name for name, _, _ in SHOWN]
    for style, _ in shown:  # the theme's muted meta line, inlined
        assert "font-size: 14px" in style and "color: #4a5863" in style
    for name, words, link in SHOWN:
        _follows_and_precedes(html, name, words, link)
    assert html.count("Shared by") == len(SHOWN)


def test_the_text_part_says_who_shared_each_credited_item(credited):
    text = credited.edition.text
    assert re.findall(r"^ *Shared by (.*)$", text, re.MULTILINE) == [
        UNSAFE,  # plain text: nothing to escape, shown as written
        "UCL Institute of Health Equity",
        "Gwent Public Services Board",
        "Norwegian Directorate of Health",
        "Birmingham City Council",
    ]
    assert "\n  Shared by UCL Institute of Health Equity\n" in text  # indented with its item
    assert "\nShared by Leeds" in text  # a story is not indented
    for name, words, link in SHOWN[1:]:
        _follows_and_precedes(text, name, words, link)


def test_the_web_version_says_who_shared_each_credited_item(web_page):
    shown = re.findall(r'<p class="meta credit">Shared by (.*?)</p>', web_page)
    # web.html is read outside the archive: the names are not linked to its pages.
    assert shown == [name for name, _, _ in SHOWN]
    for name, words, link in SHOWN:
        _follows_and_precedes(web_page, name, words, link)


def test_a_credit_holding_markup_is_shown_as_text_everywhere(credited, web_page):
    for output in (credited.edition.html, web_page):
        assert "<script>" not in output
        assert "Shared by Leeds &lt;script&gt;alert(1)&lt;/script&gt; &amp; Partners" in output


def test_an_item_without_a_credit_says_nothing_of_who_shared_it(credited, web_page):
    for output in (credited.edition.html, credited.edition.text, web_page):
        uncredited = output[output.index("Uncredited report") : output.index("Gwent opened")]
        assert "Shared by" not in uncredited


def test_the_sample_issue_credits_nobody(sample, editor):
    web = editor.web_renderer.standalone(sample.edition.issue)
    for output in (sample.edition.html, sample.edition.text, web):
        assert "Shared by" not in output
