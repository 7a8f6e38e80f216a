"""The editor's monthly path as library calls: find, check, render an issue.

The CLI and the preview server are thin layers over these functions, so a
script (or a test) can do what `newsletter check` does without a shell.
"""

from __future__ import annotations

import html
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from newsletter.content import images
from newsletter.content.loader import issue_file, load_issue
from newsletter.content.model import Issue
from newsletter.errors import Problem, ProblemsFound, UserError, display_path
from newsletter.render.edition import Edition, Renderer
from newsletter.render.events import write_calendars
from newsletter.render.lint import image_warnings, lint, lint_draft, markdown_warnings
from newsletter.render.web import WebRenderer
from newsletter.settings import Settings
from newsletter.vocabulary import Vocabulary


def text_only_page(label: str) -> str:
    """What a preview's email pane shows for members who chose plain text: they get no HTML part."""
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Plain text only</title>"
        "<body style='font:16px/1.5 system-ui,sans-serif;padding:1em'><p>"
        f"{html.escape(label)} chose plain text: they get no HTML part. Their email is the plain-text part "
        "shown beside this.</p></body></html>"
    )


@dataclass(frozen=True)
class CheckedIssue:
    """An issue that loaded, its full edition, and what the lint found in it."""

    path: Path
    issue: Issue
    edition: Edition
    problems: list[Problem]
    # What readers will not see as written (HTML the sanitiser drops, tables too wide for a phone):
    # shown by `check`, never a reason to refuse.
    warnings: list[Problem] = field(default_factory=list)

    def raise_for_problems(self) -> None:
        """Refuse to go on with an issue `check` finds problems in (`ProblemsFound` lists them all)."""
        if self.problems:
            raise ProblemsFound(self.problems)

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
        """Find and validate an issue; raises `ProblemsFound` with every mistake, the lint's checks
        that need only the file (a subject too long) among them, so one pass shows everything."""
        path = self.locate(slug)
        try:
            return path, load_issue(path, self.vocabulary)
        except ProblemsFound as found:
            problems = sorted([*found.problems, *lint_draft(path)], key=lambda problem: problem.line or 0)
            raise ProblemsFound(problems) from None

    def check(self, slug: str) -> CheckedIssue:
        """Validate, render and lint; validation problems raise, lint problems are returned."""
        path, issue = self.load(slug)
        edition = self.renderer.render(issue)
        problems = lint(edition, path, self.settings.theme_dir)
        warnings = [*markdown_warnings(issue, path, self.vocabulary), *image_warnings(issue, path)]
        return CheckedIssue(path, issue, edition, problems, warnings)

    @cached_property
    def web_renderer(self) -> WebRenderer:
        """The archive theme, loaded the first time a web version is wanted."""
        return WebRenderer(self.settings, self.vocabulary)

    def render_to(
        self, slug: str, out_dir: Path, force: bool = False, email_files: EmailFiles | None = None
    ) -> CheckedIssue:
        """Write the email, `web.html` (the archive's web version) and the issue's picture files into
        `out_dir`; refuse if the lint fails, unless forced.

        `email_files` makes the email as one reader gets it (delivery's `copies.render_copy` passes
        one: `email.html`, `email.txt` and `email.eml`, personal links filled in); without it the
        edition is written as rendered, its personal links still placeholders."""
        checked = self.check(slug)
        if checked.problems and not force:
            raise ProblemsFound(checked.problems)
        web = self.web_renderer.standalone(checked.issue)
        if email_files is None:
            write_edition(checked.edition, out_dir)
        else:
            write_email_files(email_files(checked), out_dir)
        (out_dir / "web.html").write_text(web, encoding="utf-8", newline="")
        copy_pictures(checked.issue, checked.path.parent, out_dir)
        write_calendars(checked.issue, self.settings, out_dir)
        return checked


# One reader's email as files, name -> content (`email.html` left out for a reader of plain text).
EmailFiles = Callable[[CheckedIssue], dict[str, bytes]]
EMAIL_FILES = ("email.html", "email.txt", "email.eml")


def write_email_files(files: dict[str, bytes], out_dir: Path) -> None:
    """Write one reader's email files; remove those of an earlier render this reader does not get (the
    HTML of someone else's copy beside a plain-text reader's would show what they never see)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in EMAIL_FILES:
        target = out_dir / name
        if name in files:
            target.write_bytes(files[name])
        else:
            target.unlink(missing_ok=True)


def copy_pictures(issue: Issue, issue_dir: Path, out_dir: Path) -> list[Path]:
    """Copy the issue's picture files into `out_dir`, at the same place as in the issue's folder: the
    email links to them at `BASE_URL/archive/<slug>/<src>`, where the archive publishes them."""
    copied = []
    for image in images.local_pictures(issue):
        source, target = issue_dir / image.src, out_dir / image.src
        if target.exists() and target.samefile(source):  # rendered into the issue's own folder
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        except OSError as error:
            raise UserError(
                f"{display_path(target)}: cannot copy the picture here: {error.strerror}"
            ) from None
        copied.append(target)
    return copied


def write_edition(edition: Edition, out_dir: Path) -> list[Path]:
    """Write an edition's `email.html` and `email.txt` into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in (("email.html", edition.html), ("email.txt", edition.text)):
        target = out_dir / name
        target.write_text(content, encoding="utf-8", newline="")
        written.append(target)
    return written
