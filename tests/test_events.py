"""Events in full: times in the network's zone, online or a place, speakers, a Register button, and an
add-to-calendar .ics file that calendars read (parsed here with the `icalendar` package), published in
the archive at the address the email links to, and an events page of upcoming and past events."""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from icalendar import Calendar

from archive_support import settings_for, write
from newsletter.archive.build import build
from newsletter.archive.collect import collect
from newsletter.archive.site import ArchiveSite
from newsletter.content.loader import load_issue
from newsletter.editor import Editor
from newsletter.errors import ProblemsFound
from newsletter.vocabulary import Vocabulary
from newsletter.web.archive import archive_blueprint
from user_support import init_project, newsletter

LONDON = ZoneInfo("Europe/London")
BASE = "https://news.health-equity-network.example.org"
WEBINAR_ICS = "events/health-equity-network-launch-webinar.ics"
CONFERENCE_ICS = "events/growing-a-movement-for-health-equity-conference.ics"
DAY_ICS = "events/network-day-in-leeds.ics"

HEAD = """\
title: January 2023 Newsletter
date: 2023-01-10
subject: Launching the Health Equity Network
preheader: Join the launch webinar on 25 January
editor: Network team
archive: true
sections:
"""

EVENTS = (
    HEAD
    + """\
  - kind: events
    items:
      - title: Health Equity Network launch webinar
        start: 2023-01-25 14:00
        end: "15:30"
        online: yes
        url: https://www.instituteofhealthequity.example.org/network
        register: https://www.instituteofhealthequity.example.org/network/launch-webinar
        speakers:
          - name: Sir Michael Marmot
            role: Director, UCL Institute of Health Equity
          - name: <b>Professor</b> Bola Owolabi
        summary: |
          Why the network was set up, who it is for, and how to *share your work*.
      - title: "Growing a Movement for Health Equity: conference"
        start: 2023-10-05 10:00
        end: 2023-10-05 16:30
        location: Birmingham; Council House, Victoria Square
        url: https://www.instituteofhealthequity.example.org/conference
      - title: Network day in Leeds
        start: 2099-06-01
        location: Leeds
        url: https://www.instituteofhealthequity.example.org/network-day
"""
)


@pytest.fixture
def project(tmp_path: Path, repo_root: Path) -> Path:
    write(tmp_path, "2023-01", EVENTS)
    return tmp_path


@pytest.fixture
def rendered(project: Path, repo_root: Path, tmp_path: Path) -> Path:
    """`newsletter render 2023-01` as a library call: email.html, email.txt, web.html and events/."""
    out = tmp_path / "out"
    Editor(settings_for(project, repo_root)).render_to("2023-01", out)
    return out


def calendar_event(ics: bytes):
    calendar = Calendar.from_ical(ics)
    (event,) = calendar.walk("VEVENT")
    return calendar, event


# --- the .ics file --------------------------------------------------------------------------------


def test_a_winter_event_is_in_gmt_and_a_summer_one_in_bst(rendered):
    calendar, webinar = calendar_event((rendered / WEBINAR_ICS).read_bytes())
    start, end = webinar.decoded("DTSTART"), webinar.decoded("DTEND")
    assert (start.replace(tzinfo=None), end.replace(tzinfo=None)) == (
        dt.datetime(2023, 1, 25, 14, 0),
        dt.datetime(2023, 1, 25, 15, 30),
    )
    assert start.utcoffset() == dt.timedelta(0)  # GMT
    assert webinar["DTSTART"].params["TZID"] == "Europe/London"
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["Europe/London"]

    _, conference = calendar_event((rendered / CONFERENCE_ICS).read_bytes())
    start = conference.decoded("DTSTART")
    assert start.astimezone(dt.UTC) == dt.datetime(2023, 10, 5, 9, 0, tzinfo=dt.UTC)  # 10:00 BST
    assert conference.decoded("DTEND").astimezone(LONDON).hour == 16


