"""When an email the pages send cannot go (the relay refuses it, or nothing answers at all), on SQLite
and PostgreSQL: the visitor is told to try again later (503, the form as they typed it), the server's
log says why without the whole address, nothing is kept that a later try would trip over, and the
answer is the same whoever the address belongs to."""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import func, select

from newsletter.db.models import Status, Subscriber
from newsletter.testing.smtp import ANY_ADDRESS
from web_support import open_site

TRY_AGAIN = (
    "We could not send you an email just now, so nothing was saved. Please try again in a few minutes."
)
CSRF_VALUE = re.compile(r'name="csrf_token" value="[^"]+"')
# How the relay lets us down: (how, what the log names as the reason).
FAILURES = {
    "refused at RCPT": "451 4.3.0 Mail system busy",
    "refused after DATA": "554 5.7.1 <J…@example.org>: Message refused by policy",
    "nothing listening": "connection problem",
}


@pytest.fixture
def site(database_url):
    yield from open_site(database_url)


def break_relay(site, how: str) -> None:
    """Make the site's relay fail as `how` says (a real aiosmtpd server, or no server at all)."""
    if how == "refused at RCPT":
        site.smtp.reply_at_rcpt(ANY_ADDRESS, "451 4.3.0 Mail system busy, try again later")
    elif how == "refused after DATA":
        # Relays often repeat the address in their reply: the log must not, even so.
        site.smtp.reply_at_data(ANY_ADDRESS, "554 5.7.1 <jo.bloggs@example.org>: Message refused by policy")
    else:
        site.smtp.stop()  # the port the settings name now has nobody listening


def mail_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "newsletter.web.mail" and r.levelno >= 30]


def answer(response, address: str) -> tuple[int, str | None, str]:
    """The response as a visitor could compare it: the address typed and the form's token set aside."""
    text = CSRF_VALUE.sub('name="csrf_token" value="TOKEN"', response.text).replace(address, "ADDRESS")
    return response.status_code, response.headers.get("Retry-After"), text


def subscribers(site, email: str) -> int:
    with site.store.database.session() as session:
        return session.scalar(
            select(func.count()).select_from(Subscriber).where(Subscriber.email_key == email.lower())
        )


@pytest.mark.parametrize("how", FAILURES)
def test_a_sign_up_whose_email_cannot_go_says_try_again_and_a_later_try_works(
    site, database_url, caplog, how
):
    caplog.set_level(logging.WARNING, logger="newsletter.web.mail")
    break_relay(site, how)
    before = site.snapshot(with_rate_limits=False)
    response = site.subscribe(
        "Jo.Bloggs@example.org", name="Jo Bloggs", organisation="Acme Trust", topics=["housing"]
    )

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "300"
    page = response.text
    assert TRY_AGAIN in page and "Check your email" not in page
    assert 'role="alert"' in page
    # The form comes back as it was typed, ready to send again.
    assert 'value="Jo.Bloggs@example.org"' in page
    assert 'value="Jo Bloggs"' in page and 'value="Acme Trust"' in page
    assert re.search(r'value="housing" checked', page) and re.search(r'value="newsletter" checked', page)
    assert re.search(r'name="consent" value="yes" checked', page)
    # Nothing was kept: no pending member, no consent record.
    assert site.snapshot(with_rate_limits=False) == before
    # The server's log says why, without the whole address.
    [warning] = mail_warnings(caplog)
    assert FAILURES[how] in warning
    assert "J…@example.org" in warning and "jo.bloggs" not in warning.lower()

    # Later, with the relay working again, the same person signs up and gets a link that works.
    if how == "nothing listening":
        later = open_site(database_url)  # another server process, with a relay that answers
        again_site = next(later)
    else:
        site.smtp.clear_script()
        later, again_site = None, site
    try:
        again = again_site.subscribe("Jo.Bloggs@example.org", name="Jo Bloggs")
        assert again.status_code == 200 and "Check your email" in again.text
        link = again_site.last_link("jo.bloggs@example.org")
        assert again_site.submit(link, {}).status_code == 200
    finally:
        if later is not None:
            later.close()
    assert subscribers(site, "jo.bloggs@example.org") == 1
    assert site.member("jo.bloggs@example.org").status == Status.ACTIVE
    assert [record.action for record in site.consent("jo.bloggs@example.org")] == ["subscribed", "confirmed"]


