"""`newsletter serve`: refuses the default secret key and a database that is behind, and otherwise runs
the pages under waitress (a real child process on loopback), stopping cleanly on SIGTERM."""

from __future__ import annotations

import dataclasses
import http.client

import pytest

from newsletter.audience.service import Audience
from newsletter.settings import DEFAULT_SECRET_KEY
from newsletter.testing.processes import ServeProcess
from test_audience_support import run_cli
from web_support import web_settings


@pytest.fixture
def settings(tmp_path):
    return web_settings(f"sqlite:///{tmp_path / 'newsletter.sqlite3'}", 25)


@pytest.fixture
def migrated(settings):
    audience = Audience.open(settings)
    audience.upgrade()
    audience.close()
    return settings


def test_serve_refuses_the_default_secret_key(migrated):
    result = run_cli(dataclasses.replace(migrated, secret_key=DEFAULT_SECRET_KEY), "serve", "--port", "0")
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: secret_key is still the default")
    assert "NEWSLETTER_SECRET_KEY" in line and "--debug" in line
    assert "Traceback" not in result.output


def test_serve_refuses_a_database_that_is_behind(settings):
    result = run_cli(settings, "serve", "--port", "0")
    assert result.exit_code == 1
    assert "run `newsletter db upgrade`" in result.stderr


def test_serve_help_names_its_options():
    result = run_cli(web_settings("sqlite://", 25), "serve", "--help")
    for option in ("--host", "--port", "--debug", "--threads", "--proxies"):
        assert option in result.output


def request(server: ServeProcess, method: str, path: str, body: str = "", headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode("utf-8")
    finally:
        connection.close()


def test_serve_runs_waitress_and_stops_on_sigterm(migrated):
    server = ServeProcess(migrated)
    with server:
        status, headers, body = request(server, "GET", "/subscribe")
        assert status == 200 and "Join the" in body
        assert headers["Server"] == "newsletter"  # waitress, with our ident
        assert headers["Referrer-Policy"] == "no-referrer"
        status, _, body = request(server, "GET", "/no-such-page")
        assert status == 404 and "Page not found" in body
        assert "Serving the subscriber pages on http://127.0.0.1:" in server.log()
        server.stop()
        assert server.process.returncode == 0, server.log()
        assert "Traceback" not in server.log()


def test_serve_with_the_default_key_in_debug_mode_only(migrated):
    settings = dataclasses.replace(migrated, secret_key=DEFAULT_SECRET_KEY)
    with ServeProcess(settings, "--debug") as server:
        status, headers, _ = request(server, "GET", "/health")
        assert status == 200 and headers.get("Server", "").startswith("Werkzeug")
        assert "Debug server (never for production)" in server.log()
