"""Issue -> the web version: semantic HTML from the same typed sections and Markdown as the email.

The email is built from layout tables for mail clients; a browser deserves
landmarks, headings and lists, so the web version has its own templates
(`templates/archive/`) fed the same `Issue` and the same sanitised Markdown
(`render/markdown.py`). It carries no personal data and no `%%...%%`
placeholders: one page serves every recipient's "view in browser" link.

Every section and listed item gets a stable anchor, made once here, so the
issue page and the archive's topic and place pages point at the same place.
"""

from __future__ import annotations

import itertools
import posixpath
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from newsletter.content.model import (
    CallToAction,
    Collaborations,
    Contact,
    Events,
    Issue,
    Links,
    Places,
    Publications,
    Section,
    Story,
)
from newsletter.errors import UserError, display_path
from newsletter.render import markdown
from newsletter.render.edition import event_time, long_date
from newsletter.render.events import EventFormat, calendar_path
from newsletter.settings import BUNDLED_ROOT, Settings
from newsletter.vocabulary import Vocabulary

THEME_FOLDER = "archive"
ISSUE_TEMPLATE = "issue.html.j2"
STYLESHEET = "archive.css"
ANCHOR_LENGTH = 60
EXCERPT_LENGTH = 220
# What each kind of item is called in listings and search results.
KIND_LABELS = {
    "story": "Story",
    "publication": "Publication",
    "place": "Place update",
    "collaboration": "Collaboration",
    "event": "Event",
}


def slugify(text: str, limit: int = ANCHOR_LENGTH) -> str:
    """`Building a Fairer Gwent: improving…` -> `building-a-fairer-gwent-improving`: ASCII, cut at a word."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > limit:
        slug = slug[:limit].rsplit("-", 1)[0]
    return slug or "item"


@dataclass(frozen=True)
class WebItem:
    """One listed thing in an issue (a story, publication, place update...), with its anchor.

    `topics` includes its section's: a section tagged `housing` is about housing, every item in it too.
    """

    kind: str
    item: object
    anchor: str
    title: str
    topics: tuple[str, ...]
    sources: tuple[str, ...]  # the Markdown and text it says, for search and "also mentioned"

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]

    @property
    def body(self) -> str | None:
        """The item's main Markdown: a story's body, a publication's summary, a place's updates..."""
        for name in ("body", "summary", "updates"):
            if hasattr(self.item, name):
                return getattr(self.item, name)
        return None


@dataclass(frozen=True)
class WebSection:
    section: Section
    anchor: str
    heading: str | None
    items: tuple[WebItem, ...]

    @property
    def kind(self) -> str:
        return self.section.KIND


@dataclass(frozen=True)
class WebIssue:
    """An issue with the anchors of its sections and items, ready for the web templates."""

    issue: Issue
    sections: tuple[WebSection, ...]

    @property
    def items(self) -> list[WebItem]:
        return [item for section in self.sections for item in section.items]

    @classmethod
    def from_issue(cls, issue: Issue) -> WebIssue:
        anchors = _Anchors()
        sections = []
        for section in issue.sections:
            heading = _heading(section)
            anchor = anchors.take(heading or section.KIND, prefix="s-")
            sections.append(
                WebSection(section, anchor, heading, tuple(_items(section, anchors)) if heading else ())
            )
        return cls(issue, tuple(sections))


class _Anchors:
    """Ids unique within one page; a second `gwent` becomes `gwent-2`."""

    def __init__(self) -> None:
        self.used: set[str] = {"main", "top", "contents", "issue-title"}

    def take(self, text: str, prefix: str = "") -> str:
        """A new id, and its heading's id (`ID-h`) kept free too, as the templates use both."""
        base = prefix + slugify(text)
        anchor, number = base, 1
        while anchor in self.used or f"{anchor}-h" in self.used:
            number += 1
            anchor = f"{base}-{number}"
        self.used.update((anchor, f"{anchor}-h"))
        return anchor


def _heading(section: Section) -> str | None:
    if isinstance(section, Story):
        return section.title
    if isinstance(section, CallToAction):
        return None
    return section.heading


def _items(section: Section, anchors: _Anchors) -> list[WebItem]:
    def item(kind: str, thing: object, title: str, *sources: str | None) -> WebItem:
        topics = tuple(dict.fromkeys((*section.topics, *getattr(thing, "topics", ()))))
        found = (*sources, getattr(thing, "credit", None))  # the search finds an item by who shared it too
        return WebItem(kind, thing, anchors.take(title), title, topics, tuple(s for s in found if s))

    if isinstance(section, Story):
        return [item("story", section, section.title, section.label, section.body)]
    if isinstance(section, Publications):
        return [item("publication", p, p.title, p.summary, p.commissioner, *p.authors) for p in section.items]
    if isinstance(section, Places):
        return [item("place", p, p.place, p.kind, p.updates) for p in section.items]
    if isinstance(section, Collaborations):
        return [item("collaboration", c, c.title, c.body, *c.partners) for c in section.items]
    if isinstance(section, Events):
        return [item("event", e, e.title, e.location, e.summary) for e in section.items]
    assert isinstance(section, Links | Contact), section
    return []


