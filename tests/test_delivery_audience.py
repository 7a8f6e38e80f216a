"""Who gets a campaign: each member of its audience exactly once, and nobody who left, bounced or was erased.

What counts is what the SMTP server received (its RCPT addresses), compared with the audience worked out
independently by SQL; every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import exists, select

from delivery_support import (
    SAMPLE_SLUG,
    assert_each_once,
    audience_emails,
    campaign_status,
    delivery_settings,
    ledger,
    member_emails,
    member_row,
    open_sending,
    recipients,
    write_members,
)
from newsletter.audience import members
from newsletter.audience.service import Audience
from newsletter.db.models import MailingList, Status, Subscriber, Subscription, Suppression
from newsletter.delivery import campaigns
from newsletter.delivery.message import sender_domain


@pytest.fixture
def sample_sending(database_url, server):
    """The 400-member sample in a fresh database, sending to the recording server."""
    with open_sending(delivery_settings(database_url, server.port)) as sending:
        yield sending


def send_and_deliver(sending, audiences):
    campaign, size = sending.send(SAMPLE_SLUG, audiences)
    stats = sending.work(once=True, lease_seconds=30, retry_base_seconds=30)
    return campaign, size, stats


def on_list_emails(sending, slug: str) -> set[str]:
    """Mailable members on a list, by a query of this test's own."""
    on_list = (
        select(Subscription.subscriber_id)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(Subscription.subscriber_id == Subscriber.id, Subscription.subscribed, MailingList.slug == slug)
        .exists()
    )
    return member_emails(
        sending,
        on_list
        & (Subscriber.status == Status.ACTIVE)
        & ~exists().where(Suppression.email_hash == Subscriber.email_hash),
    )


def test_a_segment_gets_one_message_each(sample_sending, server):
    expected = audience_emails(sample_sending, ["housing"])
    assert len(expected) == 56

    campaign, size, stats = send_and_deliver(sample_sending, ["housing"])

    assert size == 56
    assert stats.sent == 56
    assert_each_once(server.messages, expected)
    rows = ledger(sample_sending, campaign.id)
    assert set(rows) == expected
    assert {row.status for row in rows.values()} == {"sent"}
    assert {row.attempts for row in rows.values()} == {1}
    assert campaign_status(sample_sending, campaign.id) == "sent"
    report = sample_sending.status(campaign.id)
    assert report.counts == {"sent": 56}
    assert report.campaign.recipients == 56


def test_a_union_of_segments_counts_a_member_in_both_once(sample_sending, server):
    housing = audience_emails(sample_sending, ["housing"])
    nhs = audience_emails(sample_sending, ["nhs-addresses"])
    assert housing & nhs, "the sample must have members in both segments for this test to mean anything"
    expected = housing | nhs

    campaign, size, _ = send_and_deliver(sample_sending, ["housing", "nhs-addresses"])

    assert size == len(expected) == len(housing) + len(nhs) - len(housing & nhs)
    assert_each_once(server.messages, expected)
    assert set(ledger(sample_sending, campaign.id)) == expected


def test_a_list_name_reaches_the_lists_members(sample_sending, server):
    expected = on_list_emails(sample_sending, "events")
    assert 0 < len(expected) < 400

    campaign, size, _ = send_and_deliver(sample_sending, ["events"])

    assert size == len(expected)
    assert_each_once(server.messages, expected)
    assert campaign_status(sample_sending, campaign.id) == "sent"


# --- Who must get nothing ---


HOUSING_MEMBERS = [f"h{number}@example.org" for number in range(10)]


@pytest.fixture
def housing_sending(database_url, server, tmp_path):
    """Ten members, all interested in housing (so all in the `housing` segment)."""
    rows = [
        member_row(email, name=f"Housing {n}", topics="housing") for n, email in enumerate(HOUSING_MEMBERS)
    ]
    rows.append(member_row("bounced@example.org", name="Bounced Before", topics="housing", status="bounced"))
    rows.append(
        member_row("complained@example.org", name="Complained", topics="housing", status="complained")
    )
    rows.append(member_row("left@example.org", name="Left Before", topics="housing", status="unsubscribed"))
    path = write_members(tmp_path / "housing.csv", rows)
    with open_sending(delivery_settings(database_url, server.port), path) as sending:
        yield sending


def test_unsubscribed_suppressed_bounced_and_erased_members_get_nothing(housing_sending, server):
    sending = housing_sending
    Audience(sending.store).unsubscribe("h0@example.org")
    with sending.store.database.session() as session:
        members.suppress(session, "h1@example.org", "complaint", "test")
    Audience(sending.store).erase("h2@example.org")
    assert Audience(sending.store).member("bounced@example.org").subscriber.status == Status.BOUNCED

    campaign, size, stats = send_and_deliver(sending, ["housing"])

    expected = set(HOUSING_MEMBERS[3:])
    assert size == len(expected) == 7
    assert stats.sent == 7
    assert_each_once(server.messages, expected)
    assert set(ledger(sending, campaign.id)) == expected
    never = {"h0@example.org", "h1@example.org", "h2@example.org", "bounced@example.org"}
    never |= {"complained@example.org", "left@example.org"}
    assert not never & set(recipients(server.messages))


def test_leaving_after_the_campaign_started_is_respected(housing_sending, server, tmp_path):
    """The recipients are fixed when the campaign starts: anyone who leaves before their turn is skipped,
    and someone who joins after the start waits for the next campaign."""
    sending = housing_sending
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])
    domain = sender_domain(sending.settings)
    assert campaigns.start(sending.store, campaign.id, domain)
    assert not campaigns.start(sending.store, campaign.id, domain), "a campaign starts only once"
    assert set(ledger(sending, campaign.id)) == set(HOUSING_MEMBERS)

    Audience(sending.store).unsubscribe("h4@example.org")
    with sending.store.database.session() as session:
        members.suppress(session, "h5@example.org", "complaint", "feedback loop")
    Audience(sending.store).erase("h6@example.org")
    joined = member_row("late@example.org", name="Joined Late", topics="housing")
    Audience(sending.store).import_csv(write_members(tmp_path / "late.csv", [joined]))
    assert "late@example.org" in audience_emails(sending, ["housing"])

    stats = sending.work(once=True, lease_seconds=30, retry_base_seconds=30)

    delivered = set(HOUSING_MEMBERS) - {"h4@example.org", "h5@example.org", "h6@example.org"}
    assert_each_once(server.messages, delivered)
    assert (stats.sent, stats.skipped) == (7, 2)
    rows = ledger(sending, campaign.id)
    assert rows["h4@example.org"].status == "skipped"
    assert rows["h5@example.org"].status == "skipped"
    assert "h6@example.org" not in rows  # erasure takes the member's ledger rows with them
    assert "late@example.org" not in rows
    assert {rows[email].status for email in delivered} == {"sent"}
    assert campaign_status(sending, campaign.id) == "sent"
    assert sending.status(campaign.id).counts == {"sent": 7, "skipped": 2}
    assert Audience(sending.store).member("h4@example.org").subscriber.status == Status.UNSUBSCRIBED


def test_a_campaign_to_nobody_finishes_at_once(housing_sending, server):
    for email in HOUSING_MEMBERS:
        Audience(housing_sending.store).unsubscribe(email)

    campaign, size, stats = send_and_deliver(housing_sending, ["housing"])

    assert size == 0
    assert stats.sent == 0
    assert server.messages == []
    assert campaign_status(housing_sending, campaign.id) == "sent"
