"""The campaign report counts what happened, per recipient domain and over time: a campaign sent for real
(SQLite and PostgreSQL, the worker, an SMTP server scripted to defer once and to refuse an address),
then a failure report that comes back later, a complaint and an unsubscribe, taken in as the pipeline
takes them in. `newsletter report ID` prints the same figures.

The database counts them in grouped queries; a ledger written for the test with every status and the
awkward replies (queue ids of every shape, addresses, whitespace, long lines) holds their figures to
the ones a plain loop over the rows gives. Variants and counted links are written for the test too.
`write_campaign` is also how tests/test_reports_compare.py builds its campaigns."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from bounces_support import arf, dsn
from delivery_support import (
    SAMPLE_SLUG,
    delivery_settings,
    member_row,
    open_sending,
    run_cli,
    work_until_finished,
    write_members,
)
from newsletter.audience import members
from newsletter.audience.store import Store
from newsletter.bounces.intake import Intake
from newsletter.db.models import (
    Campaign,
    CampaignLink,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    Subscriber,
)
from newsletter.reports import campaign as campaign_report
from newsletter.reports.campaign import DomainLine, LinkLine, campaign_detail, reply_kind
from newsletter.tokens import Tokens

REPO_ROOT = Path(__file__).resolve().parents[1]

ACCEPTED = "ann@accepting.example"
BOUNCES_LATER = "ben@accepting.example"
COMPLAINS = "cal@accepting.example"
LEAVES = "dee@accepting.example"
GREYLISTED = "eve@throttling.example"
NO_SUCH_USER = "fay@gone.example"
EVERYONE = (ACCEPTED, BOUNCES_LATER, COMPLAINS, LEAVES, GREYLISTED, NO_SUCH_USER)
FAST_RETRY = {"lease_seconds": 30, "retry_base_seconds": 0.05}


@pytest.fixture
def sending(database_url, server, tmp_path):
    rows = [member_row(email, name=f"Member {n}", topics="housing") for n, email in enumerate(EVERYONE)]
    with open_sending(
        delivery_settings(database_url, server.port), write_members(tmp_path / "m.csv", rows)
    ) as opened:
        yield opened


def test_the_report_counts_each_outcome_per_domain_and_over_time(sending, server):
    server.reply_at_rcpt(GREYLISTED, "451 4.7.1 Greylisted, try again later", times=1)
    server.reply_at_rcpt(NO_SUCH_USER, "550 5.1.1 No such user here")
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])
    work_until_finished(sending, campaign.id, **FAST_RETRY)

    intake = Intake(sending.store, sending.settings)
    tokens = Tokens(sending.settings.secret_key)
    with sending.store.session() as session:
        found = {email: members.find(session, email) for email in EVERYONE}
        keys = {email: (member.id, member.link_key) for email, member in found.items()}
        ids = {email: _message_id(session, campaign.id, member.id) for email, member in found.items()}
    token = {email: tokens.make("bounce", *keys[email]) for email in EVERYONE}
    later = dsn(
        token[BOUNCES_LATER],
        [(BOUNCES_LATER, "failed", "5.1.1", "550 5.1.1 mailbox gone")],
        ids[BOUNCES_LATER],
    )
    assert intake.process(later).understood
    assert intake.process(arf(token=token[COMPLAINS], message_id=ids[COMPLAINS])).understood
    with sending.store.session() as session:
        members.unsubscribe(session, members.find(session, LEAVES), "unsubscribe link")
        session.commit()

    with sending.store.session() as session:
        detail = campaign_detail(session, campaign.id)
    report = detail.report
    assert report.counts == {"sent": 4, "bounced": 2}
    assert (report.bounced_later, report.complained, detail.unsubscribed) == (1, 1, 2)
    lines = {line.domain: line for line in detail.domains}
    assert [line.domain for line in detail.domains] == [
        "accepting.example",
        "gone.example",
        "throttling.example",
    ]
    accepting, gone, throttling = (
        lines["accepting.example"],
        lines["gone.example"],
        lines["throttling.example"],
    )
    assert (accepting.messages, accepting.sent, accepting.bounced, accepting.deferred) == (4, 3, 1, 0)
    assert (gone.messages, gone.sent, gone.bounced, gone.median_accept_seconds) == (1, 0, 1, None)
    assert (throttling.sent, throttling.deferred, throttling.failed) == (1, 1, 0)
    assert throttling.median_accept_seconds is not None and accepting.median_accept_seconds is not None
    # Over time: every message the relay accepted (the one that bounced later was accepted first).
    assert detail.over_time[-1][1] == 5
    assert [total for _, total in detail.over_time] == sorted(total for _, total in detail.over_time)
    replies = dict(detail.replies)
    assert replies["550 5.1.1 No such user here"] == 1

    printed = run_cli(sending.settings, "report", str(campaign.id))
    assert printed.exit_code == 0, printed.output
    assert "unsubscribed        2" in printed.output
    assert "throttling.example" in printed.output and "bounced later        1" in printed.output


def test_alike_replies_count_together():
    assert reply_kind("250 2.0.0 Ok: queued as 4F2A91C3D0") == reply_kind(
        "250 2.0.0 Ok: queued as 77AB12CD99"
    )
    assert reply_kind("550 5.1.1 <fay@gone.example>: Recipient address rejected") == (
        "550 5.1.1 …: Recipient address rejected"
    )


def test_a_campaign_that_does_not_exist_is_one_clear_message(sending):
    printed = run_cli(sending.settings, "report", "999")
    assert printed.exit_code == 1 and "no campaign 999" in printed.output


def _message_id(session, campaign_id: int, subscriber_id: int) -> str:
    return session.scalar(
        select(Delivery.message_id).where(
            Delivery.campaign_id == campaign_id, Delivery.subscriber_id == subscriber_id
        )
    )


def test_report_as_a_user_runs_it(tmp_path):
    """The installed command in a folder made by `newsletter init`: the sample issue sent to the members
    through `newsletter sink`, then `newsletter report 1`, `report audience` and `report compare`."""
    import shutil

    from user_support import Background, free_port, init_project, newsletter, uncomment

    folder = init_project(tmp_path, "our-network")
    shutil.copytree(REPO_ROOT / "issues" / "2023-10", folder / "issues" / "2023-10")
    (folder / "people.csv").write_text(
        "email,name,lists\nann@accepting.example,Ann,newsletter\nbo@other.example,Bo,newsletter\n",
        encoding="utf-8",
    )
    newsletter(folder, "subscribers", "import", "people.csv")
    port = free_port()
    uncomment(folder / "newsletter.toml", smtp_url=f"smtp://127.0.0.1:{port}")
    sink = Background(folder, "sink", "--port", str(port), "--maildir", "sink", port=port)
    try:
        newsletter(folder, "send", "2023-10", "--to", "everyone", "--yes")
        newsletter(folder, "worker", "--once")
    finally:
        sink.stop()
    printed = newsletter(folder, "report", "1").stdout
    assert "sent" in printed and "accepting.example" in printed and "other.example" in printed
    assert "250" in printed.split("The relay's most common replies:", 1)[1]
    missing = newsletter(folder, "report", "7", ok=False)
    assert missing.returncode == 1 and missing.stderr.startswith("Error: no campaign 7")
    neither = newsletter(folder, "report", "everyone", ok=False)
    assert neither.returncode == 1 and "give a campaign's number" in neither.stderr
    audience = newsletter(folder, "report", "audience").stdout
    assert audience.startswith("Members now: 2 active")
    assert "Where consent came from (sign-ups and imports):" in audience and "import:people.csv" in audience
    compared = newsletter(folder, "report", "compare").stdout.splitlines()
    assert compared[0] == "The only campaign that started:"
    # id, started (date, time), issue, recipients, reached, reach rate, bounced, bounce rate
    assert compared[2].split()[:1] + compared[2].split()[3:9] == [
        "1",
        "2023-10",
        "2",
        "2",
        "100.0%",
        "0",
        "0.0%",
    ]
    assert compared[2].split()[-2:] == ["-", "-"]  # clicks were not counted
    assert compared[-1].startswith("Rates: ")
    # Any table of a report as the CSV the desk downloads, for a spreadsheet.
    domains = newsletter(folder, "report", "1", "--csv", "domains").stdout.splitlines()
    assert domains[0].startswith("Domain,Messages,Sent,Deferred,Failed,Bounced,Waiting")
    assert sorted(line.split(",")[:3] for line in domains[1:]) == [
        ["accepting.example", "1", "1"],
        ["other.example", "1", "1"],
    ]
    months = newsletter(folder, "report", "audience", "--csv", "months").stdout.splitlines()
    assert months[0].endswith("Members at its end") and months[-1].endswith(",2")
    unknown = newsletter(folder, "report", "1", "--csv", "everything", ok=False)
    assert (
        unknown.returncode == 1 and "this report's tables are outcomes, over-time, domains" in unknown.stderr
    )


# --- A ledger written for the test -----------------------------------------------------------------------

STARTED = dt.datetime(2024, 3, 1, 9, 0, 0, 250_000)


@dataclass(frozen=True)
class Row:
    """One ledger row to write: whose, its status, and when after the start the relay accepted it."""

    email: str
    status: str = "sent"
    after: float | None = 60.0  # seconds after the campaign's start; None: not accepted
    reply: str | None = "250 2.0.0 Ok: queued as 4F2A91C3D0"
    attempts: int = 1
    complained: bool = False


def write_campaign(
    store: Store,
    rows: Sequence[Row],
    *,
    slug: str = "2024-03",
    started: dt.datetime | None = STARTED,
    status: CampaignStatus = CampaignStatus.SENT,
    variants: list[dict[str, object]] | None = None,
    links: Sequence[tuple[str, str, str, int]] = (),
) -> int:
    """A campaign as sending leaves it, written straight into the database: its ledger `rows` (the
    members must exist) and its counted `links` (section, text, url, clicks). Returns its id."""
    with store.session() as session:
        ids = {key: id_ for key, id_ in session.execute(select(Subscriber.email_key, Subscriber.id))}
        campaign = Campaign(
            issue_slug=slug,
            issue_source="",
            subject=f"Issue {slug}",
            audiences=["everyone"],
            status=status,
            send_at=started or STARTED,
            started_at=started,
            finished_at=started,
            recipients=len(rows),
            variants=variants,
        )
        session.add(campaign)
        session.flush()
        for number, row in enumerate(rows):
            accepted = None if row.after is None else (started or STARTED) + dt.timedelta(seconds=row.after)
            session.add(
                Delivery(
                    campaign_id=campaign.id,
                    subscriber_id=ids[row.email.lower()],
                    status=DeliveryStatus(row.status),
                    attempts=row.attempts,
                    next_attempt_at=started or STARTED,
                    message_id=f"<nl.{campaign.id}.{number}@test.example>",
                    last_reply=row.reply,
                    sent_at=accepted,
                    complained_at=accepted if row.complained else None,
                )
            )
        for position, (section, text, url, clicks) in enumerate(links, start=1):
            session.add(
                CampaignLink(
                    campaign_id=campaign.id,
                    position=position,
                    section=section,
                    text=text,
                    url=url,
                    clicks=clicks,
                )
            )
        return campaign.id


@pytest.fixture
def written(database_url, tmp_path):
    """A migrated database with the members of `EVERYONE` and `MANY`, for ledgers written by the test."""
    rows = [member_row(email, name=email.split("@")[0]) for email in (*EVERYONE, *MANY)]
    with open_sending(delivery_settings(database_url, 25), write_members(tmp_path / "m.csv", rows)) as opened:
        yield opened


# Members on five domains, some with capitals (stored as given; the domain in lower case).
MANY = tuple(
    f"{'Member' if number % 3 else 'member'}{number:02d}@{domain}"
    for number in range(40)
    for domain in (
        ("nhs.example", "Council.Gov.Example", "slow.example", "one.example", "big.example")[number % 5],
    )
)
# Replies of every shape: queue ids that end them (hex, mixed case, with `-` and `_`, digits only near the
# start), in the middle (Gmail's), with no digit (kept as they are), too short, after a non-ASCII letter,
# addresses, spaces and tabs, a line end, nothing before the id, over 200 characters, none at all.
REPLIES = (
    "250 2.0.0 Ok: queued as 4F2A91C3D0",
    "250 2.0.0 Ok: queued as 77AB12CD99",
    "250 2.0.0 Ok: queued as ABCDEFABCD",
    "250 2.0.0 Ok: queued as 4SXt8M3NJzvKmq",
    "250 OK id=1qXyZa-0001Ab-Cd",
    "250 2.0.0 OK  1697012345 a1-20020a05600c.123 - gsmtp",
    "250 ok ",
    "250 ok 4F2A91C3D0",
    "250 ok 000000",
    "250 ok A1B2",
    "250 queued as é4F2A91C3D0",
    "250 ok Ω12345678",
    "550 5.1.1 <fay@gone.example>: Recipient address rejected",
    "451  4.7.1\tGreylisted,   try again later",
    "  250 2.0.0 Ok: queued as 9F2A91C3D0  ",
    "250 2.0.0 Ok: queued as 4F2A91C3D0\r\n",
    "4F2A91C3D0",
    "x" * 195 + " 4F2A91C3D0",
    "",
    None,
    "250 Ok: queued as abc-123_456.78",
    "550 5.7.1 Message rejected as spam",
    "250 2.0.0 Ok: queued as <4F2A91C3D0@relay.example>",
)
STATUSES = (  # status, attempts, accepted (None: not)
    ("sent", 1, True),
    ("sent", 2, True),
    ("bounced", 1, True),  # a failure report that came back after the relay took it
    ("bounced", 1, False),  # refused while sending
    ("failed", 3, False),
    ("deferred", 2, False),
    ("queued", 0, False),
    ("sending", 1, False),
    ("skipped", 0, False),
    ("sent", 1, True),
    ("sent", 1, True),
)


def ledger_of_every_kind() -> list[Row]:
    """Each member of MANY with a status, a reply and an acceptance time spread over minutes (to the
    microsecond, one before the start), so domains have odd and even counts of accepted messages."""
    rows = []
    for number, email in enumerate(MANY):
        status, attempts, accepted = STATUSES[(number * 7) % len(STATUSES)]
        after = -3.0 if number == 5 else 17.5 * number + number / 7 if accepted else None
        rows.append(Row(email, status, after, REPLIES[number % len(REPLIES)], attempts))
    # Times for the medians to come out known: an even count (the mean of the middle two), one
    # before the start (none is shown as less than 0), one of a bounce the relay had accepted; and one
    # reply clearly the most common.
    for email, after, status in zip(
        EVERYONE,
        (10.5, 20.25, -5.0, 40.000001, 100.0, -3.0),
        ("sent",) * 4 + ("bounced", "sent"),
        strict=True,
    ):
        rows.append(Row(email, status, after, f"250 2.0.0 Ok: queued as 5{len(rows):09d}"))
    return rows


def _row_by_row(session, campaign_id: int) -> tuple[list[DomainLine], list[tuple[dt.datetime, int]], Counter]:
    """What the report counted before it was moved into the database: a loop over every row."""
    campaign = session.get(Campaign, campaign_id)
    started = campaign.started_at or campaign.send_at
    rows = session.execute(
        select(Subscriber.email, Delivery.status, Delivery.attempts, Delivery.sent_at, Delivery.last_reply)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.campaign_id == campaign_id)
    ).all()
    by_domain: dict[str, Counter] = {}
    waits: dict[str, list[float]] = {}
    minutes: Counter = Counter()
    replies: Counter = Counter()
    for email, status, attempts, sent_at, last_reply in rows:
        status = DeliveryStatus(status).value
        domain = email.rpartition("@")[2].lower()
        line = by_domain.setdefault(domain, Counter())
        line["messages"] += 1
        line[status] += 1
        if status == "deferred" or (status == "sent" and attempts > 1):
            line["deferred_once"] += 1
        if sent_at is not None and status in ("sent", "bounced"):
            waits.setdefault(domain, []).append((sent_at - started).total_seconds())
            minutes[sent_at.replace(second=0, microsecond=0)] += 1
        if last_reply:
            replies[reply_kind(last_reply)] += 1
    domains = sorted(
        (
            DomainLine(
                domain,
                counts["messages"],
                counts["sent"],
                counts["deferred_once"],
                counts["failed"],
                counts["bounced"],
                counts["queued"] + counts["sending"] + counts["deferred"],
                max(0.0, statistics.median(waits[domain])) if waits.get(domain) else None,
            )
            for domain, counts in by_domain.items()
        ),
        key=lambda line: (-line.messages, line.domain),
    )
    total, over_time = 0, []
    for minute in sorted(minutes):
        total += minutes[minute]
        over_time.append((minute, total))
    return domains, over_time, replies


def test_the_grouped_queries_count_what_a_loop_over_the_rows_counts(written, monkeypatch):
    campaign_id = write_campaign(written.store, ledger_of_every_kind())
    monkeypatch.setattr(campaign_report, "TOP_REPLIES", 1000)  # every kind of reply, not just the top
    with written.store.session() as session:
        detail = campaign_detail(session, campaign_id)
        domains, over_time, replies = _row_by_row(session, campaign_id)

    assert detail.domains == domains
    assert detail.over_time == over_time
    assert detail.replies == sorted(replies.items(), key=lambda pair: (-pair[1], pair[0]))
    lines = {line.domain: line for line in detail.domains}
    assert lines["accepting.example"].median_accept_seconds == 15.375
    assert lines["gone.example"].median_accept_seconds == 0.0
    assert lines["throttling.example"].median_accept_seconds == 100.0
    assert len(lines) == 8 and lines["council.gov.example"].messages == 8
    assert replies["250 2.0.0 Ok: queued as …"] > replies["250 2.0.0 Ok: queued as ABCDEFABCD"] > 0
    assert detail.replies[0] == ("250 2.0.0 Ok: queued as …", replies["250 2.0.0 Ok: queued as …"])


def test_the_report_shows_who_got_which_content_and_clicks_per_section_and_link(written):
    variants = [
        {"description": "HTML, housing and health", "members": 3},
        {"description": "plain text, housing", "members": 1},
    ]
    links = [
        ("Housing", "Rents rise again", "https://example.org/rents", 7),
        ("Health", "Waiting lists", "https://example.org/waits", 2),
        ("Housing", "What councils can do", "https://example.org/councils", 0),
        ("Events", "Spring meeting", "https://example.org/spring", 5),
    ]
    rows = [Row(email) for email in EVERYONE[:4]]
    counted = write_campaign(written.store, rows, variants=variants, links=links)
    uncounted = write_campaign(written.store, rows, slug="2024-04")

    with written.store.session() as session:
        detail = campaign_detail(session, counted)
        plain = campaign_detail(session, uncounted)
    assert detail.variants == [("HTML, housing and health", 3), ("plain text, housing", 1)]
    assert detail.links == [
        LinkLine(1, "Housing", "Rents rise again", "https://example.org/rents", 7),
        LinkLine(2, "Health", "Waiting lists", "https://example.org/waits", 2),
        LinkLine(3, "Housing", "What councils can do", "https://example.org/councils", 0),
        LinkLine(4, "Events", "Spring meeting", "https://example.org/spring", 5),
    ]
    assert detail.sections == [("Housing", 7), ("Health", 2), ("Events", 5)]
    assert detail.clicks_counted
    assert (plain.variants, plain.links, plain.sections, plain.clicks_counted) == ([], [], [], False)

    printed = run_cli(written.settings, "report", str(counted))
    assert printed.exit_code == 0, printed.output
    output = printed.output
    assert "Who got which content" in output
    assert "       3  HTML, housing and health" in output and "       1  plain text, housing" in output
    sections = output.split("Clicks per section", 1)[1].split("Clicks per link", 1)[0]
    assert [line.split(None, 1) for line in sections.strip().splitlines()[1:]] == [
        ["7", "Housing"],
        ["2", "Health"],
        ["5", "Events"],
    ]
    assert "       7  Rents rise again (Housing)  https://example.org/rents" in output
    assert output.index("Rents rise again") < output.index("Waiting lists") < output.index("Spring meeting")
    assert "unsubscribed        0" in output  # the lines the report had before are all still there

    printed = run_cli(written.settings, "report", str(uncounted))
    assert "Clicks were not counted for this campaign" in printed.output
    assert "Who got which content" not in printed.output and "Clicks per link" not in printed.output
