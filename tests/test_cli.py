"""The `newsletter` command as an editor uses it, run in a project folder holding only issues/."""

from __future__ import annotations

import re

import pytest
import yaml
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.content.model import SECTION_KINDS


def run(*args, env=None):
    result = CliRunner().invoke(cli, list(args), env=env)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_help_lists_the_editor_commands(project):
    result = run("--help")
    assert result.exit_code == 0
    for command in ("new", "check", "render", "preview", "demo"):
        assert re.search(rf"^\s+{command}\s", result.output, re.MULTILINE), command


def test_check_sample_prints_one_line_summary(project):
    result = run("check", "2023-10")
    assert result.exit_code == 0
    assert result.output.splitlines() == [result.output.strip()]
    assert result.output.startswith("2023-10: ready: 11 sections, 27 items; email ")


BROKEN = """\
title: T
date: 2023-02-30
subject: S
preheader: ""
editor: E
sections:
  - kind: story
    title: A story
    body: Text.
    topics: [housng]
  - kind: links
    items: []
"""


def test_check_broken_issue_lists_every_problem(project, write_issue):
    write_issue(project, BROKEN, slug="broken")
    result = run("check", "broken")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "issues/broken/issue.yaml:2: date: '2023-02-30' is not a real date"
    assert lines[1] == "issues/broken/issue.yaml:4: preheader: is empty"
    assert lines[2].startswith(
        "issues/broken/issue.yaml:10: story.topics[1]: unknown topic 'housng' (did you mean 'housing'?)"
    )
    assert lines[3] == (
        "issues/broken/issue.yaml:12: links.items: has no items; add at least one or remove the section"
    )
    assert len(lines) == 4
    assert result.stderr.strip() == "4 problems found."


def test_check_lint_problem_fails_the_check(project, write_issue):
    write_issue(project, LONG_SUBJECT, slug="long")
    result = run("check", "long")
    assert result.exit_code == 1
    assert result.stdout.startswith("issues/long/issue.yaml:3: subject: is 80 characters")
    assert result.stderr.strip() == "1 problem found."


def test_check_unknown_issue_says_so_and_suggests(project):
    result = run("check", "nope")
    assert result.exit_code == 1
    assert "issues/nope/issue.yaml: no such issue." in result.output
    assert "Issues here: 2023-10." in result.output
    assert "newsletter new nope" in result.output
    result = run("check", "2023-1")
    assert "Did you mean '2023-10'?" in result.output


def test_check_accepts_the_path_of_the_issue_file(project):
    result = run("check", "issues/2023-10/issue.yaml")
    assert result.exit_code == 0
    assert result.output.startswith("2023-10: ready:")


def test_render_writes_html_and_text(project, tmp_path):
    out = tmp_path / "rendered"
    result = run("render", "2023-10", "--out", str(out))
    assert result.exit_code == 0
    html = (out / "email.html").read_text(encoding="utf-8")
    text = (out / "email.txt").read_text(encoding="utf-8")
    assert html.lower().startswith("<!doctype html>")
    assert "Growing a Movement for Health Equity" in html
    assert "%%" not in text and "/unsubscribe/" in text  # a sample member's links, filled in
    assert "Wrote " in result.output


LONG_SUBJECT = """\
title: T
date: 2023-11-01
subject: A subject line that goes on and on about everything that happened in the network
preheader: P
editor: E
sections:
  - kind: story
    title: A story
    body: Text.
"""


def test_render_refuses_a_lint_failing_issue(project, write_issue):
    write_issue(project, LONG_SUBJECT, slug="long")
    out = project / "out-long"
    result = run("render", "long", "--out", str(out))
    assert result.exit_code == 1
    assert "issues/long/issue.yaml:3: subject: is 80 characters" in result.output
    assert not out.exists()


def test_render_force_writes_despite_lint_and_warns(project, write_issue):
    write_issue(project, LONG_SUBJECT, slug="long")
    out = project / "out-long"
    result = run("render", "long", "--out", str(out), "--force")
    assert result.exit_code == 0
    assert "warning: issues/long/issue.yaml:3: subject: is 80 characters" in result.stderr
    assert (out / "email.html").is_file()
    assert (out / "email.txt").is_file()


