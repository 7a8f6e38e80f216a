"""The pre-send lint on real renders: what inbox providers and mail clients would punish."""

from __future__ import annotations

import shutil

import pytest

from newsletter.editor import Editor
from newsletter.render.lint import lint
from newsletter.settings import Settings

ISSUE = """\
title: November 2023 Newsletter
date: 2023-11-01
subject: {subject}
preheader: {preheader}
editor: E
sections:
  - kind: story
    title: A story
    body: |
      {body}
"""


def issue_text(subject="News from the network", preheader="What happened this month", body="Text."):
    return ISSUE.format(subject=subject, preheader=preheader, body=body)


def test_clean_sample_has_no_problems(editor, settings, sample_issue_path):
    edition = editor.renderer.render(editor.load("2023-10")[1])
    assert lint(edition, sample_issue_path, settings.theme_dir) == []


def test_long_subject_points_at_the_subject_line(check_yaml):
    subject = "A subject line that goes on and on about everything that happened in the network"
    checked = check_yaml(issue_text(subject=subject))
    assert [(p.line, p.where) for p in checked.problems] == [(3, "subject")]
    assert checked.problems[0].message == (
        f"is {len(subject)} characters; inboxes cut subjects after about 78, so shorten it"
    )


def test_subject_of_78_characters_is_fine(check_yaml):
    checked = check_yaml(issue_text(subject="x" * 78))
    assert checked.problems == []


def test_http_link_in_markdown_points_at_the_line_where_it_is_written(check_yaml):
    body = "First line.\n\n      Read [the old page](http://example.org/old) too."
    checked = check_yaml(issue_text(body=body))
    assert [(p.line, p.where, p.message) for p in checked.problems] == [
        (12, "link", "'http://example.org/old' is not an https:// address")
    ]


def test_markdown_image_without_alt_text(check_yaml):
    checked = check_yaml(issue_text(body="Look: ![](https://example.org/a.png)"))
    assert [(p.line, p.where) for p in checked.problems] == [(10, "image")]
    assert checked.problems[0].message == "'https://example.org/a.png' has no alt text; describe the picture"


def test_markdown_image_with_alt_text_is_fine(check_yaml):
    checked = check_yaml(issue_text(body="Look: ![A map of Leeds](https://example.org/a.png)"))
    assert checked.problems == []


def oversized_issue(count: int) -> str:
    paragraph = "Evidence on the social determinants of health and what local partners are doing. " * 12
    items = "".join(
        f"      - title: Report number {n}\n"
        f"        url: https://example.org/reports/{n}\n"
        f"        summary: {paragraph}\n"
        f"        date: 2023-10-01\n"
        for n in range(count)
    )
    return issue_text() + "  - kind: publications\n    items:\n" + items


def test_oversized_issue_warns_about_gmail_clipping(check_yaml):
    checked = check_yaml(oversized_issue(120))
    assert checked.edition.html_bytes > 102 * 1024
    [problem] = checked.problems
    assert "Gmail clips everything after 102 KB" in problem.message
    assert problem.file.endswith("issue.yaml")


def test_issue_just_under_the_limit_is_fine(check_yaml):
    checked = check_yaml(oversized_issue(10))
    assert checked.edition.html_bytes < 102 * 1024
    assert checked.problems == []


def test_preheader_with_an_ampersand_is_found(check_yaml):
    checked = check_yaml(issue_text(preheader="News & views from the network"))
    assert checked.problems == []


@pytest.fixture
def theme_without_unsubscribe(tmp_path, repo_root):
    theme = tmp_path / "theme"
    shutil.copytree(repo_root / "templates", theme)
    email = theme / "email" / "issue.mjml.j2"
    source = email.read_text(encoding="utf-8")
    link = ' &middot; <a href="{{ links.unsubscribe }}">Unsubscribe</a>'
    assert link in source
    email.write_text(source.replace(link, ""), encoding="utf-8")
    text = theme / "text" / "issue.txt.j2"
    source = text.read_text(encoding="utf-8")
    line = "Unsubscribe: {{ links.unsubscribe }}\n"
    assert line in source
    text.write_text(source.replace(line, ""), encoding="utf-8")
    return theme


def test_theme_without_unsubscribe_link_is_refused(theme_without_unsubscribe, repo_root):
    settings = Settings(
        issues_dir=repo_root / "issues",
        theme_dir=theme_without_unsubscribe,
        vocabulary_dir=repo_root / "subscribers",
    )
    problems = Editor(settings).check("2023-10").problems
    assert [(p.where, p.message) for p in problems] == [
        (
            "theme",
            'the email has no unsubscribe link; add <a href="{{ links.unsubscribe }}"> to the footer',
        ),
        ("theme", "the text part has no unsubscribe link; add {{ links.unsubscribe }} to the footer"),
    ]
    assert problems[0].file.endswith("email")
    assert problems[1].file.endswith("text")


