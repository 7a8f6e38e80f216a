"""A small iCalendar (RFC 5545) writer: one event per file, for "Add to calendar" links.

No dependency: an add-to-calendar file is a dozen properties, and the rules
that matter are few and written here once: CRLF line endings, lines folded at
75 octets (never inside a UTF-8 character), TEXT values escaped (`\\`, `;`,
`,`, line breaks).

Times are written as the wall-clock time in the network's zone with its TZID
(`DTSTART;TZID=Europe/London:20230125T140000`), and the file carries a
VTIMEZONE for that zone, built from the zone database (`zoneinfo`) for the
years around the event: the time stays 14:00 London time even if the rules
for the clocks change later, and a calendar that knows the zone by name uses
its own copy. A whole-day event is written with dates (`VALUE=DATE`), which
belong to no zone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

LINE_OCTETS = 75
CRLF = "\r\n"
MINUTE = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class CalendarEvent:
    """What one VEVENT says; `start` and `end` are wall-clock times in the zone it is written with."""

    uid: str
    stamp: dt.datetime  # when the file's content was made, in UTC (DTSTAMP)
    start: dt.datetime
    end: dt.datetime | None
    whole_day: bool
    title: str
    location: str | None
    description: str
    url: str | None


def ics(event: CalendarEvent, zone: ZoneInfo, product: str) -> bytes:
    """The .ics file for `event`: a VCALENDAR holding the zone (for a timed event) and one VEVENT."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{product}", "CALSCALE:GREGORIAN", "METHOD:PUBLISH"]
    if not event.whole_day:
        lines += vtimezone(zone, event.start.year, (event.end or event.start).year)
    lines += ["BEGIN:VEVENT", f"UID:{escape(event.uid)}", f"DTSTAMP:{_utc(event.stamp)}"]
    if event.whole_day:
        last_day = (event.end or event.start).date()
        lines += [
            f"DTSTART;VALUE=DATE:{event.start:%Y%m%d}",
            f"DTEND;VALUE=DATE:{last_day + dt.timedelta(days=1):%Y%m%d}",  # DTEND is the day after
        ]
    else:
        tzid = _parameter(zone.key)
        lines.append(f"DTSTART;TZID={tzid}:{event.start:%Y%m%dT%H%M%S}")
        if event.end is not None:
            lines.append(f"DTEND;TZID={tzid}:{event.end:%Y%m%dT%H%M%S}")
    lines.append(f"SUMMARY:{escape(event.title)}")
    if event.location:
        lines.append(f"LOCATION:{escape(event.location)}")
    if event.description:
        lines.append(f"DESCRIPTION:{escape(event.description)}")
    if event.url:
        lines.append(f"URL:{event.url}")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "".join(fold(line) + CRLF for line in lines).encode("utf-8")


def escape(text: str) -> str:
    """A TEXT value: backslash, semicolon and comma escaped, line breaks as `\\n`, other controls dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(c for c in text if c in "\n\t" or c.isprintable())
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def fold(line: str) -> str:
    """One content line folded so no physical line exceeds 75 octets; each continuation starts with a space."""
    pieces: list[str] = []
    current, size = "", 0
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > LINE_OCTETS:
            pieces.append(current)
            current, size = " ", 1
        current += char
        size += width
    pieces.append(current)
    return CRLF.join(pieces)


def vtimezone(zone: ZoneInfo, first_year: int, last_year: int) -> list[str]:
    """A VTIMEZONE for `zone` covering `first_year`..`last_year`: what is in force when the range
    starts (from the year before), then each change of the clocks, as STANDARD or DAYLIGHT."""
    lines = ["BEGIN:VTIMEZONE", f"TZID:{zone.key}"]
    for kind, local_start, before, after, name in _observances(zone, first_year - 1, last_year):
        lines += [
            f"BEGIN:{kind}",
            f"DTSTART:{local_start:%Y%m%dT%H%M%S}",
            f"TZOFFSETFROM:{_offset(before)}",
            f"TZOFFSETTO:{_offset(after)}",
            f"TZNAME:{escape(name)}",
            f"END:{kind}",
        ]
    return [*lines, "END:VTIMEZONE"]


Observance = tuple[str, dt.datetime, dt.timedelta, dt.timedelta, str]


@lru_cache(maxsize=64)
def _observances(zone: ZoneInfo, first_year: int, last_year: int) -> list[Observance]:
    """(kind, local start, offset before, offset after, name) for the state at 1 January of
    `first_year` and for every change of offset until the end of `last_year`, found day by day."""
    moment = dt.datetime(first_year, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(last_year + 1, 1, 1, tzinfo=dt.UTC)
    state = _state(zone, moment)
    found = [_observance(moment, state, state)]
    while moment < end:
        following = moment + dt.timedelta(days=1)
        state_after = _state(zone, following)
        if state_after != state:
            change = _change(zone, moment, following, state)
            found.append(_observance(change, state, state_after))
            state = state_after
        moment = following
    return found


def _state(zone: ZoneInfo, moment: dt.datetime) -> tuple[dt.timedelta, dt.timedelta, str]:
    local = moment.astimezone(zone)
    return local.utcoffset() or dt.timedelta(), local.dst() or dt.timedelta(), local.tzname() or zone.key


def _change(zone: ZoneInfo, low: dt.datetime, high: dt.datetime, state: tuple) -> dt.datetime:
    """The first minute after `low` (in `state`) when the zone's state differs: a binary search."""
    while high - low > MINUTE:
        middle = low + (high - low) / 2
        middle = middle.replace(second=0, microsecond=0)
        if middle <= low:
            middle = low + MINUTE
        if _state(zone, middle) == state:
            low = middle
        else:
            high = middle
    return high


def _observance(moment: dt.datetime, before: tuple, after: tuple) -> Observance:
    kind = "DAYLIGHT" if after[1] else "STANDARD"
    local_start = (moment + before[0]).replace(tzinfo=None)  # RFC 5545: in the offset in force before
    return kind, local_start, before[0], after[0], after[2]


def _offset(offset: dt.timedelta) -> str:
    """`+0100`, `-0500`, `+0530` (seconds only when there are some, as the RFC allows)."""
    seconds = int(offset.total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours:02d}{minutes:02d}" + (f"{seconds:02d}" if seconds else "")


def _utc(moment: dt.datetime) -> str:
    return f"{moment.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"


def _parameter(value: str) -> str:
    """A parameter value, quoted if it holds a character that would end it (`:`, `;`, `,`)."""
    return f'"{value}"' if any(c in value for c in ":;,") else value
