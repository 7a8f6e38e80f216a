"""The desk's preview: the email at phone and desktop widths, in dark mode, and its text part, as a
given member or a segment's members will get it (the same personalisation delivery uses), with what
`newsletter check` finds. The email is served for the frames under a policy of its own: its styles,
no script, framed only by the desk."""

from __future__ import annotations

import pytest

from desk_support import CONTRIBUTOR, add_team, open_desk, sign_in
from web_support import REPO_ROOT

SLUG = "2023-10"
WELSH_MEMBER = "laura.morgan@blaenau-gwent.gov.example"


@pytest.fixture
def site(database_url, tmp_path):
    yield from open_desk(database_url, tmp_path)


@pytest.fixture
def signed_in(site):
    add_team(site)
    site.audience.import_csv(
        REPO_ROOT / "subscribers" / "sample.csv", report_path=site.settings.issues_dir.parent / "r.csv"
    )
    sign_in(site, CONTRIBUTOR)
    return site


def test_the_preview_shows_the_email_three_ways_and_its_text_part(signed_in):
    page = signed_in.client.get(f"/desk/issues/{SLUG}/preview")
    assert page.status_code == 200
    assert page.text.count("<iframe") == 3 and "Plain-text part" in page.text
    assert "the whole issue" in page.text
    email = signed_in.client.get(f"/desk/issues/{SLUG}/preview/email.html")
    assert email.status_code == 200 and email.mimetype == "text/html"
    policy = email.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'self'" in policy and "sandbox" in policy
    assert "script-src" not in policy and email.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "@media (prefers-color-scheme: dark)" in email.text
    dark = signed_in.client.get(f"/desk/issues/{SLUG}/preview/email.html?dark=1")
    assert "@media (prefers-color-scheme: dark)" not in dark.text and "@media all" in dark.text
    # Every other desk page keeps the strict policy and may not be framed.
    assert signed_in.client.get(f"/desk/issues/{SLUG}").headers["X-Frame-Options"] == "DENY"


def test_the_preview_as_a_segment_lists_each_distinct_email(signed_in):
    page = signed_in.client.get(f"/desk/issues/{SLUG}/preview?segment=marmot-places-in-wales")
    assert page.status_code == 200
    versions = page.text.split('aria-label="The distinct emails"', 1)[1].split("</ol>", 1)[0]
    assert "different emails go to these members" in page.text and versions.count("<li>") >= 2
    second = signed_in.client.get(
        f"/desk/issues/{SLUG}/preview/email.html?segment=marmot-places-in-wales&view=1"
    )
    first = signed_in.client.get(f"/desk/issues/{SLUG}/preview/email.html?segment=marmot-places-in-wales")
    assert second.status_code == first.status_code == 200 and second.text != first.text
    whole = signed_in.client.get(f"/desk/issues/{SLUG}/preview/email.html").text
    theirs = signed_in.client.get(f"/desk/issues/{SLUG}/preview/email.html?as={WELSH_MEMBER}").text
    assert theirs != whole


def test_an_unknown_member_is_said_next_to_the_field(signed_in):
    page = signed_in.client.get(f"/desk/issues/{SLUG}/preview?as=nobody@example.org")
    assert page.status_code == 400 and 'id="error-as"' in page.text


def test_the_preview_needs_a_session(site):
    assert site.client.get(f"/desk/issues/{SLUG}/preview").status_code == 302
    assert site.client.get(f"/desk/issues/{SLUG}/preview/email.html").status_code == 302
