"""Events as readers see them: when (in the network's time zone), where, and their calendar files.

An issue file's times are wall-clock times in the network's zone (the
`timezone` setting, Europe/London by default). Readers see them with the
zone's own abbreviation for that date, `Wednesday 25 January 2023,
14:00–15:30 GMT` or `... BST` in summer: "UK time" would not say which one, and
a reader abroad can convert an abbreviation. A zone whose abbreviation is only
an offset (`+03`) is shown as `UTC+03:00`.

Every event gets an `.ics` file, published in the archive beside its issue
(`archive/<slug>/events/<title>.ics`) and written by `newsletter render`
beside `email.html` (`events/<title>.ics`); the email, the web version and the
text part link to it at the archive's public address. The name is the
event's title as a slug (numbered if two events share one), so the file and
its UID stay the same when events are added or reordered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsletter.content.model import Event, Events, Issue
from newsletter.errors import UserError
from newsletter.render import markdown
from newsletter.render.calendar import CalendarEvent, ics
from newsletter.settings import Settings

EVENTS_FOLDER = "events"
CALENDAR_TYPE = "text/calendar; charset=utf-8"


def network_zone(name: str) -> ZoneInfo:
    """The `timezone` setting as a zone, or one clear message naming the setting."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"timezone '{name}' is not a known time zone (such as Europe/London)") from None


def events_of(issue: Issue) -> list[Event]:
    """Every event in the issue, in the order written."""
    return [event for section in issue.sections if isinstance(section, Events) for event in section.items]


def is_whole_day(event: Event) -> bool:
    """An event written with dates only (`start: 2023-10-05`) lasts whole days and shows no times."""
    return event.start.time() == dt.time() and (event.end is None or event.end.time() == dt.time())


def where(event: Event) -> str:
    """`Birmingham`, `Online`, or `Birmingham and online`."""
    if event.location and event.online:
        return f"{event.location} and online"
    return event.location or "Online"


def calendar_files(issue: Issue) -> dict[Event, str]:
    """Each event's calendar file, relative to the issue's folder (`events/launch-webinar.ics`)."""
    from newsletter.render.web import slugify  # web.py imports edition.py, which imports this module

    names: dict[Event, str] = {}
    taken: set[str] = set()
    for event in events_of(issue):
        if event in names:  # the same event twice in one issue: one file
            continue
        base = slugify(event.title)
        name, number = base, 1
        while name in taken:
            number += 1
            name = f"{base}-{number}"
        taken.add(name)
        names[event] = f"{EVENTS_FOLDER}/{name}.ics"
    return names


def calendar_path(issue: Issue, event: Event) -> str:
    """The event's .ics as a site path (`archive/2023-01/events/launch-webinar.ics`)."""
    from newsletter.render.web import issue_path  # see calendar_files

    return issue_path(issue.slug) + calendar_files(issue)[event]


