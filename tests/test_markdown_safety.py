"""Nothing an editor writes disappears unseen: what sanitising drops is a warning at its line; `lang`
spans survive; Markdown tables read on a phone and in the text part; titles and bodies share one
typographer."""

from __future__ import annotations

import re

import pytest

from issue_support import write_draft
from newsletter.render import markdown
from newsletter.render.web import WebRenderer
from user_support import init_project, newsletter

ISSUE = """\
title: Marmot's news
date: 2023-11-01
subject: Marmot's news
preheader: What happened this month
editor: Jane Editor
archive: true
sections:
  - kind: story
    label: Lead story
    title: Marmot's places
    body: |
      <span lang="cy">Croeso</span> to Marmot's places.

      <iframe src="https://www.youtube.com/embed/abc"></iframe>

      A greeting in <span lang="Welsh please">Cymraeg</span>.
  - kind: places
    items:
      - place: Gwent
        region: wales
        updates: |
          The schedule:

          | Place | Date | Lead |
          | --- | --- | --- |
          | Gwent | 5 October | Marmot's team |
          | Coventry | 12 October | The council |
"""


def line_of(text: str, fragment: str) -> int:
    """The 1-based line of ISSUE holding `fragment`."""
    return next(number for number, line in enumerate(text.splitlines(), 1) if fragment in line)


@pytest.fixture
def checked(check_yaml):
    result = check_yaml(ISSUE)
    assert result.problems == []
    return result


def test_a_dropped_iframe_is_a_warning_at_its_line_saying_what_to_do(checked):
    [iframe] = [w for w in checked.warnings if "<iframe>" in w.message]
    assert iframe.file.endswith("issues/draft/issue.yaml")
    assert iframe.line == line_of(ISSUE, "<iframe")
    assert iframe.where == "story.body"
    assert "cannot be shown in email: link to the video" in iframe.message


def test_a_lang_that_is_not_a_language_tag_is_dropped_with_a_warning_at_its_line(checked):
    [lang] = [w for w in checked.warnings if "lang=" in w.message]
    assert lang.line == line_of(ISSUE, "Welsh please")
    assert lang.message.startswith('lang="Welsh please" on <span> is removed: it is not a language tag')
    assert "Welsh please" not in checked.edition.html
    assert "<span>Cymraeg</span>" in checked.edition.html  # the words stay


def test_attributes_and_tags_that_go_are_each_named():
    found = [
        w.message
        for w in markdown.warnings('<p style="color:red" onclick="go()">Hi</p>\n\n<script>x</script>')
    ]
    assert found == [
        "style= on <p> is removed: the theme sets colours, fonts and sizes, so the email reads on phones "
        "and in dark mode",
        "onclick= on <p> is removed: email cannot run scripts",
        "<script> is removed: email cannot run scripts; everything inside it goes too",
    ]


def test_html_markdown_writes_itself_and_html_shown_as_code_give_no_warning():
    source = "| A | B |\n|:--|--:|\n| 1 | 2 |\n\n```python\nx = 1\n```\n\nWrite `<iframe>` as a link."
    assert markdown.warnings(source) == ()


def test_a_welsh_span_is_kept_in_the_email_the_web_version_and_the_archive(checked, tmp_editor):
    assert '<span lang="cy">Croeso</span>' in checked.edition.html
    assert "Croeso to Marmot’s places." in checked.edition.text
    web = WebRenderer(tmp_editor.settings, tmp_editor.vocabulary)
    assert '<span lang="cy">Croeso</span>' in web.standalone(checked.issue)  # web.html and the archive page


def test_a_table_reads_on_a_phone_ruled_with_a_header_row(checked):
    html = checked.edition.html
    table = re.search(r'<table class="nl-table" style="([^"]*)">', html)
    assert table, "the Markdown table keeps the theme's class"
    assert "width: 100%" in table.group(1) and "border-collapse: collapse" in table.group(1)
    [header] = re.findall(r'<th style="([^"]*)">Place</th>', html)
    assert (
        "padding: 6px 8px" in header
        and "border-bottom: 2px solid" in header
        and "font-weight: bold" in header
    )
    [cell] = re.findall(r'<td style="([^"]*)">Gwent</td>', html)
    assert "padding: 6px 8px" in cell and "border: 1px solid" in cell and "overflow-wrap: break-word" in cell
    assert not [w for w in checked.warnings if "table" in w.message]  # three columns fit a phone


