"""`newsletter serve --proxies N` behind a real reverse proxy: Debian's nginx on loopback in front of
the real server (waitress, a child process), visitors on different loopback addresses (all of
127.0.0.0/8 is loopback), nothing set in-process.

nginx appends the address it sees to X-Forwarded-For (`$proxy_add_x_forwarded_for`), so with one
proxy trusted the visitor's address is the header's last entry, and whatever the visitor wrote in
front of it is ignored. Without `--proxies` the header is ignored altogether.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from newsletter.audience.service import Audience
from newsletter.db.models import ConsentRecord, Subscriber
from newsletter.testing.processes import ServeProcess
from newsletter.testing.smtp import RecordingSMTPServer
from serve_support import NginxProxy, Visitor
from web_support import web_settings

FORGED = {"X-Forwarded-For": "203.0.113.7"}


@pytest.fixture
def settings(tmp_path):
    """A migrated SQLite database and a relay that takes every email."""
    with RecordingSMTPServer() as smtp:
        settings = web_settings(f"sqlite:///{tmp_path / 'newsletter.sqlite3'}", smtp.port)
        audience = Audience.open(settings)
        audience.upgrade()
        audience.close()
        yield settings


def recorded_address(settings, email: str) -> str | None:
    """The client address kept in the sign-up's consent record."""
    audience = Audience.open(settings)
    try:
        with audience.store.database.session() as session:
            return session.scalar(
                select(ConsentRecord.ip_address)
                .join(Subscriber, Subscriber.id == ConsentRecord.subscriber_id)
                .where(Subscriber.email_key == email.lower(), ConsentRecord.action == "subscribed")
            )
    finally:
        audience.close()


def signed_up(answer) -> bool:
    return answer.status == 200 and "Check your email" in answer.text


def test_behind_one_proxy_each_visitor_is_known_by_their_own_address(settings):
    with ServeProcess(settings, "--proxies", "1") as server, NginxProxy(server.port) as nginx:
        for source, email in (("127.0.0.2", "ann@example.org"), ("127.0.0.3", "bo@example.org")):
            assert signed_up(Visitor(nginx.port, source).subscribe(email))
            assert recorded_address(settings, email) == source
        # A forged header is not the visitor's address: nginx appends the real one, and that is used.
        assert signed_up(Visitor(nginx.port, "127.0.0.4").subscribe("cy@example.org", headers=FORGED))
        assert recorded_address(settings, "cy@example.org") == "127.0.0.4"
        assert "Traceback" not in server.log()


def test_behind_one_proxy_the_sign_up_limit_is_per_visitor(settings):
    with ServeProcess(settings, "--proxies", "1") as server, NginxProxy(server.port) as nginx:
        busy = Visitor(nginx.port, "127.0.0.5")
        busy.request("GET", "/subscribe")
        for _ in range(30):  # the per-client limit (30 in 10 minutes) counts forms in error too
            assert busy.subscribe("").status == 400
        assert busy.subscribe("busy@example.org").status == 429
        # Claiming to be someone else does not get round it.
        assert busy.subscribe("busy@example.org", headers={"X-Forwarded-For": "127.0.0.6"}).status == 429
        # Other visitors behind the same proxy are not held back, even one claiming the busy address.
        assert signed_up(Visitor(nginx.port, "127.0.0.6").subscribe("dee@example.org"))
        claim = {"X-Forwarded-For": "127.0.0.5"}
        assert signed_up(Visitor(nginx.port, "127.0.0.7").subscribe("eve@example.org", headers=claim))
        assert recorded_address(settings, "eve@example.org") == "127.0.0.7"


def test_behind_two_proxies_the_visitor_is_the_address_the_first_one_saw(settings):
    with (
        ServeProcess(settings, "--proxies", "2") as server,
        NginxProxy(server.port) as inner,
        NginxProxy(inner.port) as outer,
    ):
        assert signed_up(Visitor(outer.port, "127.0.0.8").subscribe("hal@example.org", headers=FORGED))
        assert recorded_address(settings, "hal@example.org") == "127.0.0.8"


def test_without_proxies_a_forwarded_for_header_is_ignored(settings):
    with ServeProcess(settings) as server:
        # Straight to the server: the header is the visitor's own invention.
        assert signed_up(Visitor(server.port, "127.0.0.2").subscribe("fay@example.org", headers=FORGED))
        assert recorded_address(settings, "fay@example.org") == "127.0.0.2"
        # Behind a proxy but not told so: every visitor is the proxy (what --proxies 1 is for).
        with NginxProxy(server.port) as nginx:
            assert signed_up(Visitor(nginx.port, "127.0.0.3").subscribe("gus@example.org", headers=FORGED))
        assert recorded_address(settings, "gus@example.org") == "127.0.0.1"
