"""One rule for the name of an issue, whichever command names it: a folder in issues/, never `../`.

`new` always refused `../outside`; `check`, `render`, `send`, `preview` and `new --like` found
an issue through `Editor.locate`, which followed `../` out of issues/. The project folder below
holds a valid issue beside issues/ (`x/issue.yaml`), so a command that follows `../x` succeeds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.editor import Editor
from newsletter.errors import UserError
from newsletter.settings import Settings
from user_support import NEWSLETTER

RULE = "cannot name an issue: use lower-case letters, digits and hyphens, such as 2023-11"


@pytest.fixture
def outside(project, repo_root) -> Path:
    """A valid issue in the project folder but outside issues/, at `x/issue.yaml`."""
    shutil.copytree(repo_root / "issues" / "2023-10", project / "x")
    return project / "x" / "issue.yaml"


def run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def refused(result, given: str) -> None:
    assert result.exit_code == 1, result.output
    shown = given.replace("\n", "\\n")
    assert result.output.strip().splitlines() == [f"Error: '{shown}' {RULE}"]


@pytest.mark.parametrize(
    "given", ["../x", "issues/../x", "x/issue.yaml", "../x/issue.yaml", "2023-10/../../x"]
)
def test_check_refuses_a_name_that_leads_out_of_issues(outside, given):
    refused(run("check", given), given)


def test_check_refuses_an_absolute_path_outside_issues(outside):
    refused(run("check", str(outside)), str(outside))


def test_render_refuses_dot_dot(outside, tmp_path):
    out = tmp_path / "rendered"
    refused(run("render", "../x", "--out", str(out)), "../x")
    assert not out.exists()


def test_send_refuses_dot_dot(outside):
    refused(run("send", "../x", "--to", "everyone", "--yes"), "../x")


def test_send_test_refuses_dot_dot(outside):
    refused(run("send", "../x", "--test", "editor@example.org"), "../x")


def test_new_like_refuses_dot_dot(outside, project):
    refused(run("new", "2023-12", "--like", "../x"), "../x")
    assert not (project / "issues" / "2023-12").exists()


def test_preview_refuses_dot_dot(outside, project, repo_root):
    """`preview` finds its issue through `Editor.locate`, like every other command."""
    editor = Editor(Settings(issues_dir=project / "issues", vocabulary_dir=repo_root / "subscribers"))
    with pytest.raises(UserError) as caught:
        editor.locate("../x")
    assert str(caught.value) == f"'../x' {RULE}"


@pytest.mark.parametrize(
    "given", ["New Issue!", "2023_10", "2023-10 ", "2023-10\n", ".", "..", "2023-1Ω", "a" * 64]
)
def test_every_command_refuses_what_new_refuses(project, given):
    refused(run("new", given), given)
    refused(run("check", given), given)


def test_a_name_of_control_characters_is_shown_escaped(project):
    result = run("check", "\x1b[2J")
    assert result.exit_code == 1
    assert "\x1b" not in result.output
    assert result.output.strip() == f"Error: '\\x1b[2J' {RULE}"


def test_the_issue_as_a_path_inside_issues_still_works(project):
    for given in ("issues/2023-10", "issues/2023-10/issue.yaml", str(project / "issues" / "2023-10")):
        result = run("check", given)
        assert result.exit_code == 0, (given, result.output)
        assert result.output.startswith("2023-10: ready:")


def test_a_good_name_that_is_not_there_still_suggests_one(project):
    result = run("check", "2023-1")
    assert result.exit_code == 1
    assert "issues/2023-1/issue.yaml: no such issue. Did you mean '2023-10'?" in result.output


def test_the_installed_check_refuses_dot_dot_and_reads_nothing_outside(tmp_path, repo_root):
    project = tmp_path / "project"
    shutil.copytree(repo_root / "issues" / "2023-10", project / "issues" / "2023-10")
    shutil.copytree(repo_root / "issues" / "2023-10", project / "x")
    (project / "x" / "issue.yaml").chmod(0o000)  # reading it would fail differently, if it were read
    environment = {name: value for name, value in os.environ.items() if not name.startswith("NEWSLETTER_")}
    try:
        result = subprocess.run(
            [str(NEWSLETTER), "check", "../x"],
            cwd=project,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        (project / "x" / "issue.yaml").chmod(0o644)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"Error: '../x' {RULE}"]
