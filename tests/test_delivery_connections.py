"""The worker's connections (`delivery/connections.py`), driven without threads, hold to the transport's
rules: the relay's own trouble (refused, TLS, 421, a connection lost before the transaction) is marked
`relay` and costs the member nothing; a 4xx or a drop once the message was under way is the member's
try; a pooled connection the relay closed is replaced once without a word; a refusal leaves the
connection usable for the next message. Real relays on loopback: aiosmtpd (no PIPELINING) and
Postfix's smtp-sink (PIPELINING, and without it)."""

from __future__ import annotations

from delivery_support import SwitchableRelay, assert_each_once, free_port
from newsletter.delivery.connections import Connections
from newsletter.delivery.transport import Outcome, Reply, SmtpTransport, wire_data
from newsletter.testing.smtp import PostfixSmtpSink

SENDER = "bounces@example.org"
MESSAGE = wire_data(b"Subject: hello\r\n\r\nHello.\r\n.A line with a dot.\r\n")


def send_each(connections: Connections[str], recipients: list[str]) -> dict[str, Reply]:
    """Hand every message over at once, then take every reply: what the worker's loop does."""
    for number, recipient in enumerate(recipients):
        connections.submit(number, recipient, SENDER, recipient, MESSAGE)
    replies = {}
    while connections.in_flight or connections.done:
        got = connections.reply(10)
        assert got is not None, "a reply did not come within 10 s"
        replies[got[0]] = got[1]
    return replies


def counting_sessions(transport: SmtpTransport) -> list[object]:
    """The sessions `transport` opens from now on, one entry each."""
    opened: list[object] = []
    open_session = transport.open

    def counted() -> object:
        opened.append(open_session())
        return opened[-1]

    transport.open = counted  # type: ignore[method-assign]
    return opened


def test_a_relay_that_refuses_connections_is_the_relays_trouble():
    connections: Connections[str] = Connections(SmtpTransport(f"smtp://127.0.0.1:{free_port()}"), 2)
    try:
        replies = send_each(connections, ["a@example.org", "b@example.org"])
    finally:
        connections.close()
    assert {(reply.outcome, reply.relay) for reply in replies.values()} == {(Outcome.DEFERRED, True)}


def test_a_421_is_the_relays_trouble_and_a_4xx_or_a_drop_during_data_the_recipients(server):
    server.reply_at_rcpt("closing@example.org", "421 4.3.2 Service shutting down")
    server.reply_at_rcpt("grey@example.org", "451 4.7.1 Greylisted")
    server.drop_during_data("flaky@example.org")
    transport = SmtpTransport(f"smtp://127.0.0.1:{server.port}")
    connections: Connections[str] = Connections(transport, 1)
    replies = {}
    try:
        for recipient in ("closing@example.org", "grey@example.org", "flaky@example.org", "fine@example.org"):
            replies[recipient] = send_each(connections, [recipient])[recipient]
            transport.limiter.paused_until = 0.0  # the 421's pause for every sender, over for the test
    finally:
        connections.close()
    closing, grey, flaky, fine = replies.values()
    assert (closing.outcome, closing.code, closing.relay) == (Outcome.DEFERRED, 421, True)
    assert (grey.outcome, grey.code, grey.relay) == (Outcome.DEFERRED, 451, False)
    assert (flaky.outcome, flaky.relay) == (Outcome.DEFERRED, False)  # the message was on its way
    assert (fine.outcome, fine.relay) == (Outcome.SENT, False)
    assert_each_once(server.messages, {"fine@example.org"})


def test_a_pooled_connection_the_relay_dropped_is_replaced_without_a_failure(server):
    with SwitchableRelay(server.port) as relay:
        relay.up()
        connections: Connections[str] = Connections(SmtpTransport(f"smtp://127.0.0.1:{relay.port}"), 1)
        try:
            first = send_each(connections, ["first@example.org"])["first@example.org"]
            relay.down()  # the relay restarts: the pooled connection is gone
            relay.up()
            again = send_each(connections, ["second@example.org"])["second@example.org"]
        finally:
            connections.close()
    assert first.outcome == Outcome.SENT
    assert (again.outcome, again.relay) == (Outcome.SENT, False), again
    assert_each_once(server.messages, {"first@example.org", "second@example.org"})


def test_many_messages_on_few_connections_with_and_without_pipelining():
    recipients = [f"member{number}@example.org" for number in range(60)]
    for pipelining in (True, False):
        with PostfixSmtpSink(pipelining=pipelining) as sink:
            connections: Connections[str] = Connections(SmtpTransport(f"smtp://127.0.0.1:{sink.port}"), 3)
            try:
                replies = send_each(connections, recipients)
            finally:
                connections.close()
            assert {reply.outcome for reply in replies.values()} == {Outcome.SENT}, pipelining
            assert sink.count_received() == len(recipients)


def test_refusals_leave_the_connection_usable_for_the_next_message():
    """Every RCPT refused (a pipelining relay): each member gets the relay's 4xx or 5xx, not the relay's
    trouble, and the connection is reset and reused rather than dropped."""
    for options, outcome in (
        ({"soft_reject": ("rcpt",)}, Outcome.DEFERRED),
        ({"hard_reject": ("rcpt",)}, Outcome.REFUSED),
    ):
        with PostfixSmtpSink(**options) as sink:
            transport = SmtpTransport(f"smtp://127.0.0.1:{sink.port}")
            opened = counting_sessions(transport)
            connections: Connections[str] = Connections(transport, 1)
            try:
                replies = send_each(connections, [f"m{number}@example.org" for number in range(5)])
            finally:
                connections.close()
        assert {(reply.outcome, reply.relay) for reply in replies.values()} == {(outcome, False)}
        assert len(opened) == 1  # one session for all five
