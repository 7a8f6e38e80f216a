"""Whatever an editor pastes into an issue, the email carries no script and no markup they did not mean."""

from __future__ import annotations

import re

import pytest

from newsletter.render import markdown

HOSTILE = [
    "<script>alert(1)</script>",
    "Inline <script>alert(1)</script> script.",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">mixed case</a>',
    "[x](javascript:alert(1))",
    "<img src=x onerror=alert(1)>",
    '<iframe src="https://evil.example.org"></iframe>',
    "<IFRAME SRC=https://evil.example.org></IFRAME>",
    "<svg onload=alert(1)></svg>",
    '<p style="background:url(javascript:alert(1))" onclick="alert(1)">styled</p>',
    "<form action=https://evil.example.org><input name=password></form>",
]

ISSUE = """\
title: Safe
date: 2023-11-01
subject: Safe
preheader: Nothing runs
editor: E
sections:
  - kind: story
    title: Pasted
    body: |
{body}
"""


def body_with(snippets: list[str]) -> str:
    return "\n\n".join(snippets)


def assert_no_active_content(html: str) -> None:
    lowered = html.lower()
    assert "<script" not in lowered
    assert not re.search(r"""href\s*=\s*["']?\s*javascript:""", lowered)
    assert "javascript:alert" not in lowered.replace("[x](javascript:alert(1))", "")
    assert "onerror" not in lowered
    assert "onload" not in lowered
    assert "onclick" not in lowered
    assert "<iframe" not in lowered
    assert "<svg" not in lowered
    assert "<form" not in lowered
    assert "<input" not in lowered


@pytest.mark.parametrize("snippet", HOSTILE)
def test_markdown_html_drops_each_kind_of_active_content(snippet):
    assert_no_active_content(str(markdown.to_html(snippet)))


def test_hostile_story_body_is_neutralised_in_the_whole_email(check_yaml):
    body = "\n".join("      " + line for line in body_with(HOSTILE).splitlines())
    checked = check_yaml(ISSUE.format(body=body))
    assert_no_active_content(checked.edition.html)
    assert "<script" not in checked.edition.text.lower()
    assert "<iframe" not in checked.edition.text.lower()


def test_ordinary_links_survive_sanitising():
    html = str(
        markdown.to_html("See [the report](https://example.org/r) or [mail us](mailto:a@example.org).")
    )
    assert '<a href="https://example.org/r">the report</a>' in html
    assert '<a href="mailto:a@example.org">mail us</a>' in html


def test_text_part_drops_script_code_like_the_html_does():
    text = markdown.to_text("Hello <script>alert(1)</script> there.")
    assert "alert" not in text


TITLE = '<b>bold</b> & "quotes"'


def test_titles_are_shown_as_written_not_as_markup(check_yaml):
    checked = check_yaml(
        ISSUE.replace("title: Pasted", f"title: '{TITLE}'").format(body="      Text."),
    )
    html = checked.edition.html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp;" in html
    assert "<b>bold</b>" not in html
    assert "\n<b>bold</b> & “quotes”\n" in checked.edition.text  # typeset like the bodies, not markup


def test_network_name_from_settings_is_escaped(tmp_path, write_issue, repo_root):
    from newsletter.editor import Editor
    from newsletter.settings import Settings

    write_issue(tmp_path, ISSUE.format(body="      Text."))
    settings = Settings(
        issues_dir=tmp_path / "issues",
        theme_dir=repo_root / "templates",
        vocabulary_dir=repo_root / "subscribers",
        network_name="Health <i>&</i> Equity",
    )
    html = Editor(settings).check("draft").edition.html
    assert "Health &lt;i&gt;&amp;&lt;/i&gt; Equity" in html
    assert "<i>&</i>" not in html