def test_theme_without_language_is_refused(tmp_path, repo_root):
    theme = tmp_path / "theme"
    shutil.copytree(repo_root / "templates", theme)
    email = theme / "email" / "issue.mjml.j2"
    email.write_text(
        email.read_text(encoding="utf-8").replace('<mjml lang="{{ issue.language }}"', "<mjml"),
        encoding="utf-8",
    )
    settings = Settings(
        issues_dir=repo_root / "issues", theme_dir=theme, vocabulary_dir=repo_root / "subscribers"
    )
    problems = Editor(settings).check("2023-10").problems
    assert [p.message for p in problems] == ['the email does not declare its language (lang="en-GB")']


LINKS = """\
    links:
      - label: Read more
        url: https://example.org/one
      - label: read  more
        url: https://example.org/two
      - label: Read more
        url: https://example.org/one
"""


def test_one_link_text_for_different_addresses_names_the_text_the_addresses_and_the_line(check_yaml):
    """A screen reader's list of links would offer "Read more" twice, with no way to tell them apart."""
    checked = check_yaml(issue_text() + LINKS)
    assert [(p.line, p.where, p.message) for p in checked.problems] == [
        (
            15,
            "link",
            "the link text 'Read more →' leads to 2 different addresses "
            "(https://example.org/one, https://example.org/two); "
            "screen readers list links by their text, so make each one say where it goes",
        )
    ]
    assert "issues/draft/issue.yaml:15: link: the link text 'Read more →'" in str(checked.problems[0])


def test_one_link_text_for_one_address_is_fine(check_yaml):
    body = "See [the report](https://example.org/report), or [the report](https://example.org/report) again."
    checked = check_yaml(issue_text(body=body) + LINKS.replace("two", "one"))
    assert checked.problems == []


def test_links_written_in_markdown_are_checked_too(check_yaml):
    checked = check_yaml(
        issue_text(body="Read [here](https://example.org/a) and [Here](https://example.org/b).")
    )
    assert [(p.line, p.where) for p in checked.problems] == [(10, "link")]
    assert "'here' leads to 2 different addresses (https://example.org/a, https://example.org/b)" in (
        checked.problems[0].message
    )


def copied_theme(tmp_path, repo_root, path: str, old: str, new: str) -> Settings:
    """Settings for the sample with a copy of the theme in which `old` is replaced by `new` in `path`."""
    theme = tmp_path / "theme"
    shutil.copytree(repo_root / "templates", theme)
    template = theme / path
    source = template.read_text(encoding="utf-8")
    assert old in source
    template.write_text(source.replace(old, new), encoding="utf-8")
    return Settings(
        issues_dir=repo_root / "issues", theme_dir=theme, vocabulary_dir=repo_root / "subscribers"
    )


def test_read_the_report_links_without_their_names_are_reported(tmp_path, repo_root):
    """The sample passes because the theme names each "Read the report" link after its report."""
    settings = copied_theme(
        tmp_path,
        repo_root,
        "email/sections/publications.mjml.j2",
        ' aria-label="Read the report: {{ item.title | typographer }}"',
        "",
    )
    [problem] = Editor(settings).check("2023-10").problems
    assert problem.file.endswith("issues/2023-10/issue.yaml")
    lines = (repo_root / "issues/2023-10/issue.yaml").read_text(encoding="utf-8").splitlines()
    assert lines[problem.line - 1].strip() == (
        "url: https://www.instituteofhealthequity.example.org/resources-reports/building-a-fairer-gwent"
    )
    assert problem.message.startswith("the link text 'Read the report →' leads to 5 different addresses (")


def test_a_theme_that_drops_the_preheader_is_refused(tmp_path, repo_root):
    settings = copied_theme(tmp_path, repo_root, "email/issue.mjml.j2", "{{ issue.preheader }}", "")
    problems = Editor(settings).check("2023-10").problems
    assert [(p.line, p.where, p.message) for p in problems] == [
        (12, "preheader", "is missing from the email; inboxes show it next to the subject")
    ]


# --- Where a problem in Markdown points, and what else the lint looks for (issue 11) ---

HEAD_LINES = """\
title: November 2023 Newsletter
date: 2023-11-01
subject: News from the network
preheader: What happened this month
editor: E
sections:
  - kind: story
    title: A story
"""  # lines 1-8


