"""The campaign report counts what happened, per recipient domain and over time: a campaign sent for real
(SQLite and PostgreSQL, the worker, an SMTP server scripted to defer once and to refuse an address),
then a failure report that comes back later, a complaint and an unsubscribe, taken in as the pipeline
takes them in. `newsletter report ID` prints the same figures."""

from __future__ import annotations

from pathlib import Path

import pytest

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
from newsletter.bounces.intake import Intake
from newsletter.reports.campaign import campaign_detail, reply_kind
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
    from sqlalchemy import select

    from newsletter.db.models import Delivery

    return session.scalar(
        select(Delivery.message_id).where(
            Delivery.campaign_id == campaign_id, Delivery.subscriber_id == subscriber_id
        )
    )


def test_report_as_a_user_runs_it(tmp_path):
    """The installed command in a folder made by `newsletter init`: the sample issue sent to the members
    through `newsletter sink`, then `newsletter report 1`."""
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
