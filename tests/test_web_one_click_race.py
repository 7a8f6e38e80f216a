"""Simultaneous RFC 8058 one-click POSTs record one unsubscription (issue 11), on SQLite and PostgreSQL.

Mail providers retry, and several can act on one message at once. Twenty POSTs at the same moment, at a
real `newsletter serve` (waitress, several threads, one database), must all answer 200 and leave exactly
one "unsubscribed" consent record: the state change and its record are one conditional UPDATE whose
row count decides whether the record is written, in one transaction.
"""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Callable
from typing import TypeVar

import pytest
from sqlalchemy.orm import Session

from newsletter.audience.consent import Action
from newsletter.db.database import Database
from newsletter.db.models import Status
from newsletter.testing.processes import ServeProcess, free_port
from newsletter.testing.smtp import RecordingSMTPServer
from web_support import open_site, web_settings

CLICKS = 20
T = TypeVar("T")
R = TypeVar("R")
BODY = "List-Unsubscribe=One-Click"


@pytest.fixture
def site(database_url):
    yield from open_site(database_url)


def unsubscribe_link(site, email: str) -> str:
    """Sign up and confirm through the pages; the unsubscribe link the preferences page hands out."""
    preferences = site.active_member(email)
    page = site.client.get(preferences)
    return re.search(r'href="(/unsubscribe/[^"]+)"', page.text).group(1)


def post_at_once(port: int, path: str, count: int) -> list[int]:
    """`count` one-click POSTs, each on its own connection, released together."""
    ready = threading.Barrier(count, timeout=60)
    statuses: list[int] = []
    lock = threading.Lock()

    def click() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.connect()
            ready.wait()
            connection.request(
                "POST", path, body=BODY, headers={"Content-Type": "application/x-www-form-urlencoded"}
            )
            status = connection.getresponse().status
        finally:
            connection.close()
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=click) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses


def test_twenty_one_click_posts_at_once_record_one_unsubscription(site, database_url):
    path = unsubscribe_link(site, "jo@example.org")
    port = free_port()
    with RecordingSMTPServer() as smtp:
        settings = web_settings(database_url, smtp.port, base_url=f"http://127.0.0.1:{port}")
        with ServeProcess(settings, "--threads", "16", port=port) as server:
            statuses = post_at_once(server.port, path, CLICKS)
            log = server.log()
    assert statuses == [200] * CLICKS, log
    assert "Traceback" not in log, log
    assert site.member("jo@example.org").status == Status.UNSUBSCRIBED
    recorded = [r.action for r in site.consent("jo@example.org")]
    assert recorded.count(Action.UNSUBSCRIBED.value) == 1, recorded


def in_sessions_at_once(
    database_url: str, find: Callable[[Session], T], act: Callable[[Session, T], R]
) -> list[R]:
    """`CLICKS` threads, each on its own connection: each finds its row, then all act at the same moment."""
    ready = threading.Barrier(CLICKS, timeout=60)
    errors: list[BaseException] = []
    results: list[R] = []

    def run() -> None:
        database = Database(database_url)
        try:
            with database.session() as session:
                found = find(session)
                ready.wait()
                results.append(act(session, found))
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            database.dispose()

    threads = [threading.Thread(target=run) for _ in range(CLICKS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return results


def test_twenty_threads_leaving_one_list_at_once_record_it_once(site, database_url):
    """The same rule for leaving one list, through the library the pages use (twenty sessions, each on
    a connection of its own, as twenty server threads or processes would be)."""
    from newsletter.audience import members

    site.active_member("jo@example.org", lists=["newsletter", "events"])
    in_sessions_at_once(
        database_url,
        lambda session: members.find(session, "jo@example.org"),
        lambda session, member: members.unsubscribe(session, member, "unsubscribe page", "events"),
    )
    recorded = [r.action for r in site.consent("jo@example.org")]
    assert recorded.count(Action.LEFT_LIST.value) == 1, recorded
    assert ("events", False) in site.audience.member("jo@example.org").lists


def test_twenty_confirmations_at_once_record_one(site, database_url):
    """The same rule for confirming a sign-up: one "confirmed" record however many clicks arrive."""
    from newsletter.audience import membership

    site.subscribe("jo@example.org")
    token = site.last_link("jo@example.org").removeprefix("/confirm/")
    done = in_sessions_at_once(
        database_url,
        lambda session: membership.member_for(session, site.tokens, "confirm", token),
        lambda session, found: membership.confirm(session, found, membership.Client()),
    )
    assert sorted(done) == [False] * (CLICKS - 1) + [True]
    recorded = [r.action for r in site.consent("jo@example.org")]
    assert recorded.count(Action.CONFIRMED.value) == 1, recorded
    assert site.member("jo@example.org").status == Status.ACTIVE
