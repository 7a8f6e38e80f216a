"""A campaign that ended with failures says so, and `newsletter retry ID` sends the failed ones again.

Through the CLI (CliRunner with explicit Settings), a real aiosmtpd relay on loopback, SQLite and
PostgreSQL.
"""

from __future__ import annotations

import re

import pytest

from delivery_support import (
    SAMPLE_SLUG,
    assert_each_once,
    campaign_status,
    delivery_settings,
    ledger,
    member_row,
    open_sending,
    recipients,
    work_until_finished,
    write_members,
)
from delivery_support import (
    run_cli as run,
)

MEMBERS = [f"m{number}@example.org" for number in range(6)]
POLICY, FULL, GONE = MEMBERS[:3]
FAST_RETRY = {"lease_seconds": 30, "retry_base_seconds": 0.01}


@pytest.fixture
def sending(database_url, server, tmp_path):
    rows = [member_row(email, name=f"Member {n}", topics="housing") for n, email in enumerate(MEMBERS)]
    members = write_members(tmp_path / "members.csv", rows)
    with open_sending(delivery_settings(database_url, server.port), members) as opened:
        yield opened


def describe_line(output: str, campaign_id: int) -> str:
    (line,) = [line for line in output.splitlines() if re.match(rf"\s*{campaign_id}\s", line)]
    return line


def test_a_campaign_with_failures_says_so_and_retry_sends_them(sending, server):
    settings = sending.settings
    server.reply_at_data(POLICY, "554 5.7.1 Message refused by policy", times=1)
    server.reply_at_rcpt(FULL, "452 4.2.2 Mailbox full", times=6)
    server.reply_at_rcpt(GONE, "550 5.1.1 User unknown")
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])
    work_until_finished(sending, campaign.id, **FAST_RETRY)
    cid = str(campaign.id)
    before = ledger(sending, campaign.id)
    assert {address: row.status for address, row in before.items() if row.status != "sent"} == {
        POLICY: "failed",
        FULL: "failed",
        GONE: "bounced",
    }
    assert campaign_status(sending, campaign.id) == "sent"  # the column stays `sent`: the words say more
    assert sending.status(campaign.id).state == "sent, 2 failed"

    listed = run(settings, "campaigns")
    assert re.match(
        rf"\s*{cid}  sent, 2 failed  2023-10 +to housing .* 6/6 done$", describe_line(listed.stdout, cid)
    )
    status = run(settings, "status", cid)
    assert re.match(rf"\s*{cid}  sent, 2 failed  2023-10 ", status.stdout.splitlines()[0]), status.stdout

    result = run(settings, "retry", cid)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"Campaign {cid}: 2 failed messages queued again (attempts counted afresh); it is sending again, "
        "and a running `newsletter worker` sends them\n"
    )
    after = ledger(sending, campaign.id)
    assert {(after[a].status, after[a].attempts) for a in (POLICY, FULL)} == {("queued", 0)}
    assert after[GONE].status == "bounced"  # a bounced address is never tried again
    assert campaign_status(sending, campaign.id) == "sending"

    worked = run(settings, "worker", "--once", "--lease", "30")
    assert worked.exit_code == 0, worked.output
    assert worked.stdout == "Worker done: 2 sent, 0 deferred, 0 failed, 0 bounced, 0 skipped\n"
    assert_each_once(server.messages, set(MEMBERS) - {GONE})
    final = ledger(sending, campaign.id)
    for address in (POLICY, FULL):
        assert final[address].status == "sent"
        assert final[address].message_id == before[address].message_id  # the same message, at last delivered
    received = {message.rcpt_tos[0]: message.message()["Message-ID"] for message in server.messages}
    assert received[FULL] == before[FULL].message_id
    assert campaign_status(sending, campaign.id) == "sent"
    assert re.match(rf"\s*{cid}  sent  +2023-10 ", describe_line(run(settings, "campaigns").stdout, cid))

    again = run(settings, "retry", cid)
    assert again.exit_code == 1
    assert again.stderr == (
        f"Error: campaign {cid} has no failed messages to retry (bounced addresses are never retried)\n"
    )


def test_retry_leaves_out_members_another_campaign_has_since_reached(sending, server):
    settings = sending.settings
    server.reply_at_data(POLICY, "554 5.7.1 Message refused by policy", times=1)
    first, _ = sending.send(SAMPLE_SLUG, ["housing"])
    work_until_finished(sending, first.id, **FAST_RETRY)
    assert sending.status(first.id).state == "sent, 1 failed"
    second, size = sending.send(SAMPLE_SLUG, ["housing"])  # reaches only the member the first one did not
    assert size == 1
    work_until_finished(sending, second.id, **FAST_RETRY)

    result = run(settings, "retry", str(first.id))

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: campaign {first.id} has no failed messages to retry: the 1 member it failed got {SAMPLE_SLUG} "
        "from another campaign since\n"
    )
    assert sorted(recipients(server.messages)) == sorted(MEMBERS)
    assert ledger(sending, first.id)[POLICY].status == "failed"
    assert campaign_status(sending, first.id) == "sent"


def test_retry_refuses_a_cancelled_campaign_and_one_that_does_not_exist(sending):
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"], at="2099-06-01 10:00")
    sending.steer(campaign.id, "cancel")

    cancelled = run(sending.settings, "retry", str(campaign.id))
    assert cancelled.exit_code == 1
    assert cancelled.stderr == (
        f"Error: campaign {campaign.id} was cancelled; its failed messages are not sent again "
        "(send the issue anew to reach them)\n"
    )
    missing = run(sending.settings, "retry", "999")
    assert missing.exit_code == 1
    assert "no campaign 999; `newsletter campaigns` lists them" in missing.stderr
