"""Pre-send checks on a rendered edition: what mail clients and inbox providers punish.

Validation (content/) proves the issue file is well formed; the lint looks at
what subscribers will actually receive: size, alt text, links, preheader,
subject length and the unsubscribe link. Each problem points at the line of
the issue file that caused it when it can find one, else at the theme.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from newsletter.errors import Problem, display_path
from newsletter.render.edition import Edition
from newsletter.render.placeholders import UNSUBSCRIBE_URL, is_placeholder

GMAIL_CLIP_BYTES = 102 * 1024
MAX_SUBJECT = 78
ALLOWED_LINK_SCHEMES = ("https://", "mailto:")


def lint(edition: Edition, issue_path: Path, theme_dir: Path) -> list[Problem]:
    """Every problem with `edition`, in the order an editor would fix them."""
    source = _SourceLines(issue_path)
    theme = display_path(theme_dir / "email")
    problems: list[Problem] = []
    issue = edition.issue

    if len(edition.subject) > MAX_SUBJECT:
        problems.append(
            source.problem(
                "subject",
                f"is {len(edition.subject)} characters; inboxes cut "
                f"subjects after about {MAX_SUBJECT}, so shorten it",
            )
        )
    page = _Elements()
    page.feed(edition.html)
    if not edition.preheader.strip() or " ".join(edition.preheader.split()) not in page.text():
        problems.append(
            source.problem("preheader", "is missing from the email; inboxes show it next to the subject")
        )
    if edition.html_bytes > GMAIL_CLIP_BYTES:
        problems.append(
            source.problem(
                "",
                f"the email's HTML is {edition.html_bytes / 1024:.1f} KB; Gmail clips everything after "
                f"{GMAIL_CLIP_BYTES // 1024} KB, so shorten items or move detail behind 'read more' links",
            )
        )

    for src, alt in page.images:
        if not (alt or "").strip():
            problems.append(
                source.problem(
                    "image", f"'{src}' has no alt text; describe the picture", near=src, fallback=theme
                )
            )
    for href in page.links:
        if is_placeholder(href) or href.startswith(ALLOWED_LINK_SCHEMES):
            continue
        shown = href or "(empty)"
        problems.append(
            source.problem("link", f"'{shown}' is not an https:// address", near=href, fallback=theme)
        )
    for name, hrefs in same_name_different_addresses(page.named_links):
        problems.append(
            source.problem(
                "link",
                f"the link text '{name}' leads to {len(hrefs)} different addresses ({', '.join(hrefs)}); "
                "screen readers list links by their text, so make each one say where it goes",
                near=hrefs[1],
                fallback=theme,
            )
        )

    if UNSUBSCRIBE_URL not in edition.html:
        problems.append(
            Problem(
                theme,
                None,
                "theme",
                'the email has no unsubscribe link; add <a href="{{ links.unsubscribe }}"> to the footer',
            )
        )
    if UNSUBSCRIBE_URL not in edition.text:
        problems.append(
            Problem(
                display_path(theme_dir / "text"),
                None,
                "theme",
                "the text part has no unsubscribe link; add {{ links.unsubscribe }} to the footer",
            )
        )
    if f'lang="{issue.language}"' not in edition.html[:500]:
        problems.append(
            Problem(
                theme, None, "theme", f'the email does not declare its language (lang="{issue.language}")'
            )
        )
    return problems


class _SourceLines:
    """Finds the issue-file line a rendered value came from, by searching the file's text."""

    def __init__(self, path: Path) -> None:
        self.file = display_path(path)
        try:
            self.lines = path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError):
            self.lines = []

    def problem(
        self, where: str, message: str, near: str | None = None, fallback: str | None = None
    ) -> Problem:
        line = self._find(near) if near else self._find(f"{where}:") if where else None
        if near and line is None and fallback:
            return Problem(fallback, None, where, message)
        return Problem(self.file, line, where, message)

    def _find(self, text: str) -> int | None:
        """The first line holding `text` as a whole (not as the start of a longer address), else the
        first line holding it at all."""
        whole = re.compile(re.escape(text) + r"(?![\w/.~%?#=&+-])")
        for number, line in enumerate(self.lines, start=1):
            if whole.search(line):
                return number
        for number, line in enumerate(self.lines, start=1):
            if text in line:
                return number
        return None


def same_name_different_addresses(links: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """Each link name (case and spacing aside) given to more than one address, with those addresses
    in the order they appear: a list of links read out of context cannot tell such links apart."""
    names: dict[str, str] = {}
    addresses: dict[str, list[str]] = {}
    for name, href in links:
        key = " ".join(name.split()).casefold()
        if not key:
            continue
        names.setdefault(key, " ".join(name.split()))
        seen = addresses.setdefault(key, [])
        if href not in seen:
            seen.append(href)
    return [(names[key], hrefs) for key, hrefs in addresses.items() if len(hrefs) > 1]


class _Elements(HTMLParser):
    """Collects every <img> (src, alt), every <a href> with its accessible name, and the text of the
    rendered HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[tuple[str, str | None]] = []
        self.links: list[str] = []
        self.named_links: list[tuple[str, str]] = []  # (name, href): aria-label, else the link's text
        self.texts: list[str] = []
        self._link: tuple[str, str | None, list[str]] | None = None  # the open <a>: href, label, text

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if self._link is not None:
            self._link[2].append(data)

    def text(self) -> str:
        """The page's text with entities decoded and whitespace runs made single spaces."""
        return " ".join("".join(self.texts).split())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append((values.get("src") or "", values.get("alt")))
            if self._link is not None:
                self._link[2].append(values.get("alt") or "")
        elif tag == "a" and "href" in values:
            self._close_link()
            href = (values["href"] or "").strip()
            self.links.append(href)
            self._link = (href, values.get("aria-label"), [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._close_link()

    def _close_link(self) -> None:
        if self._link is not None:
            href, label, text = self._link
            self.named_links.append(((label or "").strip() or "".join(text), href))
            self._link = None
