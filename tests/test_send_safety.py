"""Safety rails on sending: an issue goes to each member once, no time in the past, a member's own
version seen before sending, `status` that says when nobody is sending, and who was not reached.

On SQLite and PostgreSQL (the `database_url` fixture), against a real SMTP server on loopback.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import urllib.request
from zoneinfo import ZoneInfo

import pytest

from delivery_support import (
    SAMPLE_SLUG,
    assert_each_once,
    audience_emails,
    ledger,
    other_sending,
    recipients,
)
from delivery_support import (
    run_cli as run,
)
from newsletter.db.models import Campaign
from newsletter.delivery import campaigns
from newsletter.delivery import ledger as ledger_rules
from newsletter.delivery.message import sender_domain
from newsletter.errors import UserError
from newsletter.preview import Personal, make_server, preview_url

GWENT_REPORT = "Building a Fairer Gwent"
# Welsh council members of the sample: one who picked `local-government` (the Gwent report's topic),
# one who picked only `housing`, so topic targeting leaves the Gwent report out of her email.
GETS_GWENT = "zara.begum@blaenau-gwent.gov.example"
MISSES_GWENT = "laura.morgan@blaenau-gwent.gov.example"


def work(sending) -> None:
    sending.work(once=True, lease_seconds=30, retry_base_seconds=0.05)


# --- An issue goes to each member once ---


def test_sending_an_issue_again_to_the_same_members_is_refused(sending, server):
    first = run(sending.settings, "send", SAMPLE_SLUG, "--to", "housing", "--yes")
    assert first.exit_code == 0, first.output
    work(sending)
    housing = audience_emails(sending, ["housing"])
    assert_each_once(server.messages, housing)

    again = run(sending.settings, "send", SAMPLE_SLUG, "--to", "housing", "--yes")

    assert again.exit_code == 1
    assert again.stderr == (
        f"Error: all {len(housing)} members of housing already got 2023-10 (or are being sent it) from an "
        "earlier campaign, so this one would send nothing; add --resend to send it to them again\n"
    )
    assert len(sending.campaigns()) == 1  # nothing written
    work(sending)
    assert len(server.messages) == len(housing)


def test_a_wider_audience_gets_only_the_members_who_did_not_have_it(sending, server):
    sending.send(SAMPLE_SLUG, ["housing"])
    work(sending)
    housing, everyone = audience_emails(sending, ["housing"]), audience_emails(sending, ["everyone"])
    server.reset()

    result = run(sending.settings, "send", SAMPLE_SLUG, "--to", "everyone", "--yes")

    assert result.exit_code == 0, result.output
    overlap = len(housing & everyone)
    assert f"everyone: {len(everyone) - overlap} members as of now" in result.stdout
    assert (
        f"{overlap} members of the audience already got 2023-10 from an earlier campaign and will not "
        "get it again (--resend sends to them too)"
    ) in result.stdout
    work(sending)
    assert_each_once(server.messages, everyone - housing)


def test_resend_knowingly_sends_it_again(sending, server):
    sending.send(SAMPLE_SLUG, ["housing"])
    work(sending)
    housing = audience_emails(sending, ["housing"])
    server.reset()

    result = run(sending.settings, "send", SAMPLE_SLUG, "--to", "housing", "--resend", "--yes")

    assert result.exit_code == 0, result.output
    assert f"--resend: {len(housing)} of them already got 2023-10 and will get it again" in result.stdout
    work(sending)
    assert_each_once(server.messages, housing)


def test_two_campaigns_of_one_issue_scheduled_together_send_each_member_once(sending, server):
    """Neither had started when the other was made; whichever starts second leaves the overlap out."""
    sending.send(SAMPLE_SLUG, ["housing"])
    sending.send(SAMPLE_SLUG, ["everyone"])
    second_worker = other_sending(sending)
    try:
        work(sending)
        second_worker.work(once=True, lease_seconds=30, retry_base_seconds=0.05)
    finally:
        second_worker.close()
    assert_each_once(server.messages, audience_emails(sending, ["housing", "everyone"]))


def test_a_campaign_that_failed_to_reach_members_does_not_count_as_having_sent_them_it(sending, server):
    """A member whose copy the relay refused for good, or whose campaign was cancelled first, can be sent it."""
    refused = sorted(audience_emails(sending, ["housing"]))[0]
    server.reply_at_rcpt(refused, "550 5.7.1 Message refused by policy")
    first, _ = sending.send(SAMPLE_SLUG, ["housing"])
    work(sending)
    assert ledger(sending, first.id)[refused].status == "failed"
    server.reset()

    _, size = sending.send(SAMPLE_SLUG, ["housing"])
    work(sending)
    assert size == 1
    assert recipients(server.messages) == [refused]


def test_already_sent_is_one_rule_for_the_count_and_the_snapshot(sending):
    sending.send(SAMPLE_SLUG, ["housing"])
    work(sending)
    planned = sending.plan(SAMPLE_SLUG, ["everyone"])
    campaign = sending.schedule(planned)
    campaigns.start(sending.store, campaign.id, sender_domain(sending.settings))
    assert len(ledger(sending, campaign.id)) == planned.to_send == planned.members - planned.already


# --- When ---


def test_a_time_in_the_past_is_refused_naming_the_time_now(sending):
    result = run(sending.settings, "send", SAMPLE_SLUG, "--to", "housing", "--at", "2020-01-01", "--yes")
    assert result.exit_code == 1
    now = dt.datetime.now(ZoneInfo("Europe/London"))
    message = result.stderr
    assert message.startswith("Error: --at '2020-01-01' is in the past: it is now ")
    shown = re.search(r"it is now (\d{4}-\d\d-\d\d \d\d:\d\d) in Europe/London", message)
    assert shown, message
    assert abs(dt.datetime.strptime(shown[1], "%Y-%m-%d %H:%M") - now.replace(tzinfo=None)) < dt.timedelta(
        minutes=2
    )
    assert sending.campaigns() == []


def test_the_current_minute_counts_as_now(sending):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    at = now.replace(second=0, microsecond=0)
    campaigns.refuse_past(at, "this minute", "Europe/London", now=now)
    with pytest.raises(UserError, match="is in the past"):
        campaigns.refuse_past(at - dt.timedelta(minutes=1), "last minute", "Europe/London", now=now)


# --- What a member will get, before sending ---


def test_preview_as_a_member_shows_her_version_without_the_gwent_report(sending):
    issue = sending.editor.check(SAMPLE_SLUG).issue
    (misses,) = sending.foresee(issue, as_email=MISSES_GWENT)
    (gets,) = sending.foresee(issue, as_email=GETS_GWENT)
    assert any(GWENT_REPORT in part for part in misses.left_out), misses.left_out
    assert not any(GWENT_REPORT in part for part in gets.left_out)

    views = {}
    for email in (MISSES_GWENT, GETS_GWENT):
        profiles = sending.profiles(as_email=email)

        def personalise(issue, profiles=profiles):
            from newsletter.delivery.lookahead import describe, foresee

            return [Personal(describe(view), view.issue, view.text_only) for view in foresee(issue, profiles)]

        server = make_server(sending.editor, SAMPLE_SLUG, port=0, personalise=personalise)
        try:
            import threading

            threading.Thread(target=server.serve_forever, daemon=True).start()
            with urllib.request.urlopen(preview_url(server) + "email.html?view=0", timeout=10) as response:
                views[email] = response.read().decode()
        finally:
            server.shutdown()
            server.server_close()
    assert GWENT_REPORT not in views[MISSES_GWENT]
    assert GWENT_REPORT in views[GETS_GWENT]


def test_the_preview_matches_what_the_worker_sends_her(sending, server):
    issue = sending.editor.check(SAMPLE_SLUG).issue
    (view,) = sending.foresee(issue, as_email=MISSES_GWENT)
    previewed = sending.editor.renderer.render(view.issue).text
    sending.send(SAMPLE_SLUG, ["everyone"])
    work(sending)
    (received,) = [m for m in server.messages if m.rcpt_tos == (MISSES_GWENT,)]
    text = received.message().get_body(("plain",)).get_content()
    assert GWENT_REPORT not in text
    # The same sections in the same order: the headings of the text part agree line for line.
    headings = [line for line in previewed.splitlines() if line.isupper() and len(line) > 3]
    assert headings and headings == [line for line in text.splitlines() if line.isupper() and len(line) > 3]


def test_preview_of_a_segment_lists_each_distinct_email_with_its_members(sending):
    issue = sending.editor.check(SAMPLE_SLUG).issue
    views = sending.foresee(issue, segment="everyone")
    assert sum(view.members for view in views) == len(audience_emails(sending, ["everyone"]))
    assert len(views) > 1
    assert [view.members for view in views] == sorted((view.members for view in views), reverse=True)
    assert any(view.left_out for view in views)


def test_preview_as_someone_who_is_not_a_member_is_one_clear_error(sending):
    result = run(sending.settings, "preview", SAMPLE_SLUG, "--as", "nobody@example.org", "--port", "0")
    assert result.exit_code == 1
    assert result.stderr == "Error: nobody@example.org: no member with this address\n"


def test_a_test_send_as_a_member_is_her_version(sending, server):
    result = run(sending.settings, "send", SAMPLE_SLUG, "--test", "editor@example.org", "--as", MISSES_GWENT)
    assert result.exit_code == 0, result.output
    (received,) = server.messages
    assert received.rcpt_tos == ("editor@example.org",)
    message = received.message()
    assert message["Subject"].startswith("[TEST] ")
    assert GWENT_REPORT not in message.get_body(("plain",)).get_content()
    assert GWENT_REPORT not in message.get_body(("html",)).get_content()


# --- Following a campaign ---


def test_status_says_no_worker_is_running_instead_of_a_time_left(sending):
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])
    assert campaigns.start(sending.store, campaign.id, sender_domain(sending.settings))

    result = run(sending.settings, "status", str(campaign.id))

    assert result.exit_code == 0
    assert "time left" not in result.stdout
    assert (
        "no worker is running: 56 messages are waiting and nothing is sending them; start `newsletter worker`"
        in result.stdout
    )


def test_status_of_a_campaign_due_long_ago_that_nothing_started_says_no_worker_is_running(sending):
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])
    assert "no worker is running" not in run(sending.settings, "status", str(campaign.id)).stdout  # just made
    with sending.store.database.session() as session:
        moved = session.get(Campaign, campaign.id)
        moved.send_at -= dt.timedelta(minutes=5)
    result = run(sending.settings, "status", str(campaign.id))
    assert re.search(r"no worker is running: it was due at .* UTC and nothing has started it", result.stdout)


def test_a_live_lease_means_a_worker_is_sending(sending):
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])
    campaigns.start(sending.store, campaign.id, sender_domain(sending.settings))
    with sending.store.database.session() as session:
        ledger_rules.claim(session, "worker-1", 10, lease_seconds=60)
    report = sending.status(campaign.id)
    assert not report.no_worker
    assert report.activity is not None and report.activity.live_leases == 10


def test_status_failed_lists_who_was_not_reached_with_the_relays_reply(sending, server):
    members = sorted(audience_emails(sending, ["housing"]))
    refused, gone, slow = members[:3]
    server.reply_at_rcpt(refused, "550 5.7.1 Message refused by the NHS gateway's policy")
    server.reply_at_rcpt(gone, "550 5.1.1 User unknown")
    server.reply_at_rcpt(slow, "451 4.7.1 Greylisted, try again later")
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])
    sending.work(once=True, lease_seconds=30, retry_base_seconds=600)

    result = run(sending.settings, "status", str(campaign.id), "--failed")

    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if "@" in line}
    assert set(lines) == {refused, gone, slow}
    assert re.search(
        r"\bfailed +after 1 attempt .*550 5\.7\.1 Message refused by the NHS gateway's policy", lines[refused]
    )
    assert re.search(r"\bbounced +after 1 attempt .*550 5\.1\.1 User unknown", lines[gone])
    assert re.search(r"\bdeferred +after 1 attempt .*451 4\.7\.1 Greylisted", lines[slow])
    assert "waiting to retry deferred messages from" in result.stdout


def test_the_worker_says_how_each_campaign_went(sending, server):
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])
    result = run(sending.settings, "worker", "--once", "--lease", "30")
    assert result.exit_code == 0, result.output
    assert f"campaign {campaign.id} (2023-10): sent: 56 sent of 56\n" in result.stderr


def test_a_worker_in_a_log_says_how_far_it_has_got_every_few_seconds(sending):
    """Not on a terminal (a service's journal): a dated line while it sends, then how it ended."""
    slow = dataclasses.replace(sending.settings, max_rate=8.0)  # 56 members take about 7 s
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])
    result = run(slow, "worker", "--once", "--lease", "30")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    during = [
        line
        for line in lines
        if re.fullmatch(
            rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC campaign {campaign.id} \(2023-10\): \d+/56 done \(\d+%\).*",
            line,
        )
    ]
    assert during, result.stderr
    assert lines[-1] == f"campaign {campaign.id} (2023-10): sent: 56 sent of 56"