def test_new_creates_a_skeleton_with_every_section_kind(project):
    result = run("new", "2023-11")
    assert result.exit_code == 0
    assert "Created issues/2023-11/issue.yaml" in result.output
    path = project / "issues" / "2023-11" / "issue.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert [section["kind"] for section in data["sections"]] == list(SECTION_KINDS)
    assert data["title"] == "November 2023 Newsletter"
    assert str(data["date"]) == "2023-11-01"


def test_new_refuses_to_overwrite(project):
    assert run("new", "2023-11").exit_code == 0
    path = project / "issues" / "2023-11" / "issue.yaml"
    path.write_text("title: my work\n", encoding="utf-8")
    result = run("new", "2023-11")
    assert result.exit_code == 1
    assert "issues/2023-11/issue.yaml: already exists" in result.output
    assert path.read_text(encoding="utf-8") == "title: my work\n"


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("New Issue!", "'New Issue!' cannot name an issue"),
        ("../outside", "'../outside' cannot name an issue"),
        ("2023-13", "'2023-13' looks like a month but is not one"),
    ],
)
def test_new_refuses_a_bad_slug(project, slug, message):
    result = run("new", slug)
    assert result.exit_code == 1
    assert message in result.output
    assert sorted(p.name for p in (project / "issues").iterdir()) == ["2023-10"]


def test_check_on_a_fresh_skeleton_lists_the_blanks_to_fill(project):
    run("new", "2023-11")
    result = run("check", "2023-11")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert all(re.match(r"issues/2023-11/issue\.yaml:\d+: \S+: is empty$", line) for line in lines), lines
    wheres = [line.split(": ")[1] for line in lines]
    for expected in ("subject", "preheader", "editor", "story.title", "publications[1].url", "contact.email"):
        assert expected in wheres
    assert "title" not in wheres
    assert "date" not in wheres
    assert result.stderr.strip() == f"{len(lines)} problems found."


def test_new_like_keeps_the_structure_of_an_earlier_issue(project, sample):
    result = run("new", "2023-11", "--like", "2023-10")
    assert result.exit_code == 0
    source = (project / "issues" / "2023-11" / "issue.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(source)
    sections = data["sections"]
    assert [s["kind"] for s in sections] == [s.KIND for s in sample.issue.sections]
    assert [s.get("heading") for s in sections] == [
        getattr(s, "heading", None) for s in sample.issue.sections
    ]
    # A story's label ("Lead story") is layout and kept; a button's label is this month's to write.
    assert [s.get("label") for s in sections] == [
        {"story": s.label, "call_to_action": ""}.get(s.KIND) if hasattr(s, "label") else None
        for s in sample.issue.sections
    ]
    assert data["title"] == "November 2023 Newsletter"
    assert data["editor"] == ""
    assert data["subject"] == ""
    for section in sections:
        for item in section.get("items", []):
            assert set(item.values()) <= {"", None}, item
    result = run("check", "2023-11")
    assert result.exit_code == 1
    first_title = source.splitlines().index('    title: ""') + 1
    assert f"issues/2023-11/issue.yaml:{first_title}: story#1.title: is empty" in result.stdout.splitlines()


def test_new_like_unknown_issue_is_a_clear_error(project):
    result = run("new", "2023-11", "--like", "2023-09")
    assert result.exit_code == 1
    assert "issues/2023-09/issue.yaml: no such issue." in result.output
    assert not (project / "issues" / "2023-11").exists()


def test_demo_writes_email_text_and_preview(project):
    result = run("demo")
    assert result.exit_code == 0
    out = project / "out" / "2023-10"
    for name in ("email.html", "email.txt", "preview.html", "preview.css"):
        assert (out / name).is_file(), name
    page = (out / "preview.html").read_text(encoding="utf-8")
    assert 'src="email.html"' in page
    assert "%%unsubscribe_url%%" in page
    assert "check:    2023-10: ready:" in result.output
    archive = project / "out" / "site" / "archive"
    assert "archive:  Archive built in" in result.output and ": 1 issue, " in result.output
    issue_page = (archive / "2023-10" / "index.html").read_text(encoding="utf-8")
    assert "October 2023 Newsletter" in issue_page and (archive / "feed.xml").is_file()

    # Run again in the same folder (as people do): it re-sends knowingly, and says why it may.
    again = run("demo")
    assert again.exit_code == 0, again.output
    assert "of them had it from an earlier demo run" in again.output
    assert (
        re.search(r"worker: +(\d+) sent", again.output)[1]
        == re.search(r"worker: +(\d+) sent", result.output)[1]
    )
