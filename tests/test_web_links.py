"""Every link page with every kind of bad token: a friendly page with the right status, never a traceback,
and nothing changed. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from newsletter.db.models import new_link_key
from newsletter.tokens import Tokens
from web_support import TOKEN_PAGES, open_site

DAY = 24 * 3600


@pytest.fixture
def site(database_url):
    yield from open_site(database_url)


@pytest.fixture
def jo(site):
    site.active_member("jo@example.org")
    return site


def pages(path: str) -> list[tuple[str, str]]:
    """The GET and POST routes that a link of this page's kind opens."""
    if path.startswith("data/"):
        return [
            ("GET", f"/{path}"),
            ("GET", f"/{path}/download"),
            ("GET", f"/{path}/erase"),
            ("POST", f"/{path}/erase"),
        ]
    return [("GET", f"/{path}"), ("POST", f"/{path}")]


def check_refused(site, purpose, token, status, words):
    before = site.snapshot()
    for method, path in pages(f"{purpose}/{token}"):
        _, csrf = site.form("/subscribe")
        response = site.client.open(
            path, method=method, data={"csrf_token": csrf} if method == "POST" else None
        )
        assert response.status_code == status, (method, path, response.status_code)
        assert words in response.text, (method, path)
        assert "Traceback" not in response.text
        assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert response.headers["Cache-Control"] == "no-store"
    assert site.snapshot() == before


@pytest.mark.parametrize("purpose", TOKEN_PAGES)
def test_malformed(jo, purpose):
    for token in ("garbage", "1.2.3.4", "x" * 300, "%00", "1.awM.sig"):
        check_refused(jo, purpose, token, 400, "This link does not work")


@pytest.mark.parametrize("purpose", TOKEN_PAGES)
def test_tampered(jo, purpose):
    token = jo.token(purpose, "jo@example.org")
    identifier, tag, stamp, signature = token.split(".")
    changed = ("A" if signature[0] != "A" else "B") + signature[1:]
    check_refused(jo, purpose, f"{identifier}.{tag}.{stamp}.{changed}", 400, "This link does not work")
    # another member's id, another key's tag
    check_refused(jo, purpose, f"2.{tag}.{stamp}.{signature}", 400, "This link does not work")
    other = ("0" if tag[0] != "0" else "1") + tag[1:]
    check_refused(jo, purpose, f"{identifier}.{other}.{stamp}.{signature}", 400, "This link does not work")


@pytest.mark.parametrize("purpose", TOKEN_PAGES)
def test_wrong_purpose(jo, purpose):
    for other in TOKEN_PAGES:
        if other != purpose:
            check_refused(jo, purpose, jo.token(other, "jo@example.org"), 400, "This link does not work")


@pytest.mark.parametrize("purpose", TOKEN_PAGES)
def test_another_secret_key(jo, purpose):
    member = jo.member("jo@example.org")
    forged = Tokens("somebody-elses-key").make(purpose, member.id, member.link_key)
    check_refused(jo, purpose, forged, 400, "This link does not work")


@pytest.mark.parametrize(("purpose", "days"), [("confirm", 7), ("email", 2), ("data", 1)])
def test_expired(jo, purpose, days):
    old = jo.token(purpose, "jo@example.org", age=days * DAY + 60)
    check_refused(jo, purpose, old, 410, "This link has expired")
    # just inside the limit it still opens (an address change link: there is no change waiting)
    recent = jo.token(purpose, "jo@example.org", age=days * DAY - 60)
    response = jo.client.get(f"/{purpose}/{recent}")
    if purpose == "email":
        assert response.status_code == 410 and "already been used" in response.text
    else:
        assert response.status_code == 200


def test_unsubscribe_and_preferences_links_do_not_expire(jo):
    for purpose in ("unsubscribe", "preferences"):
        old = jo.token(purpose, "jo@example.org", age=3 * 365 * DAY)
        assert jo.client.get(f"/{purpose}/{old}").status_code == 200


@pytest.mark.parametrize("purpose", TOKEN_PAGES)
def test_an_erased_member(jo, purpose):
    token = jo.token(purpose, "jo@example.org")
    jo.audience.erase("jo@example.org")
    if purpose == "unsubscribe":
        # An erased member is mailed nothing: the page says so; the one-click POST still says done.
        response = jo.client.get(f"/unsubscribe/{token}")
        assert response.status_code == 410 and "We hold nothing" in response.text
        return
    check_refused(jo, purpose, token, 410, "We hold nothing for this link")


def test_a_member_who_never_existed(site):
    token = site.tokens.make("preferences", 999_999, new_link_key())
    check_refused(site, "preferences", token, 410, "We hold nothing")


def test_a_confirmation_link_expires_after_seven_days(site):
    site.subscribe("jo@example.org")
    member = site.member("jo@example.org")
    old = site.token("confirm", "jo@example.org", age=7 * DAY + 1)
    check_refused(site, "confirm", old, 410, "Start again and we will email you a new one")
    assert site.member("jo@example.org").status == member.status
