"""A member looking after themselves, on SQLite and PostgreSQL: preferences, a new address, new links,
unsubscribing (the page and RFC 8058 one-click), downloading and erasing their data."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from sqlalchemy import select

from newsletter.db.models import (
    Campaign,
    CampaignStatus,
    ConsentRecord,
    Delivery,
    DeliveryStatus,
    Format,
    Status,
    Subscriber,
    Suppression,
)
from test_audience_support import write_csv
from web_support import forged, open_site


@pytest.fixture
def site(database_url):
    yield from open_site(database_url)


@pytest.fixture
def jo(site):
    """Jo, an active member on two lists; `jo.preferences` is a link to her preferences page."""
    site.preferences = site.active_member(
        "jo@example.org",
        name="Jo Bloggs",
        organisation="Acme Trust",
        sector="nhs",
        region="wales",
        topics=["housing"],
        lists=["newsletter", "events"],
    )
    site.mail(1)
    return site


def actions(site, email):
    return [(record.action, record.source) for record in site.consent(email)]


# --- Preferences -----------------------------------------------------------------------------------------


def test_the_preferences_page_shows_what_is_held(jo):
    page = jo.client.get(jo.preferences)
    assert page.status_code == 200
    text = page.text
    assert 'value="Jo Bloggs"' in text and 'value="Acme Trust"' in text
    assert re.search(r'value="housing" checked', text)
    assert re.search(r'value="events" checked', text) and re.search(r'value="newsletter" checked', text)
    assert not re.search(r'value="network" checked', text)
    assert re.search(r'value="html" checked', text)
    assert re.search(r'<option value="wales" selected>', text)
    assert page.headers["Cache-Control"] == "no-store"
    # Links to leave and to my data, each with a token of its own kind.
    unsubscribe = re.search(r'href="/unsubscribe/([^"]+)"', text).group(1)
    data = re.search(r'href="/data/([^"]+)"', text).group(1)
    member_id = jo.member("jo@example.org").id
    assert jo.tokens.read("unsubscribe", unsubscribe, jo.key_of) == member_id
    assert jo.tokens.read("data", data, jo.key_of) == member_id


def test_saving_preferences(jo):
    response = jo.submit(
        jo.preferences,
        {
            "action": "save",
            "name": "Jo  Bloggs-Smith\n",
            "organisation": "",
            "sector": "academia",
            "region": "",
            "topics": ["early-years", "good-work"],
            "lists": ["newsletter", "network"],
            "format": "text",
        },
    )
    assert response.status_code == 303  # back to the page, so a reload does not post again
    page = jo.client.get(response.headers["Location"])
    assert "Your changes are saved." in page.text
    member = jo.member("jo@example.org")
    assert (member.name, member.organisation, member.sector, member.region) == (
        "Jo Bloggs-Smith",
        "",
        "academia",
        None,
    )
    assert member.format == Format.TEXT
    view = jo.audience.member("jo@example.org")
    assert view.topics == ["early-years", "good-work"]
    assert view.lists == [("events", False), ("network", True), ("newsletter", True)]
    assert actions(jo, "jo@example.org")[2:] == [
        ("joined_list", "preferences"),
        ("left_list", "preferences"),
        ("preferences_changed", "preferences"),
    ]
    changed = jo.consent("jo@example.org")[-1]
    assert set(changed.details["changed"]) == {
        "name",
        "organisation",
        "sector",
        "region",
        "topics",
        "lists",
        "format",
    }
    assert changed.ip_address == "127.0.0.1"
    # Saving the same again changes nothing and records nothing.
    before = jo.snapshot()
    again = jo.submit(
        jo.preferences,
        {
            "action": "save",
            "name": "Jo Bloggs-Smith",
            "sector": "academia",
            "topics": ["early-years", "good-work"],
            "lists": ["newsletter", "network"],
            "format": "text",
        },
    )
    assert "Nothing was changed." in jo.client.get(again.headers["Location"]).text
    assert jo.snapshot() == before


def test_a_name_with_markup_is_shown_as_text(jo):
    jo.submit(
        jo.preferences,
        {"action": "save", "name": "<script>alert(1)</script>", "lists": ["newsletter"], "format": "html"},
    )
    assert jo.member("jo@example.org").name == "<script>alert(1)</script>"
    page = jo.client.get(jo.preferences).text
    assert "<script>" not in page
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in page


def test_preferences_refuse_bad_input_and_a_missing_csrf_token(jo):
    before = jo.snapshot()
    response = jo.submit(jo.preferences, {"action": "save", "format": "pdf", "topics": ["nope"], "lists": []})
    assert response.status_code == 400
    assert 'id="error-format"' in response.text and 'id="error-topics"' in response.text
    no_token = jo.client.post(jo.preferences, data={"action": "save", "name": "Changed", "format": "html"})
    assert no_token.status_code == 400 and "nothing was changed" in no_token.text
    cookieless = jo.fresh_client().post(
        jo.preferences, data={"action": "save", "name": "Changed", "format": "html", "csrf_token": "x"}
    )
    assert cookieless.status_code == 400
    unknown = jo.submit(jo.preferences, {"action": "delete-everything"})
    assert unknown.status_code == 400
    assert jo.snapshot() == before


# --- A new address ---------------------------------------------------------------------------------------


def test_changing_the_address_needs_the_new_one_confirmed(jo):
    response = jo.submit(jo.preferences, {"action": "email", "new_email": "Jo.New@Example.org"})
    assert response.status_code == 303
    assert "We have sent a link to your new address" in jo.client.get(response.headers["Location"]).text
    member = jo.member("jo@example.org")
    assert member.email == "jo@example.org" and member.pending_email == "Jo.New@example.org"
    path = jo.last_link("jo.new@example.org")
    assert path.startswith("/email/")
    before = jo.snapshot()
    page = jo.client.get(path)
    assert page.status_code == 200 and "Jo.New@example.org" in page.text
    assert jo.snapshot() == before  # opening the link changes nothing

    done = jo.submit(path, {})
    assert done.status_code == 200 and "Your address is changed" in done.text
    assert jo.member("jo@example.org") is None
    moved = jo.member("jo.new@example.org")
    assert moved.id == member.id and moved.pending_email is None
    assert moved.email_hash != member.email_hash
    assert actions(jo, "jo.new@example.org")[-1] == ("preferences_changed", "web")
    # The link works once.
    again = jo.client.get(path)
    assert again.status_code == 410 and "already been used" in again.text


def test_an_older_address_change_link_stops_when_another_change_is_asked(jo):
    jo.submit(jo.preferences, {"action": "email", "new_email": "first@example.org"})
    first = jo.last_link("first@example.org")
    with jo.store.database.session() as session:  # asked a minute later
        member = session.scalar(select(Subscriber).where(Subscriber.email_key == "jo@example.org"))
        member.pending_email_at = member.pending_email_at + dt.timedelta(minutes=1)
    assert jo.client.get(first).status_code == 410
    assert jo.member("jo@example.org").email == "jo@example.org"


def test_an_address_of_another_member_is_refused_when_confirmed(jo):
    jo.active_member("sam@example.org")
    jo.submit(jo.preferences, {"action": "email", "new_email": "SAM@example.org"})
    path = jo.last_link("sam@example.org")
    response = jo.submit(path, {})
    assert response.status_code == 409 and "already belongs to another member" in response.text
    assert jo.member("jo@example.org") is not None


def test_a_bad_new_address_is_shown_beside_its_field(jo):
    response = jo.submit(jo.preferences, {"action": "email", "new_email": "jo@"})
    assert response.status_code == 400
    assert 'id="error-new_email"' in response.text
    assert re.search(r'<input[^>]*id="field-new_email"[^>]*aria-invalid="true"', response.text)
    assert jo.member("jo@example.org").pending_email is None


# --- New links -------------------------------------------------------------------------------------------


def test_new_links_stop_the_old_ones_but_not_unsubscribing(jo):
    old_preferences = jo.token("preferences", "jo@example.org", age=60)
    old_data = jo.token("data", "jo@example.org", age=60)
    old_unsubscribe = jo.token("unsubscribe", "jo@example.org", age=60)
    sent = len(jo.smtp.messages)
    response = jo.submit(old_preferences_path := f"/preferences/{old_preferences}", {"action": "revoke"})
    assert response.status_code == 303
    new_path = response.headers["Location"].partition("?")[0]
    assert new_path != old_preferences_path
    assert "Your old links no longer open this page" in jo.client.get(response.headers["Location"]).text
    # The new link is emailed too, and works; the old ones are refused with a page that says why.
    assert len(jo.mail(sent + 1)) == sent + 1
    assert jo.last_link("jo@example.org") == new_path
    assert jo.client.get(new_path).status_code == 200
    for path in (old_preferences_path, f"/data/{old_data}"):
        refused = jo.client.get(path)
        assert refused.status_code == 410 and "This link was replaced" in refused.text
    # An old email's unsubscribe link still works, but no longer leads to the preferences.
    page = jo.client.get(f"/unsubscribe/{old_unsubscribe}")
    assert page.status_code == 200 and "/preferences/" not in page.text
    fresh = jo.client.get(f"/unsubscribe/{jo.token('unsubscribe', 'jo@example.org')}")
    assert "/preferences/" in fresh.text
    assert actions(jo, "jo@example.org")[-1] == ("preferences_changed", "preferences")


# --- Unsubscribe -----------------------------------------------------------------------------------------


def test_the_unsubscribe_page_changes_nothing_until_a_button_is_pressed(jo):
    path = f"/unsubscribe/{jo.token('unsubscribe', 'jo@example.org')}"
    before = jo.snapshot()
    page = jo.client.get(path)
    assert page.status_code == 200
    assert "Unsubscribe from everything" in page.text
    assert 'name="list" value="events"' in page.text and 'name="list" value="newsletter"' in page.text
    assert re.search(r'href="/preferences/[^"]+"', page.text)
    assert jo.snapshot() == before


def test_leaving_one_list_from_the_page(jo):
    path = f"/unsubscribe/{jo.token('unsubscribe', 'jo@example.org')}"
    response = jo.submit(path, {"list": "events"})
    assert response.status_code == 200 and "You have left a list" in response.text
    assert jo.audience.member("jo@example.org").lists == [("events", False), ("newsletter", True)]
    assert jo.member("jo@example.org").status == Status.ACTIVE
    record = jo.consent("jo@example.org")[-1]
    assert (record.action, record.source, record.ip_address) == ("left_list", "unsubscribe page", "127.0.0.1")


def test_unsubscribing_from_everything_from_the_page(jo):
    path = f"/unsubscribe/{jo.token('unsubscribe', 'jo@example.org')}"
    no_csrf = jo.client.post(path, data={})
    assert no_csrf.status_code == 400 and jo.member("jo@example.org").status == Status.ACTIVE
    response = jo.submit(path, {})
    assert response.status_code == 200 and "You are unsubscribed" in response.text
    assert jo.member("jo@example.org").status == Status.UNSUBSCRIBED
    assert actions(jo, "jo@example.org")[-1] == ("unsubscribed", "unsubscribe page")


@pytest.mark.parametrize("encoding", ["application/x-www-form-urlencoded", "multipart/form-data"])
def test_one_click_unsubscribe_without_cookies_or_csrf(jo, encoding):
    path = f"/unsubscribe/{jo.token('unsubscribe', 'jo@example.org')}"
    mail_provider = jo.fresh_client()
    response = mail_provider.post(path, data={"List-Unsubscribe": "One-Click"}, content_type=encoding)
    assert response.status_code == 200  # never a redirect
    assert "Set-Cookie" not in response.headers
    member = jo.member("jo@example.org")
    assert member.status == Status.UNSUBSCRIBED and member.unsubscribed_at is not None
    record = jo.consent("jo@example.org")[-1]
    assert (record.action, record.source) == ("unsubscribed", "one-click")
    assert record.ip_address == "127.0.0.1" and record.user_agent
    # A second POST (providers retry) is answered the same and records nothing more.
    count = len(jo.consent("jo@example.org"))
    assert (
        mail_provider.post(path, data={"List-Unsubscribe": "One-Click"}, content_type=encoding).status_code
        == 200
    )
    assert len(jo.consent("jo@example.org")) == count


def test_one_click_for_an_erased_member_is_answered_and_a_bad_token_is_not(jo):
    token = jo.token("unsubscribe", "jo@example.org")
    jo.audience.erase("jo@example.org")
    provider = jo.fresh_client()
    assert provider.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    bad = provider.post(f"/unsubscribe/{forged(token)}", data={"List-Unsubscribe": "One-Click"})
    assert bad.status_code == 400


def test_one_click_needs_the_exact_body(jo):
    path = f"/unsubscribe/{jo.token('unsubscribe', 'jo@example.org')}"
    provider = jo.fresh_client()
    for body in ({"List-Unsubscribe": "one-click please"}, {"Unsubscribe": "One-Click"}, {}):
        assert provider.post(path, data=body).status_code == 400  # treated as the page's form: no CSRF
    assert jo.member("jo@example.org").status == Status.ACTIVE


# --- My data ---------------------------------------------------------------------------------------------


def add_delivery(site, email):
    member = site.member(email)
    with site.store.database.session() as session:
        campaign = Campaign(
            issue_slug="2023-10",
            issue_source="title: x",
            subject="October 2023 Newsletter",
            audiences=["everyone"],
            status=CampaignStatus.SENT,
            send_at=dt.datetime(2023, 10, 20, 9),
            recipients=1,
        )
        session.add(campaign)
        session.flush()
        session.add(
            Delivery(
                campaign_id=campaign.id,
                subscriber_id=member.id,
                status=DeliveryStatus.SENT,
                attempts=1,
                next_attempt_at=dt.datetime(2023, 10, 20, 9),
                message_id=f"<nl.{campaign.id}.{member.id}@example.org>",
                sent_at=dt.datetime(2023, 10, 20, 9, 1),
            )
        )


def test_downloading_everything_held(jo):
    add_delivery(jo, "jo@example.org")
    path = f"/data/{jo.token('data', 'jo@example.org')}"
    page = jo.client.get(path)
    assert page.status_code == 200 and "Download my data" in page.text
    before = jo.snapshot()
    response = jo.client.get(f"{path}/download")
    assert jo.snapshot() == before
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    held = json.loads(response.text)
    assert set(held) == {
        "profile",
        "lists",
        "topics",
        "consent_records",
        "deliveries",
        "suppressed",
        "submissions",
    }
    profile = held["profile"]
    assert (profile["email"], profile["name"], profile["organisation"]) == (
        "jo@example.org",
        "Jo Bloggs",
        "Acme Trust",
    )
    assert (profile["sector"], profile["region"], profile["status"]) == ("nhs", "wales", "active")
    assert [(entry["list"], entry["subscribed"]) for entry in held["lists"]] == [
        ("events", True),
        ("newsletter", True),
    ]
    assert held["topics"] == ["housing"]
    assert [entry["action"] for entry in held["consent_records"]] == ["subscribed", "confirmed"]
    assert held["consent_records"][0]["wording_version"]
    assert held["consent_records"][1]["ip_address"] == "127.0.0.1"
    [delivery] = held["deliveries"]
    assert (delivery["issue"], delivery["status"], delivery["subject"]) == (
        "2023-10",
        "sent",
        "October 2023 Newsletter",
    )


def test_erasing_asks_first_then_leaves_only_the_hash_and_refuses_reimport(jo, tmp_path):
    add_delivery(jo, "jo@example.org")
    member = jo.member("jo@example.org")
    path = f"/data/{jo.token('data', 'jo@example.org')}"
    before = jo.snapshot()
    confirm = jo.client.get(f"{path}/erase")  # the confirmation step, on GET: nothing happens yet
    assert confirm.status_code == 200 and "Erase everything" in confirm.text
    assert jo.client.post(f"{path}/erase", data={}).status_code == 400  # no CSRF token
    assert jo.fresh_client().post(f"{path}/erase", data={"csrf_token": "forged"}).status_code == 400
    assert jo.snapshot() == before

    done = jo.submit(f"{path}/erase", {})
    assert done.status_code == 200 and "Your details are erased" in done.text
    assert "jo@example.org" not in done.text
    with jo.store.database.session() as session:
        assert session.scalars(select(Subscriber)).all() == []
        assert session.scalars(select(Delivery)).all() == []
        [suppression] = session.scalars(select(Suppression)).all()
        assert (suppression.email, suppression.reason, suppression.email_hash) == (
            None,
            "erased",
            member.email_hash,
        )
        [record] = session.scalars(select(ConsentRecord)).all()
        assert (record.action, record.subscriber_id, record.email_hash) == ("erased", None, member.email_hash)
    # Nothing in any table holds the address any more.
    assert "jo@example.org" not in repr(jo.snapshot()).lower()
    # Importing the address again is refused; signing up again sends nothing.
    summary = jo.audience.import_csv(write_csv(tmp_path / "again.csv", "email,name\nJo@Example.org,Jo\n"))
    assert (summary.added, summary.skipped) == (0, 1)
    assert "erased" in (tmp_path / "again-import-report.csv").read_text()
    sent = len(jo.smtp.messages)
    assert jo.subscribe("jo@example.org").status_code == 200
    assert jo.member("jo@example.org") is None
    assert not jo.smtp.wait_for(sent + 1, timeout=0.5)
    # and the old links say the details are gone
    assert jo.client.get(jo.preferences).status_code == 410


def test_a_suppressed_new_address_is_never_mailed_and_the_page_does_not_say_so(jo):
    from newsletter.audience import members

    with jo.store.database.session() as session:
        members.suppress(session, "blocked@example.org", "complaint", "test")
    sent = len(jo.smtp.messages)
    response = jo.submit(jo.preferences, {"action": "email", "new_email": "blocked@example.org"})
    assert response.status_code == 303 and response.headers["Location"].endswith("done=email")
    assert not jo.smtp.wait_for(sent + 1, timeout=0.5)
    assert jo.member("jo@example.org").pending_email is None


def test_the_same_address_again_changes_nothing(jo):
    response = jo.submit(jo.preferences, {"action": "email", "new_email": "JO@example.org"})
    assert response.headers["Location"].endswith("done=unchanged")
    assert jo.member("jo@example.org").pending_email is None


def test_asking_for_address_changes_and_new_links_is_rate_limited(jo):
    for number in range(3):
        ok = jo.submit(jo.preferences, {"action": "email", "new_email": "spammed@example.org"})
        assert ok.status_code == 303, number
    refused = jo.submit(jo.preferences, {"action": "email", "new_email": "Spammed@example.org"})
    assert refused.status_code == 429
    # Jo's own address: her sign-up was the first of its three emails this hour.
    preferences = jo.preferences
    for _ in range(2):
        preferences = jo.submit(preferences, {"action": "revoke"}).headers["Location"].partition("?")[0]
    assert jo.submit(preferences, {"action": "revoke"}).status_code == 429


def test_confirming_a_new_address_without_the_pages_csrf_token_changes_nothing(jo):
    jo.submit(jo.preferences, {"action": "email", "new_email": "new@example.org"})
    path = jo.last_link("new@example.org")
    response = jo.client.post(path, data={})
    assert response.status_code == 400 and "Please press the button again" in response.text
    assert jo.member("jo@example.org").pending_email == "new@example.org"