Linker = Callable[[str], str]


def relative_link(page: str) -> Linker:
    """Links from the page at `page` (`archive/2023-10/index.html`) to other site paths, relative.

    Relative links keep the site working wherever it is served: at `/`, under
    a prefix, from the Flask app, or from the static files.
    """
    base = posixpath.dirname(page) or "."

    def link(target: str) -> str:
        path, _, anchor = target.partition("#")
        folder = path.endswith("/")
        relative = posixpath.relpath(path.rstrip("/") or ".", base)
        if folder:
            relative = "./" if relative == "." else relative + "/"
        return quote(relative) + (f"#{anchor}" if anchor else "")

    return link


def absolute_link(base_url: str) -> Linker:
    """Links to site paths at the public address, for a page read outside the site (web.html, feeds)."""
    root = base_url.rstrip("/")
    return lambda target: f"{root}/{quote(target)}"


def excerpt(item: WebItem, limit: int = EXCERPT_LENGTH) -> str:
    """The start of an item's text, as plain words cut at a word, for listings."""
    text = " ".join(markdown.to_text(item.body or "", width=10_000).split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:.") + "…"


def by_issue(entries: Iterable[Any]) -> list[tuple[WebIssue, list[Any]]]:
    """Consecutive entries of the same issue together, order kept: for lists grouped under issues."""
    return [(web, list(group)) for web, group in itertools.groupby(entries, key=lambda entry: entry.web)]


def issue_path(slug: str) -> str:
    """The issue page's folder: the permalink every email's "view in browser" link points at."""
    return f"archive/{slug}/"


def topic_path(topic: str) -> str:
    return f"archive/topics/{topic}/"


def place_path(place: str) -> str:
    return f"archive/places/{slugify(place)}/"


def region_path(region: str) -> str:
    return f"archive/regions/{region}/"


class WebRenderer:
    """The archive theme's templates, loaded once; renders the web version and every archive page."""

    def __init__(self, settings: Settings, vocabulary: Vocabulary) -> None:
        self.settings = settings
        self.vocabulary = vocabulary
        self.folder = settings.theme_dir / THEME_FOLDER
        if not self.folder.is_dir() and (BUNDLED_ROOT / "templates" / THEME_FOLDER).is_dir():
            # A project theme made before the archive existed still gets the bundled archive pages.
            self.folder = BUNDLED_ROOT / "templates" / THEME_FOLDER
        if not self.folder.is_dir():
            raise UserError(
                f"{display_path(self.folder)}: the theme has no '{THEME_FOLDER}' templates folder"
            )
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.folder),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            markdown=markdown.to_html,
            typographer=markdown.typographer,
            long_date=long_date,
            event_time=event_time,
            by_issue=by_issue,
            excerpt=excerpt,
        )
        self.env.filters.update(EventFormat(settings).filters())
        self.env.globals.update(
            network_name=settings.network_name,
            postal_address=settings.postal_address,
            topics=vocabulary.topics,
            regions=vocabulary.regions,
            topic_path=topic_path,
            place_path=place_path,
            region_path=region_path,
            issue_path=issue_path,
            calendar_path=calendar_path,
        )

    def page(self, template: str, page: str, link: Linker, **context: object) -> str:
        """Render one template as the page at site path `page`, its links made by `link`."""
        try:
            return self.env.get_template(template).render(page=page, link=link, **context)
        except jinja2.TemplateNotFound as error:
            raise UserError(f"{display_path(self.folder / str(error))}: template not found") from None
        except jinja2.TemplateSyntaxError as error:
            where = display_path(error.filename or self.folder / template)
            raise UserError(f"{where}:{error.lineno}: template error: {error.message}") from None
        except jinja2.UndefinedError as error:
            raise UserError(
                f"{display_path(self.folder / template)}: template uses something undefined: {error.message}"
            ) from None

    def issue_page(self, web_issue: WebIssue, link: Linker, extra: Mapping[str, object] | None = None) -> str:
        """The web version of one issue; `extra` adds the archive's neighbours (previous, next)."""
        slug = web_issue.issue.slug
        context = {"web": web_issue, "issue": web_issue.issue, "previous": None, "following": None}
        context.update(extra or {})
        return self.page(ISSUE_TEMPLATE, f"{issue_path(slug)}index.html", link, **context)

    def standalone(self, issue: Issue) -> str:
        """`web.html` for `newsletter render`: the issue page with its stylesheet inside, so it opens
        from disk, and links to the archive at the public address."""
        css = self.stylesheet()
        link = absolute_link(self.settings.base_url)
        return self.issue_page(WebIssue.from_issue(issue), link, {"inline_css": Markup(css)})

    def stylesheet(self) -> str:
        path = self.folder / STYLESHEET
        try:
            return path.read_text(encoding="utf-8")
        except OSError as error:
            raise UserError(
                f"{display_path(path)}: cannot read the archive stylesheet: {error.strerror}"
            ) from None
