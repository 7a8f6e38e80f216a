"""A tiny authoritative DNS server on loopback, so DKIM verifiers and `newsletter dns --check` can be
tested against real DNS answers without ever asking the real DNS.

    records = {"sel._domainkey.example.org": ["v=DKIM1; k=rsa; p=MIIBIjAN..."]}
    with LoopbackDNS(records) as server:
        server.port                      # UDP and TCP, both on 127.0.0.1
        server.records["x.example.org"] = ["v=spf1 -all"]   # answers follow changes at once
        server.mx["example.org"] = [(10, "mail.example.org")]  # MX records: (preference, host)

It answers TXT and MX questions for the names it holds (case-insensitively, with or without the final dot),
NOERROR with no answer for another type of a name it holds, and NXDOMAIN for every other name, with the
authoritative-answer flag set. A TXT string longer than 255 bytes (a 2048-bit RSA key's record is about
400) is split into 255-byte character-strings as DNS requires (RFC 1035 section 3.3.14, RFC 6376 section
3.6.2.2); a resolver joins them back. The server runs in background threads of this process (dnslib's
socketservers), so it needs no binary and no privileges.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Mapping
from types import TracebackType

from dnslib import MX, QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

from newsletter.testing.ports import LOOPBACK, free_port

__all__ = ["TXT_CHUNK", "LoopbackDNS", "txt_chunks"]

TXT_CHUNK = 255  # bytes in one DNS character-string
_TTL = 60
_START_ATTEMPTS = 3  # a free port we picked can be taken by someone else before both servers bind it


def txt_chunks(value: str) -> list[bytes]:
    """One TXT record's text as the 255-byte character-strings DNS carries it in."""
    data = value.encode("utf-8")
    return [data[start : start + TXT_CHUNK] for start in range(0, len(data), TXT_CHUNK)] or [b""]


def _key(name: str) -> str:
    return name.rstrip(".").lower()


class _RecordsResolver(BaseResolver):  # type: ignore[misc]
    """Answers from the owner's records dict, read at each question so a test can change them."""

    def __init__(self, owner: LoopbackDNS) -> None:
        self.owner = owner

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        reply = request.reply()  # sets QR and AA, copies the question
        question = request.q
        name = str(question.qname)
        held = {_key(held_name): values for held_name, values in self.owner.records.items()}
        exchanges = {_key(held_name): values for held_name, values in self.owner.mx.items()}
        values = held.get(_key(name))
        hosts = exchanges.get(_key(name))
        self.owner.questions.append((_key(name), QTYPE.get(question.qtype)))
        if values is None and hosts is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if question.qtype in (QTYPE.TXT, QTYPE.ANY):
            for value in values or []:
                reply.add_answer(RR(name, QTYPE.TXT, rdata=TXT(txt_chunks(value)), ttl=_TTL))
        if question.qtype in (QTYPE.MX, QTYPE.ANY):
            for preference, host in hosts or []:
                reply.add_answer(RR(name, QTYPE.MX, rdata=MX(host, preference), ttl=_TTL))
        return reply


class LoopbackDNS:
    """An authoritative DNS server for the given TXT (and MX) records, on one free loopback port, UDP
    and TCP."""

    def __init__(
        self,
        records: Mapping[str, list[str]] | None = None,
        mx: Mapping[str, list[tuple[int, str]]] | None = None,
    ) -> None:
        self.records: dict[str, list[str]] = dict(records or {})
        self.mx: dict[str, list[tuple[int, str]]] = dict(mx or {})
        self.questions: list[tuple[str, str]] = []  # (name, type) of every question asked, in order
        self.host = LOOPBACK
        self.port = 0
        self._servers: list[DNSServer] = []

    def start(self) -> LoopbackDNS:
        """Bind UDP and TCP on the same free port (trying another port if one was taken meanwhile)."""
        resolver = _RecordsResolver(self)
        quiet = DNSLogger(log="-request,-reply,-truncated,-error", prefix=False, logf=lambda _line: None)
        for attempt in range(_START_ATTEMPTS):
            port = free_port()
            servers: list[DNSServer] = []
            try:
                for tcp in (False, True):
                    servers.append(DNSServer(resolver, address=LOOPBACK, port=port, tcp=tcp, logger=quiet))
            except OSError as error:
                for server in servers:
                    server.server.server_close()
                if error.errno != errno.EADDRINUSE or attempt == _START_ATTEMPTS - 1:
                    raise
                continue
            for server in servers:
                server.start_thread()
            self._servers = servers
            self.port = port
            return self
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Shut both servers down and close their sockets."""
        for server in self._servers:
            with contextlib.suppress(Exception):
                server.stop()
            server.server.server_close()
        self._servers = []

    def __enter__(self) -> LoopbackDNS:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
