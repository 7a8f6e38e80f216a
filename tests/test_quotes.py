"""Quotes in stories: a pull quote with who said it, in the email, the web version and the text part."""

from __future__ import annotations

import re
import textwrap

import pytest

from issue_support import write_draft
from newsletter.errors import ProblemsFound
from newsletter.render.web import WebIssue, WebRenderer, relative_link
from user_support import init_project, newsletter

LAUNCH = """\
title: Launch
date: 2023-11-01
subject: The Health Equity Network is launched
preheader: What was said at the launch
editor: Jane Editor
sections:
  - kind: story
    title: The network is launched
    body: |
      A new network for everyone working to reduce health inequalities.

      > A quotation written in the body with Markdown.
    quotes:
      - text: The impact on health is catastrophic - we know what to do and **many places** are taking the initiative.
        by: Professor Sir Michael Marmot
        role: Director, UCL Institute of Health Equity
      - text: We cannot solve this unaided.
        by: Dr <b>Bold</b> & Co
"""


@pytest.fixture
def launch(check_yaml):
    checked = check_yaml(LAUNCH)
    assert checked.problems == []
    return checked


def _styled(html: str, tag: str, css_class: str | None = None) -> list[tuple[str, str]]:
    """(inlined style, inner HTML) of each `tag` (with `css_class`) in the email; none of them nest."""
    cls = f' class="{css_class}"' if css_class else ""
    return re.findall(rf'<{tag}{cls} style="([^"]*)">(.*?)</{tag}>', html, re.S)


def test_a_quote_is_a_pull_quote_with_a_rule_and_its_attribution_in_the_email(launch):
    quotes = _styled(launch.edition.html, "div", "nl-quote")
    assert len(quotes) == 2
    (style, inner), (_, second) = quotes
    assert "border-left: 4px solid" in style and "padding: 2px 0 2px 16px" in style
    words = _styled(inner, "p")[0]
    assert "font-size: 19px" in words[0]
    assert "we know what to do and <strong>many places</strong> are" in words[1]
    assert re.search(
        r'<p class="nl-quote-by" style="[^"]*">—&nbsp;<cite style="[^"]*">Professor Sir Michael Marmot'
        r"</cite>, Director, UCL Institute of Health Equity</p>",
        inner,
    )
    # What the editor typed as a name is shown as typed, never as markup.
    assert "Dr &lt;b&gt;Bold&lt;/b&gt; &amp; Co</cite></p>" in second
    assert "<b>Bold</b>" not in launch.edition.html


def test_a_markdown_quote_in_a_body_has_a_rule_not_a_bare_indent_both_sides(launch):
    (style, inner), *_ = _styled(launch.edition.html, "blockquote")
    assert "border-left: 4px solid" in style and "margin: 16px 0" in style
    assert "A quotation written in the body with Markdown." in inner


def test_the_web_version_has_each_quote_as_a_figure_with_a_cited_name(launch, tmp_editor):
    web = WebRenderer(tmp_editor.settings, tmp_editor.vocabulary)
    page = web.issue_page(WebIssue.from_issue(launch.issue), relative_link("archive/draft/index.html"))
    figures = re.findall(r'<figure class="quote">(.*?)</figure>', page, re.S)
    assert len(figures) == 2
    assert re.search(
        r"<blockquote><p>The impact on health .*<strong>many places</strong>.*</p></blockquote>", figures[0]
    )
    assert (
        "<figcaption>— <cite>Professor Sir Michael Marmot</cite>, Director, UCL Institute of Health Equity"
        "</figcaption>" in figures[0]
    )
    assert "<figcaption>— <cite>Dr &lt;b&gt;Bold&lt;/b&gt; &amp; Co</cite></figcaption>" in figures[1]


def test_the_text_part_has_each_quote_in_quotation_marks_with_who_said_it_under_it(launch):
    text = launch.edition.text
    expected = textwrap.dedent("""\
        “The impact on health is catastrophic - we know what to do and many
         places are taking the initiative.”
            — Professor Sir Michael Marmot, Director, UCL Institute of Health
              Equity

        “We cannot solve this unaided.”
            — Dr <b>Bold</b> & Co
        """)
    assert expected in text
    assert "> A quotation written in the body with Markdown." in text
    assert max(len(line) for line in text.splitlines() if "://" not in line) <= 72


def test_a_quote_without_who_said_it_is_reported_at_its_line(check_yaml):
    lines = LAUNCH.splitlines()
    by_line = lines.index("        by: Professor Sir Michael Marmot")
    del lines[by_line]
    with pytest.raises(ProblemsFound) as caught:
        check_yaml("\n".join(lines) + "\n")
    (problem,) = caught.value.problems
    assert problem.line == by_line  # the item's first line, `- text:`, just above where `by:` was
    assert problem.where == "story.quotes[1].by"
    assert problem.message == "is missing: every quote needs the name of who said it"


@pytest.mark.slow
def test_an_editor_checks_and_renders_a_story_with_quotes_from_an_init_folder(tmp_path):
    folder = init_project(tmp_path)
    issue = write_draft(folder, "2023-11", LAUNCH)

    checked = newsletter(folder, "check", "2023-11")
    assert checked.stdout.startswith("2023-11: ready: ")
    newsletter(folder, "render", "2023-11", "--out", "out")
    out = folder / "out"
    assert 'class="nl-quote" style="' in (out / "email.html").read_text(encoding="utf-8")
    assert "    — Professor Sir Michael Marmot, Director" in (out / "email.txt").read_text(encoding="utf-8")
    assert "<figcaption>— <cite>Professor Sir Michael Marmot</cite>" in (out / "web.html").read_text(
        encoding="utf-8"
    )

    issue.write_text(LAUNCH.replace("        by: Dr <b>Bold</b> & Co\n", ""), encoding="utf-8")
    failed = newsletter(folder, "check", "2023-11", ok=False)
    assert failed.returncode == 1
    line = LAUNCH.splitlines().index("      - text: We cannot solve this unaided.") + 1
    assert (
        f"issues/2023-11/issue.yaml:{line}: story.quotes[2].by: is missing: "
        "every quote needs the name of who said it"
    ) in failed.stdout
