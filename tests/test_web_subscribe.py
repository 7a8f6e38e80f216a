"""Signing up and confirming, on SQLite and PostgreSQL: the form, CSRF, the honeypot, rate limits, the
same answer for every address, the confirmation email, and confirming only on POST."""

from __future__ import annotations

import re
import threading

import pytest

from newsletter.audience import members
from newsletter.db.models import Status
from newsletter.web.ratelimit import Limit, Limits
from web_support import BASE_URL, open_site


@pytest.fixture
def site(database_url):
    yield from open_site(database_url)


def test_the_form_offers_the_vocabulary_and_the_versioned_consent_wording(site):
    response, _ = site.form("/subscribe")
    assert response.status_code == 200
    page = response.text
    vocabulary = site.store.vocabulary
    for kind in ("topics", "lists", "sectors", "regions"):
        for slug, name in getattr(vocabulary, kind).items():
            assert f'value="{slug}"' in page and name.replace("'", "&#39;") in page, (kind, slug)
    consent = site.app.extensions["newsletter"].consent
    assert consent.wording in page.replace("&#39;", "'")
    # Every field has a label; the checkbox groups are fieldsets with legends.
    for field in ("email", "name", "organisation", "sector", "region"):
        assert f'<label for="field-{field}">' in page
        assert f'id="field-{field}"' in page
    assert page.count("<fieldset") == page.count("<legend>") == 3
    assert "<script" not in page and " style=" not in page


def test_a_new_address_becomes_pending_with_its_consent_and_gets_a_confirmation_email(site):
    response = site.subscribe(
        "Jo.Bloggs@Example.ORG",
        name="Jo Bloggs",
        organisation="Acme Trust",
        sector="nhs",
        region="wales",
        topics=["housing", "early-years"],
        lists=["newsletter", "events"],
    )
    assert response.status_code == 200
    assert "Check your email" in response.text
    member = site.member("jo.bloggs@example.org")
    assert member is not None and member.status == Status.PENDING
    assert (member.email, member.name, member.region) == ("Jo.Bloggs@example.org", "Jo Bloggs", "wales")
    [record] = site.consent("jo.bloggs@example.org")
    assert record.action == "subscribed" and record.source == "web"
    assert record.wording_version == site.app.extensions["newsletter"].consent.version
    assert record.ip_address == "127.0.0.1"
    assert record.user_agent and record.user_agent.startswith("Werkzeug")
    assert record.details["lists"] == ["newsletter", "events"]

    [message] = site.mail(1)
    assert message["To"].addresses[0].addr_spec == "Jo.Bloggs@example.org"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe"] is None  # not a campaign
    assert message.get_content_type() == "multipart/alternative"
    path = site.last_link("jo.bloggs@example.org")
    assert path.startswith("/confirm/")
    assert site.tokens.read("confirm", path.removeprefix("/confirm/"), site.key_of) == member.id
    assert "@" not in path  # the address is not in the link


def test_confirming_happens_only_on_post_and_records_consent(site):
    site.subscribe("jo@example.org", topics=["housing"], lists=["newsletter", "events"])
    path = site.last_link("jo@example.org")
    before = site.snapshot()
    for _ in range(3):  # a mail scanner opening the link, then the person
        response = site.client.get(path)
        assert response.status_code == 200
        assert "Confirm my subscription" in response.text
        assert f'action="{path}"' in response.text and 'method="post"' in response.text
    assert site.snapshot() == before
    assert site.member("jo@example.org").status == Status.PENDING

    _, token = site.form(path)
    response = site.client.post(path, data={"csrf_token": token})
    assert response.status_code == 200 and "You are subscribed" in response.text
    member = site.member("jo@example.org")
    assert member.status == Status.ACTIVE and member.confirmed_at is not None
    subscribed, confirmed = site.consent("jo@example.org")
    assert confirmed.action == "confirmed"
    assert confirmed.wording_version == subscribed.wording_version
    assert confirmed.ip_address == "127.0.0.1" and confirmed.user_agent
    view = site.audience.member("jo@example.org")
    assert view.lists == [("events", True), ("newsletter", True)]
    assert view.topics == ["housing"]
    # The page offers the member their preferences, and confirming again changes nothing.
    assert re.search(r'href="/preferences/[^"]+"', response.text)
    after = site.snapshot()
    again = site.client.post(path, data={"csrf_token": token})
    assert again.status_code == 200 and "already confirmed" in again.text
    assert site.snapshot() == after


def normalised(response, address):
    return response.status_code, response.text.replace(address, "ADDRESS")