def test_the_vtimezone_itself_gives_london_its_clock_changes(rendered):
    """A calendar that does not know Europe/London by name reads the offsets from the file."""
    calendar, _ = calendar_event((rendered / CONFERENCE_ICS).read_bytes())
    (zone,) = calendar.walk("VTIMEZONE")
    changes = {(c.name, c.decoded("DTSTART"), c["TZNAME"]) for c in zone.subcomponents}
    assert ("DAYLIGHT", dt.datetime(2023, 3, 26, 1, 0), "BST") in changes
    assert ("STANDARD", dt.datetime(2023, 10, 29, 2, 0), "GMT") in changes
    summer = next(c for c in zone.subcomponents if c.decoded("DTSTART") == dt.datetime(2023, 3, 26, 1, 0))
    assert summer.decoded("TZOFFSETTO") == dt.timedelta(hours=1)


def test_the_event_says_what_where_and_who_and_keeps_its_uid(rendered, project, repo_root, tmp_path):
    raw = (rendered / WEBINAR_ICS).read_bytes()
    _, webinar = calendar_event(raw)
    assert str(webinar["SUMMARY"]) == "Health Equity Network launch webinar"
    assert str(webinar["LOCATION"]).startswith("Online: https://www.instituteofhealthequity.example.org/")
    assert str(webinar["URL"]) == "https://www.instituteofhealthequity.example.org/network"
    description = str(webinar["DESCRIPTION"])
    assert "Why the network was set up, who it is for, and how to share your work." in description
    assert "Sir Michael Marmot, Director, UCL Institute of Health Equity" in description
    assert "Register: https://www.instituteofhealthequity.example.org/network/launch-webinar" in description
    assert webinar.decoded("DTSTAMP") == dt.datetime(2023, 1, 10, tzinfo=dt.UTC)  # the issue's date

    _, conference = calendar_event((rendered / CONFERENCE_ICS).read_bytes())
    assert str(conference["LOCATION"]) == "Birmingham; Council House, Victoria Square"  # escaped and back
    assert (
        "LOCATION:Birmingham\\; Council House\\, Victoria Square" in (rendered / CONFERENCE_ICS).read_text()
    )

    again = tmp_path / "again"
    Editor(settings_for(project, repo_root)).render_to("2023-01", again)
    assert (again / WEBINAR_ICS).read_bytes() == raw  # same UID, same bytes, every time
    assert (
        str(webinar["UID"])
        == "2023-01-health-equity-network-launch-webinar@news.health-equity-network.example.org"
    )


