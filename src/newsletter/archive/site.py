"""The archive as (path -> content): the one piece the static build and the web app both use.

`ArchiveSite` knows every page's path (`archive/2023-10/index.html`,
`archive/places/gwent/index.html`, `archive/feed.xml`...) and renders each on
demand, once. `build.py` writes them all to files; the Flask blueprint serves
them one at a time. Same code and templates, so the same bytes.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.archive import feeds, search
from newsletter.archive.collect import Collection, collect
from newsletter.archive.contributors import CONTRIBUTORS_PATH, contributor_path, contributors
from newsletter.content import images
from newsletter.content.model import Event, Issue, PlaceUpdate, Publication
from newsletter.errors import UserError, display_path
from newsletter.render.events import CALENDAR_TYPE, EventFormat, calendar_files
from newsletter.render.web import (
    WebIssue,
    WebItem,
    WebRenderer,
    WebSection,
    issue_path,
    place_path,
    region_path,
    relative_link,
    slugify,
    topic_path,
)
from newsletter.settings import Settings
from newsletter.vocabulary import Vocabulary

HTML = "text/html; charset=utf-8"
ASSETS = {
    "archive.css": "text/css; charset=utf-8",
    "search.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
# Folder and file names the archive uses itself; an issue slug may not take one.
RESERVED = {"assets", "topics", "places", "regions", "publications", "search", "feed.xml", "sitemap.xml"}
RESERVED.add("events")  # the events page
RESERVED.add("contributors")  # the member organisations credited, and what each shared
# Paths the archive's pages link to beyond `render/web.py`'s: with `contributor_path`, each "Shared by"
# links to its organisation's page (`web.html`, read outside the archive, names the organisation alone).
ARCHIVE_LINKS = {"contributor_path": contributor_path}


@dataclass(frozen=True)
class Entry:
    """One item where it was published: the issue, its section, the item and its anchor."""

    web: WebIssue
    section: WebSection
    item: WebItem

    @property
    def issue(self) -> Issue:
        return self.web.issue

    @property
    def href(self) -> str:
        return f"{issue_path(self.issue.slug)}#{self.item.anchor}"


@dataclass
class Place:
    """A place across issues: every update about it (newest first) and other items naming it."""

    slug: str
    name: str
    region: str
    kind: str | None
    updates: list[Entry] = field(default_factory=list)
    mentions: list[Entry] = field(default_factory=list)


@dataclass
class PublicationRecord:
    """A publication, announced in one or more issues (a report reappears under "Previous")."""

    latest: Publication
    announced: list[Entry] = field(default_factory=list)


@dataclass(frozen=True)
class Page:
    content_type: str
    render: Callable[[], bytes]


class ArchiveSite:
    """Every page of the archive for one set of published issues; pages render once, when asked."""

    def __init__(
        self, settings: Settings, vocabulary: Vocabulary, collection: Collection, today: dt.date | None = None
    ) -> None:
        self.settings = settings
        self.vocabulary = vocabulary
        self.collection = collection
        self.web = WebRenderer(settings, vocabulary)
        self.event_format = EventFormat(settings)
        self.today = today  # which events are upcoming: the network's today (`archive_day`) unless given
        for issue in collection.issues:
            if issue.slug in RESERVED:
                raise UserError(
                    f"issues/{issue.slug}: the slug '{issue.slug}' is taken by the archive's own pages; "
                    "rename the folder"
                )
        self.issues = [WebIssue.from_issue(issue) for issue in collection.issues]  # newest first
        self.entries = [
            Entry(web, section, item)
            for web in self.issues
            for section in web.sections
            for item in section.items
        ]
        self.topics = self._by_topic()
        self.places = self._places()
        self.publications = self._publications()
        self.contributors = contributors(self.entries)
        self.pages: dict[str, Page] = {}
        self._rendered: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._add_pages()

    # --- what the pages list ---------------------------------------------------------------

    def _by_topic(self) -> dict[str, list[Entry]]:
        found: dict[str, list[Entry]] = defaultdict(list)
        for entry in self.entries:
            for topic in entry.item.topics:
                found[topic].append(entry)
        return {topic: found[topic] for topic in self.vocabulary.topics if topic in found}

    def _places(self) -> dict[str, Place]:
        places: dict[str, Place] = {}
        for entry in self.entries:
            update = entry.item.item
            if isinstance(update, PlaceUpdate):
                slug = slugify(update.place)
                # Entries run newest first: the first spelling, region and kind seen are the latest.
                place = places.setdefault(slug, Place(slug, update.place, update.region, update.kind))
                place.updates.append(entry)
        if places:
            names = sorted({place.name for place in places.values()}, key=len, reverse=True)
            pattern = re.compile(r"\b(" + "|".join(re.escape(name) for name in names) + r")\b")
            by_name = {place.name: place for place in places.values()}
            for entry in self.entries:
                own = slugify(entry.item.title) if entry.item.kind == "place" else None
                text = " ".join((entry.item.title, *entry.item.sources))
                for name in dict.fromkeys(pattern.findall(text)):
                    place = by_name[name]
                    if place.slug != own:
                        place.mentions.append(entry)
        return dict(sorted(places.items(), key=lambda pair: pair[1].name.casefold()))

    def _publications(self) -> list[PublicationRecord]:
        records: dict[str, PublicationRecord] = {}
        for entry in self.entries:
            publication = entry.item.item
            if isinstance(publication, Publication):
                record = records.setdefault(publication.url, PublicationRecord(publication))
                record.announced.append(entry)
        return sorted(records.values(), key=lambda r: (r.latest.date, r.latest.title), reverse=True)

    def events(self) -> tuple[list[Entry], list[Entry]]:
        """(upcoming, past): every event once (one announced again is listed from its latest issue),
        each list starting nearest today: upcoming soonest first, past the most recent first.
        An event is upcoming until the end of its last day in the network's time zone."""
        latest: dict[tuple[str, dt.datetime], Entry] = {}
        for entry in self.entries:  # newest issue first
            event = entry.item.item
            if isinstance(event, Event):
                latest.setdefault((event.url, event.start), entry)
        if not latest:
            return [], []
        today = self.today or archive_day(self.settings)

        def start(entry: Entry) -> tuple[dt.datetime, str]:
            return entry.item.item.start, entry.item.title  # type: ignore[attr-defined]

        def upcoming(entry: Entry) -> bool:
            event: Event = entry.item.item  # type: ignore[assignment]
            return (event.end or event.start).date() >= today

        return (
            sorted((entry for entry in latest.values() if upcoming(entry)), key=start),
            sorted((entry for entry in latest.values() if not upcoming(entry)), key=start, reverse=True),
        )

    def regions(self) -> dict[str, list[Place]]:
        """Places by region, in the order of `regions.yaml`; a place filed under two regions over
        the years is listed under both, so every region an issue page links to has its page."""
        grouped: dict[str, list[Place]] = defaultdict(list)
        for place in self.places.values():
            for region in dict.fromkeys(entry.item.item.region for entry in place.updates):  # type: ignore[attr-defined]
                grouped[region].append(place)
        return {region: grouped[region] for region in self.vocabulary.regions if region in grouped}

    # --- pages -----------------------------------------------------------------------------

    def _add_pages(self) -> None:
        self._html("archive/index.html", "index.html.j2", years=self._years())
        for position, web in enumerate(self.issues):
            self._issue(web, position)
        self._html("archive/topics/index.html", "topics.html.j2", listed=self.topics)
        for topic, entries in self.topics.items():
            self._html(f"{topic_path(topic)}index.html", "topic.html.j2", topic=topic, entries=entries)
        regions = self.regions()
        self._html("archive/places/index.html", "places.html.j2", by_region=regions)
        for place in self.places.values():
            self._html(f"{place_path(place.name)}index.html", "place.html.j2", place=place)
        for region, places in regions.items():
            entries = [
                entry
                for entry in self.entries  # newest first, in each issue in the order it was written
                if isinstance(entry.item.item, PlaceUpdate) and entry.item.item.region == region
            ]
            self._html(
                f"{region_path(region)}index.html",
                "region.html.j2",
                region=region,
                places=places,
                entries=entries,
            )
        self._html("archive/publications/index.html", "publications.html.j2", records=self.publications)
        upcoming, past = self.events()
        self._html("archive/events/index.html", "events.html.j2", upcoming=upcoming, past=past)
        self._html(f"{CONTRIBUTORS_PATH}index.html", "contributors.html.j2", listed=self.contributors)
        for contributor in self.contributors:
            self._html(f"{contributor.path}index.html", "contributor.html.j2", contributor=contributor)
        for web in self.issues:
            self._calendars(web.issue)
        self._html("archive/search/index.html", "search.html.j2")
        self._add(
            "archive/search.json", "application/json", lambda: search.index(self.issues, self.vocabulary)
        )
        feed_context = (self.settings, self.issues)
        self._add("archive/feed.xml", "application/atom+xml", lambda: feeds.atom(*feed_context))
        self._add("archive/sitemap.xml", "application/xml", lambda: feeds.sitemap(self.settings, self))
        for name, content_type in ASSETS.items():
            self._add(f"archive/assets/{name}", content_type, self._asset(name))
        for web in self.issues:
            self._images(web.issue)

    def _years(self) -> list[tuple[int, list[WebIssue]]]:
        return [
            (year, list(group)) for year, group in itertools.groupby(self.issues, lambda w: w.issue.date.year)
        ]

    def _issue(self, web: WebIssue, position: int) -> None:
        newer = self.issues[position - 1] if position > 0 else None
        older = self.issues[position + 1] if position + 1 < len(self.issues) else None
        path = f"{issue_path(web.issue.slug)}index.html"
        link = relative_link(path)

        def render() -> bytes:
            extra = {"previous": older, "following": newer, **ARCHIVE_LINKS}
            return self.web.issue_page(web, link, extra).encode("utf-8")

        self._add(path, HTML, render)

    def _html(self, path: str, template: str, **context: object) -> None:
        def render() -> bytes:
            link = relative_link(path)
            return self.web.page(template, path, link, site=self, **ARCHIVE_LINKS, **context).encode("utf-8")

        self._add(path, HTML, render)

    def _asset(self, name: str) -> Callable[[], bytes]:
        path = self.web.folder / name
        return lambda: _read_bytes(path)

    def _images(self, issue: Issue) -> None:
        """The issue's picture files, at the address its email links to (`archive/<slug>/<src>`, see
        `Renderer.image_url`), sent as the kind the file holds."""
        folder = self.collection.folders.get(issue.slug)
        if folder is None:
            return
        for image in images.local_pictures(issue):
            file = folder / image.src
            try:
                content_type = images.inspect(file).content_type
            except OSError as error:
                raise UserError(f"{display_path(file)}: cannot be read: {error.strerror}") from None
            self._add(
                f"{issue_path(issue.slug)}{image.src}", content_type, lambda file=file: _read_bytes(file)
            )

    def _calendars(self, issue: Issue) -> None:
        """Each event's .ics beside its issue (`archive/<slug>/events/<title>.ics`), where the email,
        the web version and the events page link to it."""
        for event, file in calendar_files(issue).items():
            self._add(
                f"{issue_path(issue.slug)}{file}",
                CALENDAR_TYPE,
                lambda event=event: self.event_format.calendar(event, issue),
            )

    def _add(self, path: str, content_type: str, render: Callable[[], bytes]) -> None:
        self.pages[path] = Page(content_type, render)

    # --- reading ---------------------------------------------------------------------------

    def render(self, path: str) -> bytes:
        """The bytes of the page at `path` (a key of `pages`), rendered on first use."""
        with self._lock:
            if path not in self._rendered:
                self._rendered[path] = self.pages[path].render()
            return self._rendered[path]

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        for path in self.pages:
            yield path, self.render(path)

    @property
    def updated(self) -> dt.date | None:
        return self.issues[0].issue.date if self.issues else None


def load_site(settings: Settings, sent: dict[str, str] | None = None) -> ArchiveSite:
    """Read the vocabulary and the published issues and lay out the whole archive."""
    vocabulary = Vocabulary.load(settings.vocabulary_dir)
    return ArchiveSite(settings, vocabulary, collect(settings, vocabulary, sent))


def archive_day(settings: Settings) -> dt.date:
    """Today in the network's time zone: the events page's line between upcoming and past. The web app
    lays the archive out again when it changes (`web/archive.py`), so the line moves at midnight."""
    try:
        zone: dt.tzinfo = EventFormat(settings).zone
    except UserError:  # an unknown zone is reported where an event's time is shown, with the setting's name
        zone = dt.UTC
    return dt.datetime.now(zone).date()


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise UserError(f"{display_path(path)}: cannot be read: {error.strerror}") from None
