"""The editor's desk at /desk/: signing in by emailed link, sessions, roles checked on the server, CSRF,
the team page and starting an issue. A real app over a real database (SQLite and PostgreSQL) with its
mail going to a real SMTP server; the issues live in a copy of the sample issues folder."""

from __future__ import annotations

import pytest

from desk_support import ADMIN, CONTRIBUTOR, add_team, csrf_of, emailed_link, open_desk, sign_in
from newsletter.db.models import Role
from web_support import CSRF_INPUT


@pytest.fixture
def site(database_url, tmp_path):
    yield from open_desk(database_url, tmp_path)


@pytest.fixture
def team(site):
    return add_team(site)


def test_an_emailed_link_signs_in_once_and_the_desk_lists_the_issues(site, team):
    sign_in(site, ADMIN)
    issues = site.client.get("/desk/")
    assert issues.status_code == 200
    assert "Health Equity Network newsletter: October 2023" in issues.text or "2023-10" in issues.text
    assert "Ann Admin" in issues.text and "(admin)" in issues.text

    link = emailed_link(site, ADMIN, 1)
    other = site.fresh_client()
    used = other.get(link)
    assert used.status_code == 410 and "no longer works" in used.text
    assert other.get("/desk/").status_code == 302


def test_the_session_cookie_is_httponly_and_samesite(site, team):
    page = site.client.get("/desk/sign-in")
    token = CSRF_INPUT.search(page.text).group(1)
    site.client.post("/desk/sign-in", data={"csrf_token": token, "email": ADMIN})
    link = emailed_link(site, ADMIN, 1)
    token = CSRF_INPUT.search(site.client.get(link).text).group(1)
    response = site.client.post(link, data={"csrf_token": token})
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("newsletter_desk=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_an_address_without_an_account_gets_the_same_page_and_no_email(site, team):
    token = csrf_of(site.client, "/desk/sign-in")
    answer = site.client.post("/desk/sign-in", data={"csrf_token": token, "email": "stranger@example.org"})
    assert answer.status_code == 200 and "Check your email" in answer.text
    assert not site.smtp.wait_for(1, timeout=1)


def test_a_bad_address_is_shown_next_to_its_field(site, team):
    token = csrf_of(site.client, "/desk/sign-in")
    answer = site.client.post("/desk/sign-in", data={"csrf_token": token, "email": "not-an-address"})
    assert answer.status_code == 400
    assert 'id="error-email"' in answer.text and 'aria-invalid="true"' in answer.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/desk/"),
        ("get", "/desk/team"),
        ("get", "/desk/issues/2023-10"),
        ("post", "/desk/issues"),
        ("post", "/desk/team"),
        ("post", "/desk/team/1/role"),
        ("post", "/desk/team/1/remove"),
        ("get", "/desk/calendar"),
        ("get", "/desk/issues/2023-10/edit"),
        ("get", "/desk/issues/2023-10/preview"),
        ("get", "/desk/issues/2023-10/preview/email.html"),
        ("get", "/desk/issues/2023-10/reach?to=everyone"),
        ("get", "/desk/campaigns/1"),
        ("get", "/desk/campaigns/1/progress"),
        ("post", "/desk/issues/2023-10/edit"),
        ("post", "/desk/issues/2023-10/submit"),
        ("post", "/desk/issues/2023-10/approve"),
        ("post", "/desk/issues/2023-10/send-back"),
        ("post", "/desk/issues/2023-10/test-send"),
        ("post", "/desk/issues/2023-10/schedule"),
        ("post", "/desk/campaigns/1/pause"),
        ("post", "/desk/campaigns/1/cancel"),
    ],
)
def test_without_a_session_pages_redirect_to_sign_in_and_forms_are_refused(site, team, method, path):
    before = site.snapshot(with_rate_limits=False)
    response = getattr(site.client, method)(path, data={"slug": "2023-11", "email": "x@example.org"})
    if method == "get":
        assert response.status_code == 302 and "/desk/sign-in" in response.headers["Location"]
    else:
        assert response.status_code == 401
    assert site.snapshot(with_rate_limits=False) == before


def test_a_contributor_cannot_manage_the_team(site, team):
    sign_in(site, CONTRIBUTOR)
    assert site.client.get("/desk/team").status_code == 403
    token = csrf_of(site.client, "/desk/")
    before = site.snapshot(with_rate_limits=False)
    added = site.client.post(
        "/desk/team", data={"csrf_token": token, "email": "new@example.org", "role": "admin"}
    )
    assert added.status_code == 403
    assert (
        site.client.post("/desk/team/1/role", data={"csrf_token": token, "role": "contributor"}).status_code
        == 403
    )
    assert site.client.post("/desk/team/1/remove", data={"csrf_token": token}).status_code == 403
    assert site.snapshot(with_rate_limits=False) == before
    assert "Team</a>" not in site.client.get("/desk/").text


