"""The last issues side by side (SQLite and PostgreSQL): campaigns whose ledgers, counted links and
members' consent history are written for the test, each figure and rate checked, and checked against
the campaign report of the same campaign; which campaigns (started ones, the last twelve, oldest
first); a query count that does not grow with the campaigns' size; and `newsletter report compare`."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, select

from delivery_support import delivery_settings, member_row, open_sending, run_cli, write_members
from newsletter.db.models import CampaignStatus, ConsentRecord, Subscriber
from newsletter.reports.campaign import campaign_detail
from newsletter.reports.compare import CampaignLine, compare_campaigns
from test_reports_campaign import Row, write_campaign

PEOPLE = tuple(
    f"{name}@example.org" for name in ("ann", "bo", "cy", "di", "ed", "flo", "gus", "hal", "ivy", "jo")
)
JAN = dt.datetime(2024, 1, 5, 9, 0)
LINKS = [("News", "One", "https://example.org/1", 3), ("Events", "Two", "https://example.org/2", 4)]


@pytest.fixture
def sending(database_url, tmp_path):
    rows = [member_row(email, name=email.split("@")[0]) for email in PEOPLE]
    with open_sending(delivery_settings(database_url, 25), write_members(tmp_path / "m.csv", rows)) as opened:
        yield opened


def january(store) -> int:
    """Ten members: seven sent (one complained), a bounce reported later, one refused, one failed."""
    ann, bo, cy, di, ed, flo, gus, hal, ivy, jo = PEOPLE
    rows = [Row(email) for email in (ann, bo, cy, di, ed, flo)]
    rows += [
        Row(gus, complained=True),
        Row(hal, "bounced", after=30.0),  # accepted, then a report came back
        Row(ivy, "bounced", after=None, reply="550 5.1.1 No such user"),
        Row(jo, "failed", after=None, reply="gave up after 6 attempts: 451 try later", attempts=6),
    ]
    return write_campaign(store, rows, slug="2024-01", started=JAN, links=LINKS)


def leave(store, email: str, action: str, when: dt.datetime) -> None:
    with store.session() as session:
        member_id = session.scalar(select(Subscriber.id).where(Subscriber.email_key == email))
        session.add(ConsentRecord(subscriber_id=member_id, action=action, source="test", created_at=when))


def test_each_campaign_is_counted_with_its_rates(sending):
    store = sending.store
    first = january(store)
    # Sending still: nothing out yet, clicks not counted.
    going = write_campaign(
        store,
        [Row(email, "queued", after=None, reply=None) for email in PEOPLE[:4]],
        slug="2024-02",
        started=JAN + dt.timedelta(days=31),
        status=CampaignStatus.SENDING,
    )
    # Cancelled just after it started, before its ledger had a row; started first of all.
    cancelled = write_campaign(
        store, [], slug="2023-12", started=JAN - dt.timedelta(days=4), status=CampaignStatus.CANCELLED
    )
    write_campaign(store, [Row(PEOPLE[0])], slug="2024-03", started=None, status=CampaignStatus.SCHEDULED)
    later = JAN + dt.timedelta(days=1)
    leave(store, "ann@example.org", "unsubscribed", later)
    leave(store, "bo@example.org", "unsubscribed", JAN - dt.timedelta(days=1))  # before it started
    leave(store, "gus@example.org", "complained", later)
    leave(store, "gus@example.org", "unsubscribed", later)  # one member, counted once
    leave(store, "hal@example.org", "unsubscribed", later)  # bounced: it never reached him

    with store.session() as session:
        lines = compare_campaigns(session)
    assert [line.id for line in lines] == [cancelled, first, going]  # oldest first, scheduled left out
    empty, january_line, going_line = lines
    assert january_line == CampaignLine(
        id=first,
        issue_slug="2024-01",
        subject="Issue 2024-01",
        started_at=JAN,
        audiences=("everyone",),
        recipients=10,
        reached=9,
        bounced=2,
        failed=1,
        complained=1,
        unsubscribed=2,
        clicks=7,
    )
    assert january_line.delivered == 7
    assert january_line.reach_rate == 0.9 and january_line.delivery_rate == 0.7
    assert january_line.bounce_rate == 2 / 9 and january_line.failure_rate == 0.1
    assert january_line.complaint_rate == 1 / 7 and january_line.unsubscribe_rate == 2 / 7
    assert january_line.click_rate == 1.0
    assert (going_line.recipients, going_line.reached, going_line.clicks) == (4, 0, None)
    assert going_line.reach_rate == 0.0
    assert (going_line.bounce_rate, going_line.complaint_rate, going_line.click_rate) == (None, None, None)
    assert (empty.recipients, empty.reach_rate, empty.failure_rate, empty.unsubscribed) == (0, None, None, 0)

    # The same figures as the campaign report of each.
    with store.session() as session:
        for line in lines:
            detail = campaign_detail(session, line.id)
            counts = detail.report.counts
            assert line.recipients == detail.report.total
            assert line.reached == counts.get("sent", 0) + counts.get("bounced", 0)
            assert (line.bounced, line.failed) == (counts.get("bounced", 0), counts.get("failed", 0))
            assert (line.complained, line.unsubscribed) == (detail.report.complained, detail.unsubscribed)
            assert line.clicks == (
                sum(link.clicks for link in detail.links) if detail.clicks_counted else None
            )


def test_the_last_twelve_oldest_first_in_a_few_queries_however_many_members(sending):
    store = sending.store
    ids = [
        write_campaign(
            store,
            [Row(email) for email in PEOPLE[: 1 + number % len(PEOPLE)]],
            slug=f"issue-{number:02d}",
            started=JAN + dt.timedelta(days=7 * number),
        )
        for number in range(14)
    ]
    engine = store.database.engine
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with store.session() as session:
            lines = compare_campaigns(session)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert [line.id for line in lines] == ids[2:]
    assert [line.recipients for line in lines] == [1 + number % len(PEOPLE) for number in range(2, 14)]
    assert len(statements) == 4  # the campaigns, their ledgers, who left since, their clicks

    with store.session() as session:
        assert [line.id for line in compare_campaigns(session, last=3)] == ids[-3:]
        assert compare_campaigns(session, last=0) == []


def test_report_compare_prints_a_line_a_campaign_with_rates(sending):
    printed = run_cli(sending.settings, "report", "compare")
    assert printed.exit_code == 0 and "No campaign has started yet" in printed.output

    first = january(sending.store)
    second = write_campaign(
        sending.store, [Row(PEOPLE[0])], slug="2024-02", started=JAN + dt.timedelta(days=31)
    )
    printed = run_cli(sending.settings, "report", "compare")
    assert printed.exit_code == 0, printed.output
    lines = printed.output.splitlines()
    assert lines[0] == "The last 2 campaigns that started, oldest first:"
    january_line, february_line = (line.split() for line in lines[2:4])
    assert january_line[:5] == [str(first), "2024-01-05", "09:00", "2024-01", "10"]
    # reached, bounced, failed, complained, unsubscribed, clicks: each a count and its rate
    assert january_line[5:] == ["9", "90.0%", "2", "22.2%", "1", "1", "14.29%", "0", "0.00%", "7", "100.0%"]
    assert february_line[0] == str(second) and february_line[-2:] == ["-", "-"]
    assert lines[-1].startswith("Rates: reached of the recipients")

    printed = run_cli(sending.settings, "report", "compare", "--last", "1")
    assert printed.output.splitlines()[0] == "The last campaign that started:"
    assert [line.split()[0] for line in printed.output.splitlines()[2:-1]] == [str(second)]
    printed = run_cli(sending.settings, "report", str(first), "--last", "1")
    assert printed.exit_code == 1 and "--last goes with `newsletter report compare`" in printed.output
