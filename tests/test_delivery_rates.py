"""Sending rates, measured where they matter: the times at which the SMTP server received each message.

`max_rate` caps messages a second overall, `domain_rate` per recipient domain. Two sending threads are used,
so it is the limiter, not one slow connection, that spaces the messages. SQLite and PostgreSQL both.
"""

from __future__ import annotations

from collections import defaultdict

from delivery_support import (
    SAMPLE_SLUG,
    assert_each_once,
    delivery_settings,
    member_emails,
    numbered_members,
    open_sending,
)
from newsletter.testing.smtp import Received, RecordingSMTPServer

TOLERANCE = 0.1  # seconds: jitter between the limiter's slot and the server's clock (first connection set-up)


def times(messages: list[Received]) -> list[float]:
    return sorted(received.received_monotonic for received in messages)


def span(messages: list[Received]) -> float:
    moments = times(messages)
    return moments[-1] - moments[0]


def busiest_second(messages: list[Received]) -> int:
    """The most messages received within any one second."""
    moments = times(messages)
    return max(sum(1 for other in moments[i:] if other - start < 1.0) for i, start in enumerate(moments))


def by_domain(messages: list[Received]) -> dict[str, list[Received]]:
    found: dict[str, list[Received]] = defaultdict(list)
    for received in messages:
        found[received.rcpt_tos[0].rpartition("@")[2]].append(received)
    return found


def deliver(database_url, tmp_path, count, domains, **rates):
    """Send the sample issue to `count` numbered members on `domains`; returns what the server received."""
    with RecordingSMTPServer() as server:
        settings = delivery_settings(database_url, server.port, concurrency=2, **rates)
        members = numbered_members(tmp_path / "members.csv", count, domains)
        with open_sending(settings, members) as sending:
            sending.send(SAMPLE_SLUG, ["everyone"])
            stats = sending.work(once=True, lease_seconds=60, retry_base_seconds=60)
            assert stats.sent == count
            assert_each_once(server.messages, member_emails(sending))
        return server.messages


def test_max_rate_caps_messages_per_second(database_url, tmp_path):
    rate, count = 20.0, 30
    messages = deliver(database_url, tmp_path, count, ("a.example", "b.example", "c.example"), max_rate=rate)

    assert span(messages) >= (count - 1) / rate - TOLERANCE
    assert span(messages) < (count - 1) / rate + 2.0, "far slower than the rate asks"
    assert busiest_second(messages) <= rate + 2


def test_domain_rate_caps_one_domain(database_url, tmp_path):
    rate, count = 5.0, 10
    messages = deliver(database_url, tmp_path, count, ("nhs.example",), domain_rate=rate)

    assert span(messages) >= (count - 1) / rate - TOLERANCE
    assert busiest_second(messages) <= rate + 1


def test_domain_rate_limits_each_domain_not_the_whole_send(database_url, tmp_path):
    rate, per_domain = 5.0, 8
    messages = deliver(
        database_url, tmp_path, 2 * per_domain, ("one.example", "two.example"), domain_rate=rate
    )

    domains = by_domain(messages)
    assert sorted(domains) == ["one.example", "two.example"]
    for domain, received in domains.items():
        assert len(received) == per_domain
        assert span(received) >= (per_domain - 1) / rate - TOLERANCE, domain
        assert busiest_second(received) <= rate + 1, domain
    # The two domains were sent side by side: the whole send took about as long as one domain's share,
    # far less than sixteen messages at five a second would.
    assert span(messages) < (2 * per_domain - 1) / rate - 0.8


def test_without_rates_nothing_waits(database_url, tmp_path):
    messages = deliver(database_url, tmp_path, 20, ("example.org",), max_rate=0.0, domain_rate=0.0)
    assert span(messages) < 1.0  # 20 messages at 5 a second would take 3.8 s