def test_a_form_without_its_csrf_token_changes_nothing(site, team):
    sign_in(site, ADMIN)
    before = site.snapshot(with_rate_limits=False)
    for step in ("submit", "approve", "send-back", "test-send", "schedule"):
        answer = site.client.post(f"/desk/issues/2023-10/{step}", data={"note": "x", "to": "everyone"})
        assert answer.status_code == 400, step
    answer = site.client.post("/desk/team", data={"email": "new@example.org", "role": "editor"})
    assert answer.status_code == 400
    answer = site.client.post("/desk/issues", data={"slug": "2023-11"})
    assert answer.status_code == 400
    assert site.snapshot(with_rate_limits=False) == before
    assert not (site.settings.issues_dir / "2023-11").exists()


def test_an_admin_adds_and_removes_accounts_and_the_last_admin_stays(site, team):
    sign_in(site, ADMIN)
    token = csrf_of(site.client, "/desk/team")
    added = site.client.post(
        "/desk/team",
        data={"csrf_token": token, "email": "Ed.Editor@Example.org", "name": "Ed", "role": "editor"},
    )
    assert added.status_code == 302 and added.headers["Location"].endswith("/desk/team")
    assert "Added Ed.Editor@example.org as editor" in site.client.get("/desk/team").text
    assert team.find("ed.editor@example.org").role is Role.EDITOR

    twice = site.client.post(
        "/desk/team", data={"csrf_token": token, "email": "ed.editor@example.org", "role": "editor"}
    )
    assert (
        twice.status_code == 400
        and 'id="error-email"' in twice.text
        and "already has an account" in twice.text
    )

    admin = team.find(ADMIN)
    demoted = site.client.post(f"/desk/team/{admin.id}/role", data={"csrf_token": token, "role": "editor"})
    assert demoted.status_code == 400 and "only admin" in demoted.text
    assert team.find(ADMIN).role is Role.ADMIN

    editor = team.find("ed.editor@example.org")
    removed = site.client.post(f"/desk/team/{editor.id}/remove", data={"csrf_token": token})
    assert removed.status_code == 302 and team.find("ed.editor@example.org") is None
    actions = [event.action for event in team.history()]
    assert actions[:3] == ["account removed", "account added", "signed in"]


def test_a_removed_account_is_signed_out(site, team):
    sign_in(site, CONTRIBUTOR)
    assert site.client.get("/desk/").status_code == 200
    team.remove(CONTRIBUTOR)
    assert site.client.get("/desk/").status_code == 302


def test_signing_out_ends_the_session(site, team):
    sign_in(site, CONTRIBUTOR)
    token = csrf_of(site.client, "/desk/")
    out = site.client.post("/desk/sign-out", data={"csrf_token": token})
    assert out.status_code == 302
    assert site.client.get("/desk/").status_code == 302


def test_a_contributor_starts_next_months_issue_from_octobers(site, team):
    sign_in(site, CONTRIBUTOR)
    token = csrf_of(site.client, "/desk/")
    started = site.client.post(
        "/desk/issues", data={"csrf_token": token, "slug": "2023-11", "like": "2023-10"}
    )
    assert started.status_code == 302 and started.headers["Location"].endswith("/desk/issues/2023-11")
    written = (site.settings.issues_dir / "2023-11" / "issue.yaml").read_text(encoding="utf-8")
    assert "laid out like 2023-10" in written
    page = site.client.get("/desk/issues/2023-11")
    assert page.status_code == 200 and "drafted" in page.text and CONTRIBUTOR in page.text

    again = site.client.post("/desk/issues", data={"csrf_token": token, "slug": "2023-11", "like": "2023-10"})
    assert again.status_code == 400 and "already exists" in again.text


@pytest.mark.parametrize("slug", ["../evil", "a/b", "..", "Bad Name"])
def test_a_slug_that_is_a_path_is_refused(site, team, slug):
    sign_in(site, CONTRIBUTOR)
    token = csrf_of(site.client, "/desk/")
    answer = site.client.post("/desk/issues", data={"csrf_token": token, "slug": slug})
    assert answer.status_code == 400 and "cannot name an issue" in answer.text
    copied = site.client.post("/desk/issues", data={"csrf_token": token, "slug": "2023-12", "like": slug})
    assert copied.status_code == 400
    assert sorted(p.name for p in site.settings.issues_dir.iterdir()) == ["2023-10"]
    assert site.client.get("/desk/issues/..%2Fevil").status_code == 404


def test_sign_in_links_asked_for_beyond_the_limit_are_refused(site, team):
    token = csrf_of(site.client, "/desk/sign-in")
    answers = [
        site.client.post("/desk/sign-in", data={"csrf_token": token, "email": ADMIN}).status_code
        for _ in range(7)
    ]
    assert answers[:5] == [200] * 5 and answers[5:] == [429, 429]
    assert len(site.mail(5)) == 5
