"""Shared fixtures for the editor path: the sample issue, real tmp projects, real renders."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from newsletter.editor import CheckedIssue, Editor
from newsletter.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_SLUG = "2023-10"


@pytest.fixture(autouse=True)
def _no_settings_from_environment(monkeypatch):
    """A NEWSLETTER_* variable in the developer's shell must not change what the tests see."""
    for name in list(os.environ):
        if name.startswith("NEWSLETTER_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def sample_issue_path(repo_root) -> Path:
    return repo_root / "issues" / SAMPLE_SLUG / "issue.yaml"


@pytest.fixture(scope="session")
def settings(repo_root) -> Settings:
    """Settings pointing explicitly at the repository's issues, theme and vocabulary."""
    return Settings(
        issues_dir=repo_root / "issues",
        theme_dir=repo_root / "templates",
        vocabulary_dir=repo_root / "subscribers",
    )


@pytest.fixture(scope="session")
def editor(settings) -> Editor:
    return Editor(settings)


@pytest.fixture(scope="session")
def sample(editor) -> CheckedIssue:
    """The sample issue, validated, rendered and linted once for the whole session."""
    return editor.check(SAMPLE_SLUG)


@pytest.fixture
def project(tmp_path, monkeypatch, repo_root) -> Path:
    """A project folder holding only `issues/2023-10`, with the working directory changed into it.

    Theme and vocabulary come from the bundled templates/ and subscribers/.
    """
    shutil.copytree(repo_root / "issues" / SAMPLE_SLUG, tmp_path / "issues" / SAMPLE_SLUG)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _write_issue(directory: Path, yaml_text: str | bytes, slug: str = "draft") -> Path:
    target = Path(directory) / "issues" / slug / "issue.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(yaml_text, bytes):
        target.write_bytes(yaml_text)
    else:
        target.write_text(textwrap.dedent(yaml_text), encoding="utf-8")
    return target


@pytest.fixture
def write_issue():
    """`write_issue(directory, yaml_text, slug="draft") -> Path` of `directory/issues/slug/issue.yaml`."""
    return _write_issue


@pytest.fixture
def tmp_editor(tmp_path, repo_root) -> Editor:
    """An Editor whose issues live in `tmp_path/issues`, with the bundled theme and vocabulary."""
    return Editor(
        Settings(
            issues_dir=tmp_path / "issues",
            theme_dir=repo_root / "templates",
            vocabulary_dir=repo_root / "subscribers",
        )
    )


@pytest.fixture
def check_yaml(tmp_path, tmp_editor):
    """Write an issue into tmp_path and run the full check (validate, render, lint) on it."""

    def check(yaml_text: str, slug: str = "draft") -> CheckedIssue:
        _write_issue(tmp_path, yaml_text, slug)
        return tmp_editor.check(slug)

    return check