def test_the_same_page_for_new_pending_active_unsubscribed_suppressed_and_erased_addresses(site):
    site.active_member("active@example.org")
    site.subscribe("pending@example.org")
    site.active_member("left@example.org")
    site.audience.unsubscribe("left@example.org")
    site.active_member("erased@example.org")
    site.audience.erase("erased@example.org")
    with site.store.database.session() as session:
        members.suppress(session, "blocked@example.org", "complaint", "test")
    sent_before = len(site.mail(4))

    answers = {
        address: normalised(site.subscribe(address), address)
        for address in (
            "new@example.org",
            "pending@example.org",
            "active@example.org",
            "left@example.org",
            "blocked@example.org",
            "erased@example.org",
        )
    }
    assert len(set(answers.values())) == 1, answers
    assert answers["new@example.org"][0] == 200

    # What went out differs, and nobody suppressed or erased got anything.
    messages = site.mail(sent_before + 4)[sent_before:]
    assert len(site.smtp.messages) == sent_before + 4
    to = {m["To"].addresses[0].addr_spec: m for m in messages}
    assert set(to) == {"new@example.org", "pending@example.org", "active@example.org", "left@example.org"}
    assert site.last_link("active@example.org").startswith("/preferences/")
    assert "already receives them" in to["active@example.org"].get_body(("plain",)).get_content()
    for address in ("new@example.org", "pending@example.org", "left@example.org"):
        assert site.last_link(address).startswith("/confirm/")
    # The erased address is still only a hash: signing up did not bring it back.
    assert site.member("erased@example.org") is None
    assert site.member("blocked@example.org") is None


def test_an_active_member_signing_up_again_changes_nothing(site):
    site.active_member("jo@example.org", name="Jo Bloggs")
    before = site.snapshot()
    site.subscribe("jo@example.org", name="Someone Else", lists=["events"])
    after = site.snapshot()
    assert after["subscribers"] == before["subscribers"]
    assert after["subscriptions"] == before["subscriptions"]
    assert after["consent_records"] == before["consent_records"]


def test_an_unsubscribed_member_can_join_again_by_confirming(site):
    preferences = site.active_member("jo@example.org", name="Jo Bloggs", lists=["newsletter", "events"])
    site.submit(
        preferences, {"action": "save", "name": "Jo Bloggs", "lists": ["newsletter"], "format": "text"}
    )
    site.audience.unsubscribe("jo@example.org")
    site.subscribe("jo@example.org", lists=["newsletter"], name="")
    assert site.member("jo@example.org").status == Status.UNSUBSCRIBED  # not until confirmed
    path = site.last_link("jo@example.org")
    assert site.submit(path, {}).status_code == 200
    member = site.member("jo@example.org")
    assert member.status == Status.ACTIVE and member.unsubscribed_at is None
    assert (member.name, member.format.value) == ("Jo Bloggs", "text")  # kept: not on the sign-up form
    assert [record.action for record in site.consent("jo@example.org")][-2:] == ["subscribed", "confirmed"]


@pytest.mark.parametrize("csrf", ["missing", "garbage", "another browser's", "no cookie"])
def test_a_post_without_a_valid_csrf_token_is_refused_and_changes_nothing(site, csrf):
    data = {"email": "jo@example.org", "lists": ["newsletter"], "consent": "yes", "name": "Jo"}
    _, token = site.form("/subscribe")
    other = site.fresh_client()
    if csrf == "garbage":
        data["csrf_token"] = token[:-3] + "abc"
    elif csrf == "another browser's":
        response = other.get("/subscribe")
        data["csrf_token"] = re.search(r'name="csrf_token" value="([^"]+)"', response.text).group(1)
    elif csrf == "no cookie":
        data["csrf_token"] = token
    client = site.fresh_client() if csrf == "no cookie" else site.client
    before = site.snapshot()
    response = client.post("/subscribe", data=data)
    assert response.status_code == 400
    assert "This form had expired" in response.text
    assert 'value="jo@example.org"' in response.text  # what was typed is kept
    assert site.snapshot() == before
    assert site.smtp.messages == []
    # and the page's fresh token works
    fresh = re.search(r'name="csrf_token" value="([^"]+)"', response.text).group(1)
    assert client.post("/subscribe", data={**data, "csrf_token": fresh}).status_code == 200
    assert site.member("jo@example.org") is not None