def test_lines_end_in_crlf_and_fold_at_75_octets(rendered):
    raw = (rendered / WEBINAR_ICS).read_bytes()
    assert raw.startswith(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
    lines = raw.split(b"\r\n")
    assert lines[-1] == b"" and all(b"\n" not in line and b"\r" not in line for line in lines)
    assert max(len(line) for line in lines) <= 75
    assert any(line.startswith(b" ") for line in lines)  # the long description was folded


def test_a_whole_day_event_is_written_as_dates(rendered):
    _, day = calendar_event((rendered / DAY_ICS).read_bytes())
    assert day.decoded("DTSTART") == dt.date(2099, 6, 1)
    assert day.decoded("DTEND") == dt.date(2099, 6, 2)  # the day after: the event lasts all of 1 June


# --- what readers see -----------------------------------------------------------------------------


def test_email_shows_time_range_with_zone_speakers_register_button_and_calendar_link(rendered):
    html = (rendered / "email.html").read_text(encoding="utf-8")
    assert "Wednesday 25 January 2023, 14:00–15:30 GMT · Online" in html
    assert "Thursday 5 October 2023, 10:00–16:30 BST · Birmingham; Council House, Victoria Square" in html
    assert "<strong>Sir Michael Marmot</strong>, Director, UCL Institute of Health Equity" in html
    assert "&lt;b&gt;Professor&lt;/b&gt; Bola Owolabi" in html  # what an editor types is never HTML
    button = re.search(r'<a class="nl-event-button"[^>]*>Register</a>', html)
    assert button, "no Register button"
    assert 'href="https://www.instituteofhealthequity.example.org/network/launch-webinar"' in button[0]
    assert 'aria-label="Register for Health Equity Network launch webinar"' in button[0]
    assert f'href="{BASE}/archive/2023-01/{WEBINAR_ICS}"' in html
    assert html.count(">Add to calendar</a>") == 3
    assert html.count(">Register</a>") == 1  # only the event with a register link


def test_text_part_writes_the_time_speakers_register_and_calendar_links_out(rendered):
    text = (rendered / "email.txt").read_text(encoding="utf-8")
    assert "  Wednesday 25 January 2023, 14:00–15:30 GMT · Online\n" in text
    assert "  Speakers:\n  - Sir Michael Marmot, Director, UCL Institute of Health Equity\n" in text
    assert "  - <b>Professor</b> Bola Owolabi\n" in text
    assert "  Register: https://www.instituteofhealthequity.example.org/network/launch-webinar\n" in text
    assert f"  Add to calendar: {BASE}/archive/2023-01/{WEBINAR_ICS}\n" in text
    assert "  Monday 1 June 2099 · Leeds\n" in text
    assert not re.search(r"<a |&lt;", text)


def test_web_version_shows_the_same_with_a_register_button(rendered):
    web = (rendered / "web.html").read_text(encoding="utf-8")
    assert '<time datetime="2023-01-25T14:00+00:00">Wednesday 25 January 2023, 14:00–15:30 GMT</time>' in web
    assert '<time datetime="2023-10-05T10:00+01:00">' in web
    assert '<time datetime="2099-06-01">Monday 1 June 2099</time>' in web
    assert re.search(
        r'<a class="button" href="https://www.instituteofhealthequity.example.org/network/launch-webinar">'
        r"Register<span class=\"visually-hidden\"> for Health Equity Network launch webinar</span></a>",
        web,
    )
    assert f'href="{BASE}/archive/2023-01/{WEBINAR_ICS}"' in web
    assert "&lt;b&gt;Professor&lt;/b&gt;" in web


# --- mistakes, at their lines ---------------------------------------------------------------------


def problems(tmp_path: Path, repo_root: Path, items: str) -> list[tuple[int | None, str, str]]:
    path = write(
        tmp_path, "draft", HEAD + "  - kind: events\n    items:\n" + textwrap.indent(items, "      ")
    )
    with pytest.raises(ProblemsFound) as caught:
        load_issue(path, Vocabulary.load(repo_root / "subscribers"))
    return [(p.line, p.where, p.message) for p in caught.value.problems]


def test_an_end_before_the_start_is_reported_at_its_line(tmp_path, repo_root):
    found = problems(
        tmp_path,
        repo_root,
        "- title: Webinar\n  start: 2023-01-25 14:00\n  end: 2023-01-25 13:00\n  online: yes\n"
        "  url: https://example.org/w\n",
    )
    assert found == [
        (
            12,
            "events[1].end",
            "is 2023-01-25 13:00, not after the start (2023-01-25 14:00); an event must end after it starts",
        )
    ]


def test_an_end_time_alone_is_on_the_start_day_and_must_be_quoted(tmp_path, repo_root):
    found = problems(
        tmp_path,
        repo_root,
        "- title: Webinar\n  start: 2023-01-25 14:00\n  end: '12:30'\n  online: yes\n  url: https://example.org/w\n"
        "- title: Talk\n  start: 2023-01-25 14:00\n  end: 15:30\n  online: yes\n  url: https://example.org/t\n",
    )
    assert [(line, where) for line, where, _ in found] == [(12, "events[1].end"), (17, "events[2].end")]
    assert "not after the start" in found[0][2]
    assert found[1][2].startswith("write a time of day in quotes ('15:30'")


def test_an_event_neither_online_nor_somewhere_is_reported_at_its_line(tmp_path, repo_root):
    found = problems(
        tmp_path, repo_root, "- title: Webinar\n  start: 2023-01-25 14:00\n  url: https://example.org/w\n"
    )
    assert found == [
        (
            10,
            "events[1].location",
            "is missing: say where the event is held, or write 'online: yes' for one held online",
        )
    ]


# --- the archive ----------------------------------------------------------------------------------


def test_archive_build_writes_each_ics_where_the_email_links_to_it(project, repo_root, rendered, tmp_path):
    out = tmp_path / "public"
    build(settings_for(project, repo_root), out)
    html = (rendered / "email.html").read_text(encoding="utf-8")
    links = re.findall(rf'href="{re.escape(BASE)}/([^"]+\.ics)"', html)
    assert len(links) == 3
    for link in links:
        built = out / link
        assert built.is_file(), link
        assert built.read_bytes() == (rendered / link.removeprefix("archive/2023-01/")).read_bytes()
    issue_page = (out / "archive/2023-01/index.html").read_text(encoding="utf-8")
    assert f'href="{WEBINAR_ICS}"' in issue_page  # relative, from the issue's own folder


def test_events_page_lists_upcoming_soonest_first_and_past_most_recent_first(project, repo_root, tmp_path):
    out = tmp_path / "public"
    build(settings_for(project, repo_root), out)
    page = (out / "archive/events/index.html").read_text(encoding="utf-8")
    upcoming, past = page.split('<h2 id="upcoming">', 1)[1].split('<h2 id="past">')
    assert re.findall(r'<h3 id="upcoming-\d+"><a href="([^"]+)">([^<]+)</a>', upcoming) == [
        ("../2023-01/#network-day-in-leeds", "Network day in Leeds")
    ]
    assert [title for _, title in re.findall(r'<h3 id="past-\d+"><a href="([^"]+)">([^<]+)</a>', past)] == [
        "Growing a Movement for Health Equity: conference",
        "Health Equity Network launch webinar",
    ]
    assert f'href="../2023-01/{DAY_ICS}"' in upcoming and f'href="../2023-01/{WEBINAR_ICS}"' in past
    index = (out / "archive/index.html").read_text(encoding="utf-8")
    assert 'href="events/"' in index  # in the navigation and the index's lede


def test_an_event_is_upcoming_until_its_last_day_is_over(project, repo_root):
    settings = settings_for(project, repo_root)
    vocabulary = Vocabulary.load(settings.vocabulary_dir)

    def titles(today: dt.date) -> tuple[list[str], list[str]]:
        site = ArchiveSite(settings, vocabulary, collect(settings, vocabulary, {}), today=today)
        return tuple([entry.item.title for entry in group] for group in site.events())  # type: ignore[return-value]

    upcoming, past = titles(dt.date(2023, 1, 25))
    assert upcoming[0] == "Health Equity Network launch webinar" and past == []
    upcoming, past = titles(dt.date(2023, 1, 26))
    assert past == ["Health Equity Network launch webinar"]


def test_the_web_app_serves_the_same_ics_as_a_calendar(project, repo_root, rendered):
    app = Flask(__name__)
    app.register_blueprint(archive_blueprint(settings_for(project, repo_root), recheck_seconds=0))
    response = app.test_client().get(f"/archive/2023-01/{WEBINAR_ICS}")
    assert response.status_code == 200
    assert response.content_type == "text/calendar; charset=utf-8"
    assert response.data == (rendered / WEBINAR_ICS).read_bytes()
    assert app.test_client().get("/archive/events/").status_code == 200


# --- as a user ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_render_and_archive_build_through_the_installed_command(tmp_path):
    folder = init_project(tmp_path)
    write(folder, "2023-01", EVENTS)
    done = newsletter(folder, "render", "2023-01", "--out", "out")
    ics = folder / "out" / WEBINAR_ICS
    assert ics.is_file(), done.stdout
    _, webinar = calendar_event(ics.read_bytes())
    assert webinar.decoded("DTSTART").astimezone(dt.UTC) == dt.datetime(2023, 1, 25, 14, 0, tzinfo=dt.UTC)
    text = (folder / "out" / "email.txt").read_text(encoding="utf-8")
    assert "Wednesday 25 January 2023, 14:00–15:30 GMT" in text

    newsletter(folder, "archive", "build", "--out", "public")
    assert (folder / "public" / "archive" / "2023-01" / WEBINAR_ICS).read_bytes() == ics.read_bytes()
    events_page = (folder / "public" / "archive" / "events" / "index.html").read_text(encoding="utf-8")
    assert "Network day in Leeds" in events_page.split('id="past"')[0]

    write(folder, "2023-02", EVENTS.replace('end: "15:30"', "end: 2023-01-25 13:00"))
    refused = newsletter(folder, "check", "2023-02", ok=False)
    assert refused.returncode == 1
    assert "issues/2023-02/issue.yaml:12: events[1].end: is 2023-01-25 13:00, not after the start" in (
        refused.stdout + refused.stderr
    )
