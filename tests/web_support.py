"""Helpers shared by the web tests (no tests of its own): a real app on a real database and SMTP server.

`WebSite` is the subscriber pages built by `create_app` over a migrated database (SQLite file or the
throwaway PostgreSQL, from the `database_url` fixture) sending mail to a `RecordingSMTPServer`, with a
Flask test client that keeps cookies like a browser. Nothing of our own is replaced or mocked.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import MetaData, select
from werkzeug.test import TestResponse

from newsletter.audience.service import Audience
from newsletter.audience.store import Store
from newsletter.db.models import ConsentRecord, Subscriber
from newsletter.settings import Settings
from newsletter.testing.smtp import RecordingSMTPServer
from newsletter.tokens import Tokens
from newsletter.web.app import close_app, create_app
from newsletter.web.ratelimit import Limits

REPO_ROOT = Path(__file__).resolve().parents[1]
SECRET = "a-long-secret-key-for-the-web-tests-only-0123456789"
BASE_URL = "http://news.example.test"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(re.escape(BASE_URL) + r"(/[a-z]+/[A-Za-z0-9._-]+)")
TOKEN_PAGES = ("confirm", "preferences", "unsubscribe", "data", "email")


def web_settings(database_url: str, smtp_port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "smtp_url": f"smtp://127.0.0.1:{smtp_port}",
        "base_url": BASE_URL,
        "secret_key": SECRET,
        "issues_dir": REPO_ROOT / "issues",
        "theme_dir": REPO_ROOT / "templates",
        "vocabulary_dir": REPO_ROOT / "subscribers",
    }
    values.update(overrides)
    return Settings(**values)


@dataclasses.dataclass
class WebSite:
    """The app, a browser-like client, the member database and the mail that went out."""

    app: Flask
    client: FlaskClient
    settings: Settings
    store: Store  # the app's own Store
    audience: Audience  # the CLI's member calls, over that Store
    smtp: RecordingSMTPServer
    tokens: Tokens

    # --- Requests ---

    def form(self, path: str) -> tuple[TestResponse, str]:
        """GET a page with a form; its CSRF token (the client now holds the matching cookie)."""
        response = self.client.get(path)
        found = CSRF_INPUT.search(response.text)
        assert found, f"{path}: no CSRF token in the page ({response.status})"
        return response, found.group(1)

    def submit(self, path: str, data: dict[str, Any], form_path: str | None = None) -> TestResponse:
        """Open the form's page, then POST `data` with its CSRF token, as a browser does."""
        _, token = self.form(form_path or path)
        return self.client.post(path, data={"csrf_token": token, **data})

    def subscribe(self, email: str, **fields: Any) -> TestResponse:
        data = {"email": email, "lists": ["newsletter"], "consent": "yes", **fields}
        return self.submit("/subscribe", data)

    def fresh_client(self) -> FlaskClient:
        """Another browser: no cookies."""
        return self.app.test_client()

    # --- Mail ---

    def mail(self, count: int) -> list[EmailMessage]:
        assert self.smtp.wait_for(count, timeout=10), (
            f"expected {count} messages, got {len(self.smtp.messages)}"
        )
        return [received.message() for received in self.smtp.messages]

    def last_link(self, to: str) -> str:
        """The path of the link in the newest message to `to`, checked to be in both parts."""
        messages = [m for m in self.mail(1) if m["To"].addresses[0].addr_spec.lower() == to.lower()]
        assert messages, f"no mail to {to}"
        message = messages[-1]
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        [path] = set(LINK.findall(text))
        assert f"{BASE_URL}{path}" in html
        return path

    # --- Database ---

    def member(self, email: str) -> Subscriber | None:
        with self.store.database.session() as session:
            return session.scalar(select(Subscriber).where(Subscriber.email_key == email.lower()))

    def consent(self, email: str) -> list[ConsentRecord]:
        member = self.member(email)
        assert member is not None, email
        with self.store.database.session() as session:
            return list(
                session.scalars(
                    select(ConsentRecord)
                    .where(ConsentRecord.subscriber_id == member.id)
                    .order_by(ConsentRecord.id)
                )
            )

    def snapshot(self, *, with_rate_limits: bool = True) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, to show that something changed nothing (a refused form still
        counts towards the rate limit: `with_rate_limits=False` leaves the counters out)."""
        metadata = MetaData()
        metadata.reflect(self.store.database.engine)
        with self.store.database.engine.connect() as connection:
            return {
                name: sorted(map(tuple, connection.execute(table.select())), key=repr)
                for name, table in sorted(metadata.tables.items())
                if with_rate_limits or name != "rate_limits"
            }

    def key_of(self, subscriber_id: int) -> str | None:
        """A member's key by id (None if there is none), as `Tokens.read` asks for it."""
        with self.store.database.session() as session:
            return session.scalar(select(Subscriber.link_key).where(Subscriber.id == subscriber_id))

    def token(self, purpose: str, email: str, age: int = 0) -> str:
        member = self.member(email)
        assert member is not None, email
        return self.tokens.make(purpose, member.id, member.link_key, issued_at=int(time.time()) - age)

    def active_member(self, email: str, **fields: Any) -> str:
        """Sign up and confirm through the pages; returns a preferences path."""
        self.subscribe(email, **fields)
        confirm = self.last_link(email)
        response = self.submit(confirm, {})
        assert response.status_code == 200, response.text
        member = self.member(email)
        assert member is not None and member.status.value == "active"
        return f"/preferences/{self.tokens.make('preferences', member.id, member.link_key)}"


def open_site(database_url: str, *, limits: Limits | None = None, **overrides: Any) -> Iterator[WebSite]:
    """A migrated database, an SMTP server and the app; use as the body of a fixture."""
    with RecordingSMTPServer() as smtp:
        settings = web_settings(database_url, smtp.port, **overrides)
        store = Store.open(settings)
        store.upgrade()
        app = create_app(settings, store=store, limits=limits)
        try:
            yield WebSite(app, app.test_client(), settings, store, Audience(store), smtp, Tokens(SECRET))
        finally:
            close_app(app)


def forged(signed: str) -> str:
    """`signed` (a token, or a path or address ending in one) with its signature changed by a character:
    the first one, which carries six bits of it (the last may carry padding that decodes the same)."""
    head, signature = signed.rsplit(".", 1)
    return f"{head}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