class EventFormat:
    """Events shown with the network's zone and address: the template filters, and the .ics files."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def zone(self) -> ZoneInfo:
        """Read when first needed, so an issue with no events renders whatever the setting says."""
        return network_zone(self.settings.timezone)

    def filters(self) -> dict[str, Callable[..., str]]:
        """What the email, text and archive templates call: `event | event_when`, `... | calendar_url(issue)`."""
        return {
            "event_when": self.when,
            "event_where": where,
            "event_iso": self.iso,
            "calendar_url": self.calendar_url,
        }

    def zone_name(self, moment: dt.datetime) -> str:
        """`GMT` or `BST` for Europe/London, as the clocks are on that day; `UTC+03:00` for an offset."""
        local = moment.replace(tzinfo=self.zone)
        name = local.tzname() or ""
        if name.isalpha():
            return name
        offset = local.utcoffset() or dt.timedelta()
        hours, minutes = divmod(int(abs(offset.total_seconds())) // 60, 60)
        return f"UTC{'-' if offset < dt.timedelta() else '+'}{hours:02d}:{minutes:02d}"

    def when(self, event: Event) -> str:
        """`Wednesday 25 January 2023, 14:00–15:30 GMT`; days alone for a whole-day event."""
        start, end = event.start, event.end
        if is_whole_day(event):
            if end is None or end.date() == start.date():
                return _day(start)
            return f"{_day(start)} – {_day(end)}"
        start_zone = self.zone_name(start)
        if end is None:
            return f"{_day(start)}, {start:%H:%M} {start_zone}"
        end_zone = self.zone_name(end)
        if end.date() == start.date():
            if end_zone == start_zone:
                return f"{_day(start)}, {start:%H:%M}–{end:%H:%M} {end_zone}"
            return f"{_day(start)}, {start:%H:%M} {start_zone} – {end:%H:%M} {end_zone}"
        first = f"{start:%H:%M}" if end_zone == start_zone else f"{start:%H:%M} {start_zone}"
        return f"{_day(start)}, {first} – {_day(end)}, {end:%H:%M} {end_zone}"

    def iso(self, event: Event) -> str:
        """For `<time datetime>`: the start with the zone's offset then (`2023-01-25T14:00+00:00`), or
        the day alone for a whole-day event (`2099-06-01`)."""
        if is_whole_day(event):
            return event.start.date().isoformat()
        return event.start.replace(tzinfo=self.zone).isoformat(timespec="minutes")

    def calendar_url(self, event: Event, issue: Issue) -> str:
        """The event's .ics at the archive's public address, for the email and the text part."""
        return f"{self.settings.base_url.rstrip('/')}/{quote(calendar_path(issue, event))}"

    def calendar(self, event: Event, issue: Issue) -> bytes:
        """The event's .ics file (see `render/calendar.py`)."""
        host = urlsplit(self.settings.base_url).hostname or "newsletter.invalid"
        name = calendar_files(issue)[event].removeprefix(f"{EVENTS_FOLDER}/").removesuffix(".ics")
        entry = CalendarEvent(
            uid=f"{issue.slug}-{name}@{host}",
            # The issue's date, not the time of the build: the same issue gives the same bytes.
            stamp=dt.datetime.combine(issue.date, dt.time(), tzinfo=dt.UTC),
            start=event.start,
            end=event.end,
            whole_day=is_whole_day(event),
            title=event.title,
            location=self._calendar_location(event),
            description=self._description(event),
            url=event.url,
        )
        return ics(entry, self.zone, f"-//{self.settings.network_name}//newsletter//EN")

    def issue_calendars(self, issue: Issue) -> dict[str, bytes]:
        """Every event's .ics by its path in the issue's folder (`events/launch-webinar.ics`)."""
        return {path: self.calendar(event, issue) for event, path in calendar_files(issue).items()}

    @staticmethod
    def _calendar_location(event: Event) -> str:
        """Where, for a calendar: online events name the link to join by, which calendars make clickable."""
        if not event.online:
            return event.location or ""
        link = event.register or event.url
        return f"{event.location} and online: {link}" if event.location else f"Online: {link}"

    @staticmethod
    def _description(event: Event) -> str:
        # Paragraphs unwrapped: a calendar wraps the description to its own window.
        parts = [markdown.to_text(event.summary, width=10_000)] if event.summary else []
        if event.speakers:
            speakers = [f"- {s.name}, {s.role}" if s.role else f"- {s.name}" for s in event.speakers]
            parts.append("\n".join(["Speakers:", *speakers]))
        links = [f"Register: {event.register}"] if event.register else []
        parts.append("\n".join([*links, f"Details: {event.url}"]))
        return "\n\n".join(parts)


def write_calendars(issue: Issue, settings: Settings, out_dir: Path) -> list[Path]:
    """`newsletter render`: each event's .ics beside `email.html`, laid out as in the archive's issue
    folder (`events/launch-webinar.ics`), so the add-to-calendar file can be tried before sending."""
    written = []
    for path, content in EventFormat(settings).issue_calendars(issue).items():
        target = out_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        written.append(target)
    return written


def _day(moment: dt.datetime) -> str:
    """`Wednesday 25 January 2023`."""
    return f"{moment:%A} {moment.day} {moment:%B %Y}"
