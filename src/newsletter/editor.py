"""The editor's monthly path as library calls: find, check, render an issue.

The CLI and the preview server are thin layers over these functions, so a
script (or a test) can do what `newsletter check` does without a shell.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from newsletter.content.loader import issue_file, load_issue
from newsletter.content.model import Issue
from newsletter.errors import Problem, ProblemsFound
from newsletter.render.edition import Edition, Renderer
from newsletter.render.lint import lint
from newsletter.render.web import WebRenderer
from newsletter.settings import Settings
from newsletter.vocabulary import Vocabulary


@dataclass(frozen=True)
class CheckedIssue:
    """An issue that loaded, its full edition, and what the lint found in it."""

    path: Path
    issue: Issue
    edition: Edition
    problems: list[Problem]

    def summary(self) -> str:
        """One line for a clean check: what is in the issue and how big the email is."""
        items = sum(len(getattr(section, "items", ())) or 1 for section in self.issue.sections)
        return (
            f"{self.issue.slug}: ready: {len(self.issue.sections)} sections, {items} items; "
            f"email {self.edition.html_bytes / 1024:.1f} KB HTML, "
            f"{len(self.edition.text.encode()) / 1024:.1f} KB text"
        )


class Editor:
    """Loads the vocabulary and theme once; checks and renders any number of issues."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.vocabulary = Vocabulary.load(settings.vocabulary_dir)
        self.renderer = Renderer(settings, self.vocabulary)

    def locate(self, slug: str) -> Path:
        return issue_file(self.settings.issues_dir, slug)

    def load(self, slug: str) -> tuple[Path, Issue]:
        """Find and validate an issue; raises `ProblemsFound` with every mistake."""
        path = self.locate(slug)
        return path, load_issue(path, self.vocabulary)

    def check(self, slug: str) -> CheckedIssue:
        """Validate, render and lint; validation problems raise, lint problems are returned."""
        path, issue = self.load(slug)
        edition = self.renderer.render(issue)
        return CheckedIssue(path, issue, edition, lint(edition, path, self.settings.theme_dir))

    @cached_property
    def web_renderer(self) -> WebRenderer:
        """The archive theme, loaded the first time a web version is wanted."""
        return WebRenderer(self.settings, self.vocabulary)

    def render_to(self, slug: str, out_dir: Path, force: bool = False) -> CheckedIssue:
        """Write `email.html`, `email.txt` and `web.html` (the archive's web version) into `out_dir`;
        refuse if the lint fails, unless forced."""
        checked = self.check(slug)
        if checked.problems and not force:
            raise ProblemsFound(checked.problems)
        web = self.web_renderer.standalone(checked.issue)
        write_edition(checked.edition, out_dir)
        (out_dir / "web.html").write_text(web, encoding="utf-8", newline="")
        return checked


def write_edition(edition: Edition, out_dir: Path) -> list[Path]:
    """Write an edition's `email.html` and `email.txt` into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in (("email.html", edition.html), ("email.txt", edition.text)):
        target = out_dir / name
        target.write_text(content, encoding="utf-8", newline="")
        written.append(target)
    return written