def test_a_table_in_the_text_part_is_header_value_lines_per_row(checked):
    assert (
        "  Place: Gwent\n  Date: 5 October\n  Lead: Marmot’s team\n\n"
        "  Place: Coventry\n  Date: 12 October\n  Lead: The council"
    ) in checked.edition.text


def test_a_table_too_wide_for_a_phone_is_a_warning_at_its_header_row(check_yaml):
    wide = ISSUE.replace("| Place | Date | Lead |", "| Place | Date | Lead | Room |").replace(
        "| --- | --- | --- |", "| --- | --- | --- | --- |"
    )
    [warning] = check_yaml(wide).warnings[-1:]
    assert warning.line == line_of(wide, "| Room |")
    assert warning.where == "places[1].updates"
    assert warning.message.startswith("a table of 4 columns is cramped on a phone (375px wide)")


def test_titles_and_bodies_share_curly_apostrophes(checked, tmp_editor):
    html, text = checked.edition.html, checked.edition.text
    assert re.search(r"<h1[^>]*>Marmot’s news</h1>", html)
    assert re.search(r"<h2[^>]*>Marmot’s places</h2>", html)
    assert "Croeso</span> to Marmot’s places." in html
    # The subject stays as typed: MJML shows it as the page's <title> and the email's aria-label.
    without_subject = re.sub(r"<title>Marmot's news</title>|aria-label=\"Marmot's news\"", "", html)
    assert "Marmot's" not in without_subject
    assert "Marmot’s places\n---------------" in text and "to Marmot’s places." in text
    web = WebRenderer(tmp_editor.settings, tmp_editor.vocabulary).standalone(checked.issue)
    assert ">Marmot’s places</h2>" in web and "Marmot’s news</h1>" in web
    assert checked.edition.subject == "Marmot's news"


def test_the_typographer_leaves_addresses_alone():
    assert markdown.typographer('"Fair Society" -- the review...') == "“Fair Society” – the review…"
    assert (
        markdown.typographer("See https://example.org/it's--here or o'brien@example.org, it's free")
        == "See https://example.org/it's--here or o'brien@example.org, it’s free"
    )


@pytest.mark.slow
def test_check_warns_and_passes_and_render_keeps_the_welsh_from_an_init_folder(tmp_path):
    folder = init_project(tmp_path)
    write_draft(folder, "2023-11", ISSUE)

    checked = newsletter(folder, "check", "2023-11")
    assert checked.stdout.startswith("2023-11: ready: ")
    line = line_of(ISSUE, "<iframe")
    assert (
        f"warning: issues/2023-11/issue.yaml:{line}: story.body: <iframe> is removed: it cannot be shown "
        "in email: link to the video or page instead"
    ) in checked.stderr

    newsletter(folder, "render", "2023-11", "--out", "out")
    out = folder / "out"
    assert '<span lang="cy">Croeso</span>' in (out / "email.html").read_text(encoding="utf-8")
    assert '<span lang="cy">Croeso</span>' in (out / "web.html").read_text(encoding="utf-8")
    assert "Marmot’s places" in (out / "email.txt").read_text(encoding="utf-8")

    newsletter(folder, "archive", "build", "--out", "site")
    page = (folder / "site" / "archive" / "2023-11" / "index.html").read_text(encoding="utf-8")
    assert '<span lang="cy">Croeso</span>' in page and ">Marmot’s places</h2>" in page


@pytest.mark.browser
@pytest.mark.parametrize("width", [375, 600])
def test_a_table_fits_a_phone_and_a_desktop_with_room_in_each_cell(checked, tmp_path, width):
    from browser_support import launch_browser, open_page, overflow, screenshot
    from newsletter.editor import write_edition

    write_edition(checked.edition, tmp_path)
    for browser in launch_browser():
        page = open_page(browser, (tmp_path / "email.html").as_uri(), width)
        screenshot(page, f"email-table-{width}px")
        assert overflow(page) == 0
        box = page.evaluate(
            """() => {
                const table = document.querySelector('table.nl-table');
                const th = table.querySelector('th'), style = getComputedStyle(th);
                return {right: table.getBoundingClientRect().right, padding: parseFloat(style.paddingLeft),
                        rule: parseFloat(style.borderBottomWidth), size: parseFloat(style.fontSize)};
            }"""
        )
        assert box["right"] <= width and box["padding"] >= 6 and box["rule"] == 2 and box["size"] >= 15
        page.close()
