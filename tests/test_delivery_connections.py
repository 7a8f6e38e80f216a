"""The worker's connections (`delivery/connections.py`), driven without threads, hold to the transport's
rules: the relay's own trouble (refused, TLS, 421, a connection lost before the transaction) is marked
`relay` and costs the member nothing; a 4xx or a drop once the message was under way is the member's
try; a pooled connection the relay closed is replaced once without a word; a refusal leaves the
connection usable for the next message. Real relays on loopback: aiosmtpd (no PIPELINING) and
Postfix's smtp-sink (PIPELINING, and without it), and a scripted relay that shows what arrives before
each reply."""

from __future__ import annotations

import select
import socketserver
import threading

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


class ScriptedRelay(socketserver.ThreadingTCPServer):
    """A PIPELINING relay on loopback that answers each message's end of data only once the client has
    written something after it (or after `patience` seconds), counting the ends that had the next
    message's MAIL behind them: a client that waited for each reply before the next envelope, as
    before RFC 2920's pipelining of transactions, gets none and a 2-second wait a message.
    `at_end` scripts the reply to a recipient's data end: an SMTP reply, or "drop" to close."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, at_end: dict[str, str] | None = None, patience: float = 2.0) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedSession)
        self.port = self.server_address[1]
        self.at_end = at_end or {}
        self.patience = patience
        self.delivered: list[str] = []
        self.mail_behind_end = 0
        self.sessions = 0
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _ScriptedSession(socketserver.BaseRequestHandler):
    server: ScriptedRelay

    def handle(self) -> None:
        relay = self.server
        self.buffer = b""
        with relay.lock:
            relay.sessions += 1
        self.say("220 scripted ESMTP")
        recipient = ""
        while line := self.line():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.say("250-scripted\r\n250-PIPELINING\r\n250 8BITMIME")
            elif verb == b"MAIL":
                self.say("250 2.1.0 Ok")
            elif verb == b"RCPT":
                recipient = line.decode().split("<", 1)[1].split(">", 1)[0]
                self.say("250 2.1.5 Ok")
            elif verb == b"DATA":
                self.say("354 End data with <CR><LF>.<CR><LF>")
                while self.line() not in (b".\r\n", b""):
                    pass
                if self.more_within(relay.patience):
                    with relay.lock:
                        relay.mail_behind_end += 1
                reply = relay.at_end.get(recipient, "250 2.0.0 Ok: queued")
                if reply == "drop":
                    return
                if reply.startswith("250"):
                    with relay.lock:
                        relay.delivered.append(recipient)
                self.say(reply)
            elif verb == b"RSET":
                self.say("250 2.0.0 Ok")
            elif verb == b"QUIT":
                self.say("221 2.0.0 Bye")
                return
            else:
                self.say("502 5.5.2 Error: command not recognized")

    def line(self) -> bytes:
        """The next line the client wrote, with its CRLF; empty once it closed the connection."""
        while b"\r\n" not in self.buffer:
            data = self.request.recv(65536)
            if not data:
                return b""
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line + b"\r\n"

    def more_within(self, seconds: float) -> bool:
        """Whether the client has written more than was read, or does within `seconds`."""
        return bool(self.buffer) or bool(select.select([self.request], [], [], seconds)[0])

    def say(self, reply: str) -> None:
        self.request.sendall(reply.encode() + b"\r\n")


def test_the_next_message_follows_a_message_without_waiting_for_its_reply():
    """With PIPELINING, a message's data and the next message's MAIL, RCPT and DATA go together: one round
    trip a message. The scripted relay holds each reply to a data end until more arrives, so a client
    that waited would take 2 s a message; this one takes none of that."""
    relay = ScriptedRelay()
    recipients = [f"member{number}@example.org" for number in range(8)]
    connections: Connections[str] = Connections(SmtpTransport(f"smtp://127.0.0.1:{relay.port}"), 1)
    try:
        replies = send_each(connections, recipients)
    finally:
        connections.close()
        relay.close()
    assert {reply.outcome for reply in replies.values()} == {Outcome.SENT}
    assert relay.delivered == recipients  # in order, each once, on one session
    assert relay.sessions == 1
    assert relay.mail_behind_end == len(recipients) - 1  # every data end but the last had the next behind it


def test_a_message_pipelined_behind_a_refused_or_dropped_one_is_sent_and_keeps_its_own_result():
    """The relay refuses one message at its data end and closes the connection at another's: the refusal
    and the drop are those members' results; the messages written behind them are still sent, once."""
    relay = ScriptedRelay(
        at_end={"refused@example.org": "550 5.7.1 Message refused", "dropped@example.org": "drop"},
        patience=0.2,
    )
    recipients = [
        "a@example.org",
        "refused@example.org",
        "b@example.org",
        "dropped@example.org",
        "c@example.org",
    ]
    connections: Connections[str] = Connections(SmtpTransport(f"smtp://127.0.0.1:{relay.port}"), 1)
    try:
        replies = send_each(connections, recipients)
    finally:
        connections.close()
        relay.close()
    outcome = {recipient: (reply.outcome, reply.relay) for recipient, reply in replies.items()}
    assert outcome == {
        "a@example.org": (Outcome.SENT, False),
        "refused@example.org": (Outcome.REFUSED, False),
        "b@example.org": (Outcome.SENT, False),
        "dropped@example.org": (Outcome.DEFERRED, False),  # the message was on its way: this member's try
        "c@example.org": (Outcome.SENT, False),  # moved to a new connection, not failed with the drop
    }
    assert sorted(relay.delivered) == ["a@example.org", "b@example.org", "c@example.org"]
    assert relay.sessions == 2