def lint_lines(check_yaml, monkeypatch, tmp_path, text: str) -> list[str]:
    """Every lint problem as the editor reads it: `issues/draft/issue.yaml:LINE: where: message`."""
    monkeypatch.chdir(tmp_path)
    return [str(problem) for problem in check_yaml(text).problems]


def test_an_image_without_alt_points_at_its_markdown_not_at_the_same_address_earlier(
    check_yaml, monkeypatch, tmp_path
):
    text = HEAD_LINES + (
        "    image:\n"  # 9
        "      src: https://example.org/map.png\n"  # 10: the same address, with alt text
        "      alt: A map of Leeds\n"
        "    body: |\n"  # 12
        "      First paragraph.\n"
        "\n"
        "      The map again: ![](https://example.org/map.png)\n"  # 15
    )
    assert lint_lines(check_yaml, monkeypatch, tmp_path, text) == [
        "issues/draft/issue.yaml:15: image: 'https://example.org/map.png' has no alt text; describe the picture"
    ]


def test_an_image_whose_address_is_only_a_year_points_at_its_markdown_not_at_the_title(
    check_yaml, monkeypatch, tmp_path
):
    text = HEAD_LINES + "    body: |\n      Text.\n\n      ![](2023)\n"  # the image on line 12
    assert lint_lines(check_yaml, monkeypatch, tmp_path, text) == [
        "issues/draft/issue.yaml:12: image: '2023' has no alt text; describe the picture",
        "issues/draft/issue.yaml:12: image: '2023' is not an https:// address, so the picture will not "
        "show; give its full https:// address",
    ]


@pytest.mark.parametrize(
    ("markdown", "shown"),
    [
        ("![](https://example.org/ünï.png)", "https://example.org/%C3%BCn%C3%AF.png"),  # percent-encoded
        ("![](<https://example.org/a b.png>)", "https://example.org/a%20b.png"),
        ('<img src="https&#58;//example.org/q.png">', "https://example.org/q.png"),  # an entity in raw HTML
        ("![](https://example.org/a&amp;b.png)", "https://example.org/a&b.png"),
    ],
)
def test_an_image_written_in_another_form_than_rendered_points_at_its_line(
    check_yaml, monkeypatch, tmp_path, markdown, shown
):
    text = HEAD_LINES + f"    body: |\n      Text.\n\n      Look: {markdown}\n"
    assert lint_lines(check_yaml, monkeypatch, tmp_path, text) == [
        f"issues/draft/issue.yaml:12: image: '{shown}' has no alt text; describe the picture"
    ]


def test_an_entity_encoded_javascript_link_points_at_its_line_not_at_the_theme(
    check_yaml, monkeypatch, tmp_path
):
    text = HEAD_LINES + "    body: |\n      Text.\n\n      Click [here](jav&#x09;ascript:alert(1)).\n"
    assert lint_lines(check_yaml, monkeypatch, tmp_path, text) == [
        "issues/draft/issue.yaml:12: link: 'jav%09ascript:alert(1)' is not an https:// address"
    ]


def test_a_problem_in_markdown_found_nowhere_in_the_text_points_at_its_field(
    check_yaml, monkeypatch, tmp_path
):
    """YAML's own escapes (`\\u0068` is `h`) hide the address from a search of the lines: the field that
    renders it is still found."""
    text = HEAD_LINES + '    body: "Text.\\n\\nClick [here](\\u0068ttp://example.org/old)."\n'  # line 9
    assert lint_lines(check_yaml, monkeypatch, tmp_path, text) == [
        "issues/draft/issue.yaml:9: link: 'http://example.org/old' is not an https:// address"
    ]


def test_an_image_with_an_empty_address_points_at_its_line(check_yaml, monkeypatch, tmp_path):
    text = HEAD_LINES + "    body: |\n      Text.\n\n      ![A map]()\n"
    assert lint_lines(check_yaml, monkeypatch, tmp_path, text) == [
        "issues/draft/issue.yaml:12: image: '(empty)' is not an https:// address, so the picture will not "
        "show; give its full https:// address"
    ]


def test_an_http_image_in_markdown_is_reported(check_yaml, monkeypatch, tmp_path):
    text = HEAD_LINES + "    body: |\n      Text.\n\n      ![A map of Leeds](http://example.org/map.png)\n"
    assert lint_lines(check_yaml, monkeypatch, tmp_path, text) == [
        "issues/draft/issue.yaml:12: image: 'http://example.org/map.png' is not an https:// address; "
        "mail clients block or flag http:// pictures, and anyone on the way sees who opens the email"
    ]


def test_an_https_image_in_markdown_is_fine(check_yaml):
    checked = check_yaml(HEAD_LINES + "    body: ![A map of Leeds](https://example.org/map.png)\n")
    assert checked.problems == []