def test_the_honeypot_gets_the_usual_page_and_nothing_happens(site):
    before = site.snapshot()
    robot = site.subscribe("robot@example.org", website="https://spam.example")
    assert site.snapshot() == before
    assert site.smtp.messages == []
    person = site.subscribe("person@example.org")
    assert normalised(robot, "robot@example.org") == normalised(person, "person@example.org")
    # The field is hidden from people and from screen readers, without inline styles.
    page = site.client.get("/subscribe").text
    assert re.search(r'<div class="honeypot" aria-hidden="true">', page)
    assert 'tabindex="-1"' in page


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"email": ""}, "email", "Enter your email address"),
        ({"email": "not an address"}, "email", "Enter an email address like"),
        ({"email": "jo@example..org"}, "email", "Enter an email address like"),
        ({"lists": []}, "lists", "Choose at least one list"),
        ({"lists": ["no-such-list"]}, "lists", "Choose from the options"),
        ({"topics": ["housing", "astrology"]}, "topics", "Choose from the options"),
        ({"sector": "pirates"}, "sector", "Choose one of the options"),
        ({"consent": ""}, "consent", "Tick the box"),
        ({"name": "x" * 201}, "name", "at most|keep this to 200"),
    ],
)
def test_mistakes_are_shown_beside_their_fields_and_nothing_is_stored(site, fields, field, message):
    before = site.snapshot(with_rate_limits=False)
    data = {"email": "jo@example.org", "lists": ["newsletter"], "consent": "yes", **fields}
    response = site.submit("/subscribe", data)
    assert response.status_code == 400
    assert re.search(message, response.text)
    page = response.text
    # The message has an id the field points at, the field says it is invalid, the summary links to it.
    assert f'id="error-{field}"' in page
    tag = re.search(rf'<(?:input|select|fieldset)[^>]*id="field-{field}"[^>]*>', page).group(0)
    assert 'aria-invalid="true"' in tag and f"error-{field}" in tag
    assert f'href="#field-{field}"' in page
    assert site.snapshot(with_rate_limits=False) == before
    assert site.smtp.messages == []


def test_what_was_typed_is_shown_again_escaped(site):
    response = site.submit(
        "/subscribe", {"email": "bad", "name": "<script>alert(1)</script>", "organisation": '"><b>x</b>'}
    )
    assert response.status_code == 400
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert "<b>x</b>" not in response.text


@pytest.fixture
def tight(database_url):
    yield from open_site(database_url, limits=Limits(per_client=Limit(4, 600), per_address=Limit(2, 3600)))


def test_the_rate_limit_per_address(tight):
    for _ in range(2):
        assert tight.subscribe("jo@example.org").status_code == 200
    response = tight.subscribe("JO@example.org")  # the same address in another case
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3600"
    assert "Too many tries" in response.text
    assert len(tight.mail(2)) == 2
    assert len(tight.smtp.messages) == 2
    # another address from the same client is still welcome
    assert tight.subscribe("sam@example.org").status_code == 200


def test_the_rate_limit_per_client_is_shared_by_every_server_process(tight, database_url):
    # another app on the same database, as another server process would be
    other = open_site(database_url, limits=Limits(per_client=Limit(4, 600), per_address=Limit(2, 3600)))
    second = next(other)
    answers = []
    try:
        for number in range(6):
            site = tight if number % 2 == 0 else second
            answers.append(site.subscribe(f"member{number}@example.org").status_code)
    finally:
        other.close()
    assert answers == [200, 200, 200, 200, 429, 429]
    assert tight.member("member4@example.org") is None
    assert tight.member("member3@example.org") is not None


def test_the_confirmation_email_escapes_nothing_into_html(site):
    site.subscribe("o'brien@example.org")
    [message] = site.mail(1)
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "o&#39;brien@example.org" in html
    assert "o'brien@example.org" in text
    assert BASE_URL + "/confirm/" in text


def test_a_double_submission_of_a_new_address_makes_one_member(site):
    """Two POSTs for one new address at the same moment (a double tap): both answered, one member."""
    clients = [site.fresh_client() for _ in range(6)]
    forms = []
    for client in clients:
        page = client.get("/subscribe").text
        forms.append(re.search(r'name="csrf_token" value="([^"]+)"', page).group(1))
    start = threading.Barrier(len(clients))
    statuses: list[int] = []

    def post(client, token):
        start.wait()
        data = {"csrf_token": token, "email": "twice@example.org", "lists": ["newsletter"], "consent": "yes"}
        statuses.append(client.post("/subscribe", data=data).status_code)

    threads = [threading.Thread(target=post, args=pair) for pair in zip(clients, forms, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200, 200, 200, 429, 429, 429]  # three per address an hour
    assert [record.action for record in site.consent("twice@example.org")] == ["subscribed"] * 3


def test_confirming_without_the_pages_csrf_token_changes_nothing(site):
    site.subscribe("jo@example.org")
    path = site.last_link("jo@example.org")
    before = site.snapshot()
    for client, data in ((site.client, {}), (site.fresh_client(), {"csrf_token": "forged"})):
        response = client.post(path, data=data)
        assert response.status_code == 400
        assert "nothing was changed. Please press the button again." in response.text
        assert "Confirm my subscription" in response.text  # the button, with a fresh token
    assert site.snapshot() == before
    assert site.member("jo@example.org").status == Status.PENDING
