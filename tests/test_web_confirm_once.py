"""A confirmation link confirms the sign-up it was sent for, once (issue 11), on SQLite and PostgreSQL.

Posting the original /confirm/ link again within its 7 days, after the member has left, must not make
them active again nor write a second "confirmed" record: leaving is final until they sign up again,
and the new sign-up's own link is what confirms it.
"""

from __future__ import annotations

import time

import pytest

from newsletter.audience.consent import Action
from newsletter.db.models import Status
from web_support import open_site

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
USED = "This link has already been used"


@pytest.fixture
def site(database_url):
    yield from open_site(database_url)


def actions(site, email):
    return [record.action for record in site.consent(email)]


def post(site, path):
    """POST a confirmation link with a valid CSRF token (from the sign-up page: a used link's own page
    has no form)."""
    return site.submit(path, {}, form_path="/subscribe")


def unsubscribe(site, email):
    response = site.fresh_client().post(f"/unsubscribe/{site.token('unsubscribe', email)}", data=ONE_CLICK)
    assert response.status_code == 200
    assert site.member(email).status == Status.UNSUBSCRIBED


def test_a_used_confirmation_link_does_not_bring_back_a_member_who_left(site):
    site.subscribe("jo@example.org", lists=["newsletter", "events"])
    confirm = site.last_link("jo@example.org")
    assert post(site, confirm).status_code == 200
    unsubscribe(site, "jo@example.org")
    before = site.snapshot(with_rate_limits=False)

    again = post(site, confirm)
    assert again.status_code == 410 and USED in again.text
    shown = site.client.get(confirm)
    assert shown.status_code == 410 and USED in shown.text
    assert site.member("jo@example.org").status == Status.UNSUBSCRIBED
    assert actions(site, "jo@example.org").count(Action.CONFIRMED.value) == 1
    assert site.snapshot(with_rate_limits=False) == before


def test_signing_up_again_sends_a_link_that_confirms_the_new_sign_up_only(site):
    site.subscribe("jo@example.org", lists=["newsletter"])
    first = site.last_link("jo@example.org")
    post(site, first)
    unsubscribe(site, "jo@example.org")

    time.sleep(1.05)  # links are dated in whole seconds: two sign-ups in one second share one link
    site.subscribe("jo@example.org", lists=["events"])
    site.mail(2)
    second = site.last_link("jo@example.org")
    assert second != first
    # The old link still does nothing, even with a new sign-up waiting.
    assert post(site, first).status_code == 410
    assert site.member("jo@example.org").status == Status.UNSUBSCRIBED
    # The new one confirms, once, with what was asked for this time.
    assert post(site, second).status_code == 200
    assert site.member("jo@example.org").status == Status.ACTIVE
    assert ("events", True) in site.audience.member("jo@example.org").lists
    assert actions(site, "jo@example.org").count(Action.CONFIRMED.value) == 2
    repeat = post(site, second)
    assert repeat.status_code == 200 and "already confirmed" in repeat.text
    assert actions(site, "jo@example.org").count(Action.CONFIRMED.value) == 2


def test_a_member_unsubscribed_before_confirming_is_not_confirmed_by_the_old_link(site):
    """Left (here by the CLI) while still pending: the sign-up's link no longer applies."""
    site.subscribe("jo@example.org")
    confirm = site.last_link("jo@example.org")
    site.audience.unsubscribe("jo@example.org")
    response = post(site, confirm)
    assert response.status_code == 410 and USED in response.text
    assert site.member("jo@example.org").status == Status.UNSUBSCRIBED
    assert Action.CONFIRMED.value not in actions(site, "jo@example.org")


def test_an_earlier_confirmation_link_gives_way_to_the_newest(site):
    """Two sign-ups while pending: the newest one's link confirms (with what it asked for)."""
    site.subscribe("jo@example.org", lists=["newsletter"])
    first = site.last_link("jo@example.org")
    time.sleep(1.05)  # links are dated in whole seconds: two sign-ups in one second share one link
    site.subscribe("jo@example.org", lists=["events"])
    site.mail(2)
    second = site.last_link("jo@example.org")
    response = post(site, first)
    assert response.status_code == 410 and "newest email" in response.text
    assert site.member("jo@example.org").status == Status.PENDING
    assert post(site, second).status_code == 200
    assert site.audience.member("jo@example.org").lists == [("events", True)]
