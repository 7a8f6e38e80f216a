"""The reports in real headless Chromium, against `newsletter serve` (waitress, a child process on
loopback): a campaign sent for real (one address deferred once, one refused, clicks counted), then an
editor opens its report from the campaign's page, the reports page and the audience report. Each chart
is an SVG with a name and a description, has its numbers in a table beside it, and its table downloads
as CSV; axe-core finds nothing wrong at 375 and 1280 px, nothing is wider than a phone's screen, and
screenshots go to test-artifacts/desk-report-*.png."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from browser_support import looked_at, recorded_sign_in_link, sign_in_to_desk
from newsletter.audience.store import Store
from newsletter.db.models import Role
from newsletter.team import Team
from newsletter.testing.processes import ServeProcess, free_port
from newsletter.testing.smtp import RecordingSMTPServer
from report_support import CLICKS, send_reported_campaign
from web_support import web_settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EDITOR = "ed.itor@example.org"


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[str, RecordingSMTPServer, int, str]]:
    port = free_port()
    with RecordingSMTPServer() as smtp, RecordingSMTPServer() as relay:
        settings = web_settings(
            f"sqlite:///{tmp_path / 'newsletter.sqlite3'}", smtp.port, base_url=f"http://127.0.0.1:{port}"
        )
        store = Store.open(settings)
        store.upgrade()
        Team(store.database, settings.secret_key).add(EDITOR, Role.EDITOR, name="Ed Itor")
        store.close()
        campaign_id, clicked = send_reported_campaign(settings, relay, tmp_path / "members.csv")
        with ServeProcess(settings, port=port) as server:
            yield server.url, smtp, campaign_id, clicked
            assert "Traceback" not in server.log(), server.log()


def signed_in(browser: Browser, base: str, smtp: RecordingSMTPServer) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in_to_desk(page, base, EDITOR, lambda: recorded_sign_in_link(smtp, base))
    return page


def charts_with_tables(page: Page) -> list[str]:
    """The name of each chart on the page, checked to be an image with a name and a description and to
    sit in a figure that also has the table of its numbers."""
    names = []
    for section in page.locator("section.report-figure").all():
        charts = section.locator("svg[role=img]")
        if not charts.count():
            continue
        expect(section.locator("table")).to_have_count(1)
        for svg in charts.all():
            name = svg.evaluate("node => node.querySelector('title').textContent")
            described = svg.evaluate("node => node.querySelector('desc').textContent")
            assert name and described, "every chart is named and described"
            names.append(name)
    return names


def test_an_editor_reads_a_campaigns_report_and_downloads_its_tables(browser, served):
    base, smtp, campaign_id, clicked = served
    page = signed_in(browser, base, smtp)
    page.goto(f"{base}/desk/campaigns/{campaign_id}")
    page.get_by_role("link", name="Its report").click()
    expect(page.get_by_role("heading", name=f"Report on campaign {campaign_id}: 2023-10")).to_be_visible()
    names = charts_with_tables(page)
    assert "Messages per recipient domain" in names and len(names) >= 3
    domains = page.locator(
        "section.report-figure", has=page.get_by_role("heading", name="By recipient domain")
    )
    row = domains.get_by_role("row", name="throttling.example")
    # messages, sent, deferred, failed, bounced, waiting (then the median time to accept)
    assert row.get_by_role("cell").all_inner_texts()[:6] == ["1", "1", "1", "0", "0", "0"]
    links = page.locator("section.report-figure", has=page.get_by_role("heading", name="Clicks per link"))
    clicked_row = links.get_by_role("row").filter(has=page.get_by_role("cell", name=clicked, exact=True))
    assert clicked_row.get_by_role("cell").all_inner_texts()[-2:] == [clicked, str(CLICKS)]
    with page.expect_download() as downloading:
        domains.get_by_role("link", name="Download “By recipient domain” as CSV").click()
    download = downloading.value
    with open(download.path(), encoding="utf-8", newline="") as file:
        rows = list(csv.reader(io.StringIO(file.read())))
    assert download.suggested_filename == f"campaign-{campaign_id}-domains.csv"
    assert rows[[r[0] for r in rows].index("gone.example")][:6] == ["gone.example", "1", "0", "0", "0", "1"]
    looked_at(page, "desk-report-campaign")


def test_an_editor_compares_campaigns_and_reads_the_audience(browser, served):
    base, smtp, campaign_id, _ = served
    page = signed_in(browser, base, smtp)
    page.get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    assert charts_with_tables(page)
    expect(page.get_by_role("link", name=f"Campaign {campaign_id}: 2023-10")).to_be_visible()
    looked_at(page, "desk-report-compare")
    page.get_by_role("link", name="how the membership grows and changes").click()
    expect(page.get_by_role("heading", name="The audience")).to_be_visible()
    names = charts_with_tables(page)
    assert "Members at each month's end" in names
    looked_at(page, "desk-report-audience")
    page.emulate_media(color_scheme="dark")
    looked_at(page, "desk-report-audience-dark")
