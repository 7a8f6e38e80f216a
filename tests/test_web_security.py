"""Headers, error pages, cookies and the rule that GET changes nothing, over every page."""

from __future__ import annotations

import base64
import hashlib
import itertools
import re

import pytest

from contrast_support import AA_NON_TEXT, AA_TEXT, contrast, luminance, palettes
from newsletter.web.security import (
    ARCHIVE_CONTENT_SECURITY_POLICY,
    CONTENT_SECURITY_POLICY,
    CSRF_COOKIE,
    SECURE_CSRF_COOKIE,
)
from web_support import open_site


@pytest.fixture
def site(database_url):
    yield from open_site(database_url)


@pytest.fixture(scope="module")
def sqlite_site(tmp_path_factory):
    """One site on SQLite for the checks where the database engine does not matter."""
    url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'newsletter.sqlite3'}"
    yield from open_site(url)


_members = itertools.count()


def every_page(site) -> list[str]:
    """A path of every page a visitor can GET, for an active member with a change of address waiting."""
    number = next(_members)
    address = f"every{number}@example.org"
    preferences = site.active_member(address, name="Every Page")
    site.submit(preferences, {"action": "email", "new_email": f"every{number}.new@example.org"})
    tokens = {purpose: site.token(purpose, address) for purpose in ("unsubscribe", "data", "confirm")}
    return [
        "/",
        "/health",
        "/subscribe",
        "/static/site.css",
        "/archive/",
        preferences,
        f"/confirm/{tokens['confirm']}",
        f"/unsubscribe/{tokens['unsubscribe']}",
        f"/data/{tokens['data']}",
        f"/data/{tokens['data']}/download",
        f"/data/{tokens['data']}/erase",
        site.last_link(f"every{number}.new@example.org"),
        "/no-such-page",
        "/confirm/not-a-token",
    ]


def test_get_never_changes_anything(site):
    paths = every_page(site)
    before = site.snapshot()
    for client in (site.client, site.fresh_client()):  # with and without cookies
        for path in paths:
            for method in ("GET", "HEAD"):
                response = client.open(path, method=method)
                assert response.status_code in (200, 302, 400, 404), (method, path, response.status_code)
    assert site.snapshot() == before


def test_every_response_carries_the_security_headers(sqlite_site):
    site = sqlite_site
    responses = [site.client.get(path) for path in every_page(site)]
    responses.append(site.client.post("/subscribe", data={}))
    responses.append(site.client.put("/subscribe"))
    for response in responses:
        headers = response.headers
        archive = response.request.path.startswith("/archive/")
        assert headers["Content-Security-Policy"] == (
            ARCHIVE_CONTENT_SECURITY_POLICY if archive else CONTENT_SECURITY_POLICY
        )
        for policy in (CONTENT_SECURITY_POLICY, ARCHIVE_CONTENT_SECURITY_POLICY):
            assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
            assert "script-src 'self';" in policy and "unsafe-inline" not in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"
        if response.request.path.startswith(("/static/", "/archive/")):  # public, no personal data
            assert "no-store" not in headers.get("Cache-Control", "")
        else:
            assert headers["Cache-Control"] == "no-store"


def test_pages_have_no_inline_script_or_style_and_no_third_party_resources(sqlite_site):
    site = sqlite_site
    for path in every_page(site):
        response = site.client.get(path)
        if response.mimetype != "text/html" or response.status_code == 302:
            continue
        page = response.text
        assert "<script" not in page and "<style" not in page, path
        assert not re.search(r"\sstyle=", page), path
        assert not re.search(r"\son[a-z]+=", page), path  # no event handler attributes
        assert not re.search(r'(?:src|href)="(?:https?:)?//', page), path  # nothing from elsewhere
        assert '<html lang="en-GB">' in page and 'name="viewport"' in page


