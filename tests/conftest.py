"""Shared fixtures: the sample issue, real tmp projects, real renders, real SQLite and PostgreSQL databases."""

from __future__ import annotations

import os
import shutil
import textwrap
import uuid
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


# --- Databases: every audience test runs on a real SQLite file and a real PostgreSQL server. ---


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL server for the whole run (started in about a second)."""
    from newsletter.testing.postgres import TemporaryPostgres

    with TemporaryPostgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty database: a SQLite file in tmp_path, or a fresh database on the test PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'newsletter.sqlite3'}"
        return
    server = request.getfixturevalue("postgres")
    name = f"test_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name)
    yield url
    server.drop_database(name)


@pytest.fixture
def audience_settings(database_url, repo_root, tmp_path):
    return Settings(
        database_url=database_url,
        issues_dir=repo_root / "issues",
        theme_dir=repo_root / "templates",
        vocabulary_dir=repo_root / "subscribers",
    )


@pytest.fixture
def audience(audience_settings):
    """The member database, migrated and with topics and lists in place."""
    from newsletter.audience.service import Audience

    service = Audience.open(audience_settings)
    service.upgrade()
    yield service
    service.close()


@pytest.fixture
def server():
    """A real SMTP server on loopback that keeps what it is sent (aiosmtpd)."""
    from newsletter.testing.smtp import RecordingSMTPServer

    with RecordingSMTPServer() as running:
        yield running


@pytest.fixture
def sending(database_url, server):
    """`Sending` over a migrated database holding the 400 sample members, mailing `server`."""
    from delivery_support import delivery_settings, open_sending

    with open_sending(delivery_settings(database_url, server.port)) as opened:
        yield opened


@pytest.fixture(scope="module")
def browser():
    """A real headless Chromium (Debian's), one per test module that asks for it."""
    from browser_support import launch_browser

    yield from launch_browser()
