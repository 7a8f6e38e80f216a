"""Message-IDs: one per campaign and member, kept for every re-send of that message, and never the same
for another campaign, even one with the same numbers in a database built afresh (providers drop a
Message-ID they have seen before). SQLite and PostgreSQL both.
"""

from __future__ import annotations

import re
import uuid

import pytest

from delivery_support import (
    SAMPLE_SLUG,
    delivery_settings,
    ledger,
    numbered_members,
    open_sending,
    subscriber_id,
    work_until_finished,
)
from newsletter.testing.smtp import RecordingSMTPServer

DOMAIN = "health-equity-network.example.org"


@pytest.fixture
def second_database_url(database_url, request, tmp_path):
    """Another empty database on the same engine."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'second.sqlite3'}"
        return
    server = request.getfixturevalue("postgres")
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield server.create_database(name)
    server.drop_database(name)


def send_once(database_url: str, members) -> tuple[int, dict[str, tuple[int, str, str]]]:
    """A fresh database, one campaign to everyone; per address: member id, the ledger's and the received Message-ID."""
    with RecordingSMTPServer() as server:
        server.reply_at_data("member001@example.org", "451 4.3.0 Try again later", times=1)
        with open_sending(delivery_settings(database_url, server.port), members) as sending:
            campaign, _ = sending.send(SAMPLE_SLUG, ["everyone"])
            work_until_finished(sending, campaign.id, lease_seconds=30, retry_base_seconds=0.01)
            rows = ledger(sending, campaign.id)
            received = {message.rcpt_tos[0]: message.message()["Message-ID"] for message in server.messages}
            return campaign.id, {
                address: (subscriber_id(sending, address), row.message_id, received[address])
                for address, row in rows.items()
            }


def test_a_database_built_afresh_gives_its_campaigns_new_message_ids(
    database_url, second_database_url, tmp_path
):
    members = numbered_members(tmp_path / "members.csv", 3)
    first_id, first = send_once(database_url, members)
    second_id, second = send_once(second_database_url, members)

    assert first_id == second_id == 1
    assert first.keys() == second.keys()
    for address in first:
        member, kept, got = first[address]
        assert second[address][0] == member  # the same campaign and member numbers in both databases
        assert got == kept  # what was sent is what the ledger keeps (the retried member's too)
        assert re.fullmatch(rf"<nl\.1\.[0-9a-z]{{10,}}\.{member}@{re.escape(DOMAIN)}>", kept), kept
        assert second[address][1] != kept, address
    tags = {kept.split(".")[2] for _, kept, _ in first.values()}
    assert len(tags) == 1  # one random-looking part for the whole campaign