def test_one_small_stylesheet_without_web_fonts(sqlite_site):
    response = sqlite_site.client.get("/static/site.css")
    assert response.status_code == 200 and response.mimetype == "text/css"
    assert len(response.data) < 12_000
    assert (
        b"@import" not in response.data
        and b"@font-face" not in response.data
        and b"url(" not in response.data
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_stylesheet_colours_meet_wcag_aa_in_light_and_dark(repo_root, scheme):
    """The palette of site.css, light and `prefers-color-scheme: dark`: every pair the rules put
    together (the browser test measures the same on the rendered pages)."""
    colours = palettes((repo_root / "templates/web/static/site.css").read_text(encoding="utf-8"))[scheme]
    text_pairs = [
        *((fg, bg) for fg in ("text", "muted", "link") for bg in ("bg", "action-soft", "error-soft")),
        ("text", "field"),
        ("on-masthead", "masthead"),
        ("on-action", "action"),  # primary buttons
        ("on-action", "action-hover"),
        ("action", "bg"),  # secondary buttons
        ("action", "action-soft"),
        ("error", "bg"),  # the message beside a field, the error summary's links
        ("error", "error-soft"),
        ("on-error", "error"),  # the erase button
    ]
    for foreground, background in text_pairs:
        assert contrast(colours[foreground], colours[background]) >= AA_TEXT, (foreground, background)
    for edge, background in [
        ("focus", "bg"),
        ("field-border", "bg"),
        ("field-border", "field"),
        ("action", "bg"),
    ]:
        assert contrast(colours[edge], colours[background]) >= AA_NON_TEXT, (edge, background)
    if scheme == "dark":  # light text on a dark page, the masthead a dark bar rather than a bright one
        assert luminance(colours["bg"]) < 0.02 and luminance(colours["masthead"]) < 0.05
        assert contrast(colours["masthead"], colours["bg"]) < 1.6


@pytest.mark.parametrize(
    ("method", "path", "status", "words"),
    [
        ("GET", "/no-such-page", 404, "Page not found"),
        ("DELETE", "/subscribe", 405, "cannot be used that way"),
        ("GET", "/unsubscribe/x/y", 404, "Page not found"),
    ],
)
def test_error_pages_are_friendly(sqlite_site, method, path, status, words):
    response = sqlite_site.client.open(path, method=method)
    assert response.status_code == status
    assert words in response.text and "Traceback" not in response.text
    assert response.mimetype == "text/html"


def test_a_request_too_large_is_refused_politely(sqlite_site):
    response = sqlite_site.client.post("/subscribe", data={"name": "x" * 200_000})
    assert response.status_code == 413
    assert "Too much to send" in response.text


def test_a_crash_shows_a_page_without_a_traceback(database_url):
    site = next(sites := open_site(database_url))
    try:
        site.app.add_url_rule("/crash", "crash", lambda: 1 / 0)  # a bug in some page
        response = site.client.get("/crash")
        assert response.status_code == 500
        assert "Sorry, something went wrong" in response.text
        assert "ZeroDivisionError" not in response.text and "Traceback" not in response.text
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    finally:
        sites.close()


def test_the_csrf_cookie_is_http_only_and_same_site(sqlite_site):
    response = sqlite_site.fresh_client().get("/subscribe")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{CSRF_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # the test site's base_url is http://


def test_the_csrf_cookie_is_secure_when_the_site_is_https(tmp_path):
    url = f"sqlite:///{tmp_path / 'newsletter.sqlite3'}"
    sites = open_site(url, base_url="https://news.example.test")
    site = next(sites)
    try:
        cookie = site.fresh_client().get("/subscribe").headers["Set-Cookie"]
        assert cookie.startswith(f"{SECURE_CSRF_COOKIE}=") and "; Secure" in cookie and "Domain" not in cookie
        # and a form posted over https with that cookie is accepted
        assert site.subscribe("jo@example.org").status_code == 200
    finally:
        sites.close()


def test_emails_link_to_base_url_whatever_host_the_request_named(sqlite_site):
    site = sqlite_site
    _, token = site.form("/subscribe")
    cookie = site.client.get_cookie(CSRF_COOKIE)
    site.client.set_cookie(CSRF_COOKIE, cookie.value, domain="evil.example")
    response = site.client.post(
        "/subscribe",
        data={"csrf_token": token, "email": "host@example.org", "lists": ["newsletter"], "consent": "yes"},
        base_url="http://evil.example",
    )
    assert response.status_code == 200
    assert site.last_link("host@example.org").startswith("/confirm/")  # last_link checks BASE_URL
    assert "evil.example" not in site.mail(1)[-1].as_string()


def test_the_health_check(sqlite_site):
    response = sqlite_site.client.get("/health")
    assert (response.status_code, response.text) == (200, "ok\n")


def test_the_archive_is_served_too_under_the_same_headers(sqlite_site):
    response = sqlite_site.client.get("/archive/")
    assert response.status_code == 200 and "<main" in response.text
    policy = response.headers["Content-Security-Policy"]
    # Story images may be on other https sites; everything else is as strict as the subscriber pages.
    assert policy == ARCHIVE_CONTENT_SECURITY_POLICY and "img-src 'self' https:;" in policy
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "no-store" not in response.headers["Cache-Control"]  # public pages may be cached
    subscribe = sqlite_site.client.get("/subscribe").headers["Content-Security-Policy"]
    assert subscribe == CONTENT_SECURITY_POLICY and "img-src 'self';" in subscribe


def test_an_inline_style_block_is_allowed_by_its_hash_only(database_url):
    site = next(sites := open_site(database_url))
    try:
        css = "body { color: #123456; }"
        site.app.add_url_rule("/styled", "styled", lambda: f"<!doctype html><style>{css}</style><p>x</p>")
        policy = site.client.get("/styled").headers["Content-Security-Policy"]
        digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
        assert f"style-src 'self' 'sha256-{digest}';" in policy
        assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    finally:
        sites.close()
