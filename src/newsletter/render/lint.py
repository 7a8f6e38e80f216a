"""Pre-send checks on a rendered edition: what mail clients and inbox providers punish.

Validation (content/) proves the issue file is well formed; the lint looks at
what subscribers will actually receive: size, alt text, image and link
addresses, preheader, subject length and the unsubscribe link. Each problem
points at the line of the issue file that caused it when it can find one,
else at the theme.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from newsletter.errors import Problem, UserError, display_path
from newsletter.render.edition import Edition
from newsletter.render.markdown import to_html
from newsletter.render.placeholders import UNSUBSCRIBE_URL, is_placeholder
from newsletter.yamlfile import YamlDocument, load_yaml

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
        if not src.startswith("https://"):
            problems.append(source.problem("image", _insecure_image(src), near=src, fallback=theme))
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


def _insecure_image(src: str) -> str:
    if src.startswith("http://"):
        return (
            f"'{src}' is not an https:// address; mail clients block or flag http:// pictures, "
            "and anyone on the way sees who opens the email"
        )
    shown = src or "(empty)"
    return (
        f"'{shown}' is not an https:// address, so the picture will not show; give its full https:// address"
    )


def _plain(text: str) -> str:
    """An address as a browser reads it: HTML entities and %-escapes decoded (`&#x09;`, `%09` -> tab).

    Markdown decodes entities and %-encodes what an address cannot hold, so the rendered `src` or
    `href` and what the editor wrote compare equal once both are read this way."""
    return unquote(html.unescape(text))


class _SourceLines:
    """Finds the issue-file line a rendered value came from.

    An image or link address is looked for first in the Markdown that renders it (the field whose
    HTML holds it, then the line of that field that holds it), so an address that also appears
    earlier, or as a few characters of a title, is not mistaken for it. Anything else, or an address
    that no Markdown renders (the theme's links from `url:` fields), is found by searching the text.
    """

    def __init__(self, path: Path) -> None:
        self.file = display_path(path)
        self.path = path
        try:
            self.lines = path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError):
            self.lines = []
        self._document: YamlDocument | None = None

    def problem(
        self, where: str, message: str, near: str | None = None, fallback: str | None = None
    ) -> Problem:
        if near is None:
            return Problem(self.file, self._find(f"{where}:") if where else None, where, message)
        line = self._in_markdown(near)
        if line is None and near:
            line = self._find(near)
        if line is None and fallback:
            return Problem(fallback, None, where, message)
        return Problem(self.file, line, where, message)

    def _find(self, text: str, start: int = 1, end: int | None = None) -> int | None:
        """The first line (of lines `start` to `end`) holding `text` as a whole (not as the start of a
        longer address), else the first holding it at all; both read with entities and %-escapes
        decoded."""
        text = _plain(text)
        numbered = [
            (number, _plain(line)) for number, line in enumerate(self.lines[start - 1 : end], start=start)
        ]
        whole = re.compile(re.escape(text) + r"(?![\w/.~%?#=&+-])")
        for number, line in numbered:
            if whole.search(line):
                return number
        for number, line in numbered:
            if text in line:
                return number
        return None

    def _in_markdown(self, address: str) -> int | None:
        """The line of the Markdown whose HTML has an image or link to `address`: the line of the
        field's text holding it, else the field's own line."""
        document = self._load()
        if document is None:
            return None
        for path, text in _strings(document.data, ()):
            page = _Elements()
            page.feed(to_html(text))
            if address not in page.links and address not in (src for src, _alt in page.images):
                continue
            first = document.line_of(path) or 1
            # The text starts on the field's line (or the next, for a block written with `|`).
            last = first + text.count("\n") + 2
            # An empty address is written `![alt]()` or `src=""`; any other is looked for itself.
            written = (address,) if address else ("]()", '=""', "=''")
            found = (self._find(form, first, last) for form in written)
            return next((line for line in found if line is not None), first)
        return None

    def _load(self) -> YamlDocument | None:
        if self._document is None:
            try:
                self._document = load_yaml(self.path)
            except UserError:
                return None
        return self._document


def _strings(data: Any, path: tuple) -> Iterator[tuple[tuple, str]]:
    """Every text in the YAML data with its path, in the file's order."""
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _strings(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _strings(value, (*path, index))


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
