"""A member's whole journey in real headless Chromium against `newsletter serve` (waitress, a child
process on loopback) with a real SMTP server: sign up through the form, open the emailed link and
confirm, change topics, receive a real campaign, and leave with the RFC 8058 one-click POST its
List-Unsubscribe header names. The database is checked after every step; screenshots of each page at
375 px and 1280 px go to test-artifacts/ (web-*.png)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import func, select

from browser_support import Scheme, colours, one_click_post, open_page, overflow, screenshot, serving
from contrast_support import AA_NON_TEXT, AA_TEXT, contrast, luminance
from newsletter.db.models import Status, Subscriber
from newsletter.delivery.service import Sending
from newsletter.testing.smtp import ANY_ADDRESS, RecordingSMTPServer
from newsletter.tokens import Tokens
from test_audience_support import write_csv
from web_support import SECRET

pytestmark = pytest.mark.browser

WIDTHS = (375, 1280)


@pytest.fixture
def served(tmp_path):
    """The real server with base_url pointing at itself, its database, and the SMTP server it mails."""
    with serving(tmp_path) as served_site:
        yield served_site


def look(browser: Browser, url: str, name: str, scheme: Scheme = "light") -> None:
    """Screenshots of a page at phone and desktop widths; nothing may stick out sideways."""
    for width in WIDTHS:
        page = open_page(browser, url, width, scheme)
        screenshot(page, f"web-{name}-{width}px" if scheme == "light" else f"web-{name}-{scheme}-{width}px")
        assert overflow(page) == 0, (name, width)
        page.close()


def mail_link(smtp: RecordingSMTPServer, count: int, to: str, base: str) -> str:
    assert smtp.wait_for(count, timeout=10)
    message = smtp.messages[count - 1].message()
    assert message["To"].addresses[0].addr_spec == to
    text = message.get_body(("plain",)).get_content()
    return re.search(re.escape(base) + r"/[a-z]+/[A-Za-z0-9._-]+", text).group(0)


def test_sign_up_confirm_change_topics_receive_an_issue_and_unsubscribe_in_one_click(browser, served):
    server, audience, smtp = served
    base = server.url

    # 1. The form, filled in on a phone with a name that is not HTML.
    look(browser, f"{base}/subscribe", "subscribe")
    page = open_page(browser, f"{base}/subscribe", 375)
    page.get_by_label("Email address").fill("Jo.Bloggs@example.org")
    page.get_by_label("Your name").fill("Jo <b>Bloggs</b>")
    page.get_by_label("Organisation").fill("Acme Trust")
    page.get_by_label("Region").select_option("wales")
    page.get_by_label("Housing, homes and places").check()
    page.get_by_label("Events and conference news").check()
    page.get_by_label("I would like to receive").check()
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    screenshot(page, "web-sent-375px")
    pending = audience.member("jo.bloggs@example.org")
    assert pending.subscriber.status == Status.PENDING
    assert pending.subscriber.name == "Jo <b>Bloggs</b>"
    assert [record.action for record in pending.consent] == ["subscribed"]

    # 2. The confirmation email; its link shows a button, and only pressing it confirms.
    confirm_url = mail_link(smtp, 1, "Jo.Bloggs@example.org", base)
    assert urlsplit(confirm_url).path.startswith("/confirm/")
    look(browser, confirm_url, "confirm")
    page.goto(confirm_url)
    assert audience.member("jo.bloggs@example.org").subscriber.status == Status.PENDING
    page.get_by_role("button", name="Confirm my subscription").click()
    page.get_by_role("heading", name="You are subscribed").wait_for()
    confirmed = audience.member("jo.bloggs@example.org")
    assert confirmed.subscriber.status == Status.ACTIVE
    record = confirmed.consent[-1]
    assert record.action == "confirmed" and record.ip_address == "127.0.0.1"
    assert "HeadlessChrome" in record.user_agent and record.wording_version
    assert confirmed.lists == [("events", True), ("newsletter", True)]
    assert confirmed.topics == ["housing"]

    # 3. Preferences: change topics, with the keyboard as much as with the pointer.
    page.get_by_role("link", name="Change what you receive").click()
    page.get_by_role("heading", name="Your preferences").wait_for()
    preferences_url = page.url
    look(browser, preferences_url, "preferences")
    assert page.get_by_label("Your name").input_value() == "Jo <b>Bloggs</b>"  # shown as text
    page.get_by_label("Housing, homes and places").uncheck()
    page.get_by_label("Early years").focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Save my preferences").click()
    page.get_by_text("Your changes are saved.").wait_for()
    screenshot(page, "web-preferences-saved-375px")
    changed = audience.member("jo.bloggs@example.org")
    assert "housing" not in changed.topics and "early-years" in changed.topics
    assert changed.consent[-1].action == "preferences_changed"
    # The my-data pages, looked at only (opening them changes nothing).
    page.get_by_role("link", name="Download or erase your data").click()
    page.get_by_role("heading", name="Your data").wait_for()
    look(browser, page.url, "data")
    look(browser, f"{page.url}/erase", "erase")
    assert audience.member("jo.bloggs@example.org").subscriber.status == Status.ACTIVE

    # 4. A real campaign to the newsletter list, delivered by a worker to the same SMTP server.
    sending = Sending(server.settings)
    try:
        _, size = sending.send("2023-10", ["newsletter"])
        assert size == 1
        stats = sending.work(once=True)
        assert stats.sent == 1
    finally:
        sending.close()
    assert smtp.wait_for(2, timeout=10)
    issue = smtp.messages[1].message()
    assert issue["To"].addresses[0].addr_spec == "Jo.Bloggs@example.org"
    assert issue["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe_url = issue["List-Unsubscribe"].strip().removeprefix("<").removesuffix(">")
    assert unsubscribe_url.startswith(f"{base}/unsubscribe/")
    look(browser, unsubscribe_url, "unsubscribe")  # the page only: looking changes nothing
    assert audience.member("jo.bloggs@example.org").subscriber.status == Status.ACTIVE

    # 5. The mail provider's one-click POST: no cookie, no CSRF token, answered 200.
    status, headers = one_click_post(unsubscribe_url)
    assert status == 200
    assert headers.get("Location") is None and headers.get("Set-Cookie") is None
    gone = audience.member("jo.bloggs@example.org")
    assert gone.subscriber.status == Status.UNSUBSCRIBED
    assert (gone.consent[-1].action, gone.consent[-1].source) == ("unsubscribed", "one-click")
    page.close()


def test_the_form_is_usable_with_the_keyboard_and_errors_are_tied_to_fields(browser, served):
    server, audience, _ = served
    page: Page = open_page(browser, f"{server.url}/subscribe", 375)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the main content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "field-email"
    # Submitting with the keyboard and nothing filled in: every problem is named and tied to its field.
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Please check these").wait_for()
    screenshot(page, "web-subscribe-errors-375px")
    assert overflow(page) == 0
    email = page.locator("#field-email")
    assert email.get_attribute("aria-invalid") == "true"
    assert "error-email" in email.get_attribute("aria-describedby")
    assert page.locator("#error-email").inner_text().startswith("Error:")
    assert page.locator("#field-consent").get_attribute("aria-invalid") == "true"
    # The honeypot is never reached with Tab.
    reached = set()
    for _ in range(60):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.name || document.activeElement.id"))
    assert "website" not in reached
    with audience.store.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 0
    page.close()


TEXT = "h1, h2, p, li, label, legend, a, button, .hint, .field-error, .error-summary a, .network"


def check_contrast(page: Page, scheme: str) -> int:
    """Every text on the page 4.5:1 on what it sits on; field borders and button edges 3:1 against
    what surrounds them (WCAG 1.4.3, 1.4.11); the page itself light or dark as the reader asked.
    Returns how many texts were measured."""
    [body] = colours(page, "body")
    assert (
        (luminance(body["background"]) < 0.02) if scheme == "dark" else (luminance(body["background"]) > 0.9)
    )
    texts = [sample for sample in colours(page, TEXT) if sample["text"]]
    for sample in texts:
        ratio = contrast(sample["color"], sample["background"])
        assert ratio >= AA_TEXT, (scheme, sample, round(ratio, 2))
    for sample in colours(page, ".button, input[type=email], input[type=text], select"):
        ratio = contrast(sample["border"], sample["around"])
        assert ratio >= AA_NON_TEXT, (scheme, sample, round(ratio, 2))
    return len(texts)


def check_focus_ring(page: Page, scheme: str) -> None:
    """Tab to the skip link, then into the form: each ring 3:1 against what is around it."""
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.id")
    [sample] = colours(page, f"#{focused}")
    assert contrast(sample["outline"], sample["around"]) >= AA_NON_TEXT, (scheme, sample)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_and_controls_meet_wcag_aa_contrast_in_light_and_dark(browser, served, tmp_path, scheme):
    server, audience, smtp = served
    # 1. The form with every error showing.
    page = open_page(browser, f"{server.url}/subscribe", 375, scheme)
    check_focus_ring(page, scheme)
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Please check these").wait_for()
    assert check_contrast(page, scheme) > 20
    screenshot(page, f"web-subscribe-errors-{scheme}-375px")

    # 2. The relay refusing: the try-again page, its problem banner and the form as it was typed.
    smtp.reply_at_rcpt(ANY_ADDRESS, "451 4.3.0 Mail system busy, try again later")
    page.get_by_label("Email address").fill("jo@example.org")
    page.get_by_label("I would like to receive").check()
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_text("We could not send you an email just now").wait_for()
    assert page.get_by_label("Email address").input_value() == "jo@example.org"
    check_contrast(page, scheme)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"web-subscribe-not-sent-{scheme}-{width}px")
        assert overflow(page) == 0
    smtp.clear_script()

    # 3. A member's preferences with a note: banners, secondary buttons, radio buttons.
    audience.import_csv(write_csv(tmp_path / "jo.csv", "email,name\njo@example.org,Jo\n"))
    jo = audience.member("jo@example.org").subscriber
    page.goto(f"{server.url}/preferences/{Tokens(SECRET).make('preferences', jo.id, jo.link_key)}?done=saved")
    page.get_by_text("Your changes are saved.").wait_for()
    check_contrast(page, scheme)
    look(browser, page.url, "preferences", scheme)
    look(browser, f"{server.url}/subscribe", "subscribe", scheme)
    page.close()


def test_the_archive_served_by_the_app_leads_to_its_sign_up_form(browser, served):
    server, _, _ = served
    page = open_page(browser, f"{server.url}/archive/2023-10/", 375, "dark")
    page.get_by_role("banner").get_by_role("link", name="Subscribe").click()
    page.wait_for_url(f"{server.url}/subscribe")
    page.get_by_role("heading", name="Join the Health Equity Network newsletter").wait_for()
    page.close()