@pytest.mark.parametrize("how", ["refused at RCPT", "nothing listening"])
def test_when_mail_fails_the_answer_is_the_same_for_known_and_unknown_addresses(site, how):
    site.active_member("active@example.org")
    site.subscribe("pending@example.org")
    pending_link = site.last_link("pending@example.org")
    site.active_member("left@example.org")
    site.audience.unsubscribe("left@example.org")
    sent_before = len(site.mail(3))
    break_relay(site, how)
    before = site.snapshot(with_rate_limits=False)

    addresses = ("new@example.org", "pending@example.org", "active@example.org", "left@example.org")
    answers = {address: answer(site.subscribe(address), address) for address in addresses}

    assert len(set(answers.values())) == 1, answers
    status, retry_after, text = answers["new@example.org"]
    assert (status, retry_after) == (503, "300") and TRY_AGAIN in text
    assert site.snapshot(with_rate_limits=False) == before  # not a member more, not a record more
    assert len(site.smtp.messages) == sent_before
    # The earlier request of the pending member stands: its link still confirms.
    if how == "nothing listening":
        return
    site.smtp.clear_script()
    assert site.submit(pending_link, {}).status_code == 200
    assert site.member("pending@example.org").status == Status.ACTIVE


@pytest.fixture
def jo(site):
    site.preferences = site.active_member("jo@example.org", name="Jo")
    return site


def test_an_address_change_whose_link_cannot_go_is_not_kept(jo, caplog):
    caplog.set_level(logging.WARNING, logger="newsletter.web.mail")
    member_id = jo.member("jo@example.org").id
    jo.smtp.reply_at_rcpt("new@example.org", "451 4.3.0 Mail system busy, try again later")
    response = jo.submit(jo.preferences, {"action": "email", "new_email": "New@example.org"})

    assert response.status_code == 503 and response.headers["Retry-After"] == "300"
    assert "We could not send a link to your new address just now, so nothing was changed." in response.text
    assert "We have sent a link" not in response.text
    assert 'value="New@example.org"' in response.text  # as typed
    assert "is waiting for its link" not in response.text
    assert jo.member("jo@example.org").pending_email is None
    [warning] = mail_warnings(caplog)
    assert "451 4.3.0" in warning and "new@example.org" not in warning.lower()

    jo.smtp.clear_script()
    again = jo.submit(jo.preferences, {"action": "email", "new_email": "New@example.org"})
    assert again.status_code == 303
    assert jo.submit(jo.last_link("new@example.org"), {}).status_code == 200
    assert jo.member("new@example.org").id == member_id


def test_new_links_that_cannot_be_emailed_say_so_and_still_stop_the_old_ones(jo):
    jo.smtp.reply_at_rcpt("jo@example.org", "451 4.3.0 Mail system busy, try again later")
    old = (
        f"/preferences/{jo.token('preferences', 'jo@example.org', age=60)}"  # made before the cut-off second
    )
    response = jo.submit(old, {"action": "revoke"})
    assert response.status_code == 303
    fresh = response.headers["Location"]
    assert "done=unsent" in fresh
    page = jo.client.get(fresh)
    assert page.status_code == 200
    assert "we could not email you this new link just now" in page.text
    assert "We have emailed you this new link" not in page.text
    # What was asked for still happened: the old link is stopped, the new one (this page) works.
    refused = jo.client.get(old)
    assert refused.status_code == 410 and "This link was replaced" in refused.text
    assert jo.client.get(fresh.split("?")[0]).status_code == 200
