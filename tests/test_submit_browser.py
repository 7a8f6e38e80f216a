"""Sharing work in real headless Chromium against `newsletter serve` (a child process on loopback): asking
for a link, choosing what to share, a mistake shown at its field and fixed, the thanks, and the
preferences page listing it. Every page passes axe-core with nothing wider than a phone, and is
screenshotted at 375 px and 1280 px into test-artifacts/ (submit-*.png)."""

from __future__ import annotations

import pytest

from browser_support import looked_at, serving
from newsletter.tokens import Tokens
from web_support import SECRET

pytestmark = pytest.mark.browser


@pytest.fixture
def served(tmp_path):
    """The real server, its database with Jo (a member of Acme Trust) and the SMTP server it mails."""
    with serving(tmp_path, "email,name,organisation\njo@example.org,Jo Bloggs,Acme Trust\n") as (
        server,
        audience,
        _,
    ):
        yield server, audience


def test_a_member_shares_a_report_fixing_a_mistake_on_the_way(browser, served):
    server, audience = served
    page = browser.new_page(viewport={"width": 375, "height": 900})

    page.goto(f"{server.url}/submit")
    looked_at(page, "submit-ask")
    page.get_by_label("Email address").fill("jo@example.org")
    page.get_by_role("button", name="Email me a link").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    looked_at(page, "submit-sent", reload=False)

    jo = audience.member("jo@example.org").subscriber
    page.goto(f"{server.url}/submit/{Tokens(SECRET).make('submit', jo.id, jo.link_key)}")
    looked_at(page, "submit-choose")
    page.get_by_label("A publication or report").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Share a publication or report").wait_for()
    looked_at(page, "submit-form")

    page.get_by_label("Title").fill("Health equity in Leeds: <the> first year")
    page.get_by_label("Address of the report").fill("leeds.example/report")
    page.get_by_label("Summary").fill("What we did, and **what we learnt**.")
    page.get_by_label("Date published").fill("2024-02-25")
    page.get_by_label("Housing, homes and places").check()
    page.get_by_role("button", name="Send it to the editors").click()

    # Both mistakes are at their fields, read with them, and linked from the summary; nothing is lost.
    error = page.locator("#error-url")
    error.wait_for()
    assert "https://" in error.inner_text()
    url = page.get_by_label("Address of the report")
    assert (
        "error-url" in url.get_attribute("aria-describedby") and url.get_attribute("aria-invalid") == "true"
    )
    assert url.input_value() == "leeds.example/report"
    assert "HTML tags" in page.locator("#error-title").inner_text()
    assert page.get_by_label("Summary").input_value() == "What we did, and **what we learnt**."
    assert page.get_by_label("Housing, homes and places").is_checked()
    assert page.get_by_label("If it is published, say it was shared by Acme Trust").is_checked()
    looked_at(page, "submit-form-errors", reload=False)
    page.get_by_role(
        "link", name="Address of the report"
    ).click()  # the summary's link takes the reader there
    assert page.evaluate("document.activeElement.id") == "field-url"

    page.get_by_label("Title").fill("Health equity in Leeds: the first year")
    url.fill("https://leeds.example/report")
    page.get_by_role("button", name="Send it to the editors").click()
    page.get_by_role("heading", name="Thank you: it is with the editors").wait_for()
    looked_at(page, "submit-done", reload=False)

    page.get_by_role("link", name="See your submissions and where each stands").click()
    page.get_by_role("heading", name="Your submissions").wait_for()
    assert page.get_by_text("Health equity in Leeds: the first year").is_visible()
    assert page.get_by_text("Waiting for the editors").is_visible()
    looked_at(page, "submit-preferences")
    page.close()
