"""Pre-send checks on a rendered edition: what mail clients and inbox providers punish.

Validation (content/) proves the issue file is well formed; the lint looks at
what subscribers will actually receive: size, alt text, image and link
addresses, preheader, subject length and the unsubscribe link. Each problem
points at the line of the issue file that caused it when it can find one,
else at the theme.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from newsletter.content import images
from newsletter.content.fields import Text
from newsletter.content.loader import Reader
from newsletter.content.model import Image, Issue
from newsletter.errors import Problem, UserError, display_path
from newsletter.render import markdown
from newsletter.render.edition import Edition
from newsletter.render.markdown import to_html
from newsletter.render.placeholders import UNSUBSCRIBE_URL, is_placeholder
from newsletter.vocabulary import Vocabulary
from newsletter.yamlfile import YamlDocument, dotted, load_yaml

GMAIL_CLIP_BYTES = 102 * 1024
MAX_SUBJECT = 78
ALLOWED_LINK_SCHEMES = ("https://", "mailto:")


def lint(edition: Edition, issue_path: Path, theme_dir: Path) -> list[Problem]:
    """Every problem with `edition`, in the order an editor would fix them."""
    source = _SourceLines(issue_path)
    theme = display_path(theme_dir / "email")
    problems: list[Problem] = []
    issue = edition.issue

    problems += _long_subject(edition.subject, source)
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


def markdown_warnings(issue: Issue, issue_path: Path, vocabulary: Vocabulary) -> list[Problem]:
    """What each Markdown field loses on its way to readers (a tag or attribute sanitising drops, a
    table too wide for a phone), at the line where it was written, with what to write instead.

    Warnings, not problems: the issue still sends as it would, but nothing the editor wrote is
    dropped without `newsletter check` saying so. Each names its field as validation does
    (`story.body`, `publications[2].summary`)."""
    source = _SourceLines(issue_path)
    document = source._load()
    where = Reader(document, vocabulary, issue_path.parent).where if document else dotted
    return [
        Problem(source.file, source.line_in_field(path, text, warning.near), where(path), warning.message)
        for path, text in _markdown_fields(issue, ())
        for warning in markdown.warnings(text)
    ]


def _markdown_fields(record: Any, path: tuple) -> Iterator[tuple[tuple, str]]:
    """Every Markdown field (those read with `fields.markdown()`, a multi-line `Text`) of an issue and
    what it holds, with its path in the file (`('sections', 0, 'body')`), in the file's order."""
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        rule = field.metadata.get("rule")
        if isinstance(value, str) and isinstance(rule, Text) and rule.multiline:
            yield (*path, field.name), value
        elif dataclasses.is_dataclass(value):
            yield from _markdown_fields(value, (*path, field.name))
        elif isinstance(value, tuple):
            for index, item in enumerate(value):
                if dataclasses.is_dataclass(item):
                    yield from _markdown_fields(item, (*path, field.name, index))


EMAIL_PICTURE_WIDTH = 552  # the theme's 600 px column less the picture's 24 px padding on each side
SHARP_WIDTH = 2 * EMAIL_PICTURE_WIDTH  # pixels enough for a sharp picture on a high-density screen
MAX_PICTURE_WIDTH = 2400  # wider is only weight: no reader sees the extra pixels
MAX_PICTURE_BYTES = 1_000_000  # over this a picture takes seconds on a phone's connection


def image_warnings(issue: Issue, issue_path: Path) -> list[Problem]:
    """Pictures that will be slow, blurred or not shown for some readers, at the line of their `src`.

    Warnings, not problems: the email still works. A file in the issue's folder is read (its bytes
    and its header's width); an address is judged by what it says, as nothing is fetched."""
    source = _SourceLines(issue_path)
    warnings = []
    for index, image in images.pictures(issue):
        path = ("sections", index, "image", "src")
        line = source.line_in_field(path, "", image.src)
        for message in _picture_advice(image, issue_path.parent):
            warnings.append(Problem(source.file, line, dotted(path), message))
    return warnings


def _picture_advice(image: Image, folder: Path) -> list[str]:
    if not images.is_local(image.src):
        kind = images.unshown_kind(image.src)
        if kind is None:
            return []
        return [
            f"'{image.src}' is named as {kind}, which many mail clients do not show; "
            f"use a {images.KINDS} picture"
        ]
    try:
        picture = images.inspect(folder / image.src)
    except OSError as error:
        return [f"'{image.src}' cannot be read: {error.strerror}"]
    advice = []
    if picture.size > MAX_PICTURE_BYTES:
        advice.append(
            f"'{image.src}' is {picture.size / 1_000_000:.1f} MB, seconds of waiting on a phone's "
            f"connection; save it smaller (a JPEG photo {SHARP_WIDTH:,} px wide is about 200 KB)"
        )
    if picture.width is None:
        advice.append(f"'{image.src}': its width cannot be read from the file; open it and save it again")
        return advice
    shown = min(image.width or EMAIL_PICTURE_WIDTH, EMAIL_PICTURE_WIDTH)
    if picture.width < shown:
        advice.append(
            f"'{image.src}' is {picture.width} px wide but shown {shown} px wide, so it looks blurred; "
            f"use a picture at least {shown} px wide, or 'width: {picture.width}'"
        )
    elif picture.width > MAX_PICTURE_WIDTH:
        advice.append(
            f"'{image.src}' is {picture.width:,} px wide; the email shows it at most "
            f"{EMAIL_PICTURE_WIDTH} px wide ({SHARP_WIDTH:,} px is sharp on any screen), "
            "so scale it down"
        )
    return advice


def lint_draft(issue_path: Path) -> list[Problem]:
    """The checks that need only the file, not a rendered email (a subject too long for inboxes): run
    when the issue does not load, so `check` reports them with the loader's problems in one pass."""
    source = _SourceLines(issue_path)
    document = source._load()
    data = document.data if document is not None else None
    subject = data.get("subject") if isinstance(data, dict) else None
    return _long_subject(subject.strip(), source) if isinstance(subject, str) else []


def _long_subject(subject: str, source: _SourceLines) -> list[Problem]:
    if len(subject) <= MAX_SUBJECT:
        return []
    return [
        source.problem(
            "subject",
            f"is {len(subject)} characters; inboxes cut subjects after about {MAX_SUBJECT}, so shorten it",
        )
    ]


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

    def line_in_field(self, path: tuple, text: str, near: str) -> int | None:
        """The line of the field at `path` (which holds `text`) where `near` is written, else the
        field's own line."""
        document = self._load()
        first = document.line_of(path) if document else None
        if first is None:
            return None
        # The text starts on the field's line (or the next, for a block written with `|`).
        return self._find(near, first, first + text.count("\n") + 2) or first

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


def named_links(html: str) -> list[tuple[str, str]]:
    """Every `<a href>` of `html` in order, as (its accessible name, the address)."""
    page = _Elements()
    page.feed(html)
    page.close()
    page._close_link()
    return page.named_links


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
