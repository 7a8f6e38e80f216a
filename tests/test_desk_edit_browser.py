"""Editing an issue at the desk in real headless Chromium, against `newsletter serve` (waitress, a child
process on loopback) over a copy of the sample issues folder, with a real SMTP server for the sign-in
link: open the editor from the issue's page, add a publication, give it an address that is not one,
save, find the message next to the field, fix it, save again. No JavaScript is involved: the page
has none. axe-core finds nothing wrong at 375 and 1280 px, in light and dark, and nothing is wider
than a phone's screen; screenshots go to test-artifacts/desk-edit-*.png."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from browser_support import (
    axe_violations,
    looked_at,
    overflow,
    recorded_sign_in_link,
    screenshot,
    sign_in_to_desk,
)
from newsletter.audience.store import Store
from newsletter.content.loader import load_issue
from newsletter.db.models import Role
from newsletter.team import Team
from newsletter.testing.processes import ServeProcess, free_port
from newsletter.testing.smtp import RecordingSMTPServer
from newsletter.vocabulary import Vocabulary
from web_support import REPO_ROOT, web_settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EDITOR = "ed.itor@example.org"


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[str, RecordingSMTPServer, Path]]:
    """The real server over a copy of the issues, an editor on the team, and the SMTP server it mails."""
    issues = tmp_path / "issues"
    shutil.copytree(REPO_ROOT / "issues", issues)
    port = free_port()
    with RecordingSMTPServer() as smtp:
        settings = web_settings(
            f"sqlite:///{tmp_path / 'newsletter.sqlite3'}",
            smtp.port,
            base_url=f"http://127.0.0.1:{port}",
            issues_dir=issues,
        )
        store = Store.open(settings)
        store.upgrade()
        Team(store.database, settings.secret_key).add(EDITOR, Role.EDITOR, name="Ed Itor")
        store.close()
        with ServeProcess(settings, port=port) as server:
            yield server.url, smtp, issues / "2023-10" / "issue.yaml"
            assert "Traceback" not in server.log(), server.log()


def by_id(page: Page, element_id: str):
    return page.locator(f'[id="{element_id}"]')


def test_an_editor_adds_a_publication_fixes_its_address_and_saves(browser, served):
    base, smtp, issue_file = served
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in_to_desk(page, base, EDITOR, lambda: recorded_sign_in_link(smtp, base))
    page.goto(f"{base}/desk/issues/2023-10")
    page.get_by_role("link", name="Edit the issue").click()
    expect(page.get_by_role("heading", name="Edit October 2023 Newsletter")).to_be_visible()
    looked_at(page, "desk-edit")

    # Add a publication to the "New publications" section: the page comes back at the new item.
    page.get_by_role("button", name="Add a publication to Section 3 (Publications)").click()
    expect(page.get_by_text("Added a publication. Nothing is saved until you press Save.")).to_be_visible()
    assert page.url.endswith("#field-sections.3.items.3")
    item = by_id(page, "field-sections.3.items.3")
    expect(page.get_by_role("group", name="Publication 3", exact=True)).to_be_visible()
    item.get_by_label("Title", exact=True).fill("Fair Society, Healthy Lives")
    item.get_by_label("Address of the report").fill("www.instituteofhealthequity.example.org/fair-society")
    item.get_by_label("Summary", exact=True).fill("The Marmot Review, ten years on.")
    item.get_by_label("Date published").fill("2020-02-25")
    item.get_by_label("Authors").fill("Michael Marmot\nUCL Institute of Health Equity")
    item.locator("summary").click()  # the topics are folded away under a summary
    item.get_by_label("Health equity and the social determinants").check()
    page.get_by_role("button", name="Save", exact=True).first.click()

    expect(page.get_by_text("Saved. 1 problem to fix before this issue can be submitted.")).to_be_visible()
    error = by_id(page, "error-sections.3.items.3.url")
    expect(error).to_contain_text("must be an https:// address")
    field = by_id(page, "field-sections.3.items.3.url")
    expect(field).to_have_attribute("aria-invalid", "true")
    assert "error-sections.3.items.3.url" in (field.get_attribute("aria-describedby") or "")
    assert "url: www.instituteofhealthequity.example.org/fair-society" in issue_file.read_text(
        encoding="utf-8"
    )
    page.set_viewport_size({"width": 375, "height": 900})
    page.get_by_role("link", name=re.compile(r"publication 3: Address of the report: must be")).click()
    expect(field).to_be_in_viewport()
    assert axe_violations(page) == []
    assert overflow(page) == 0
    screenshot(page, "desk-edit-problem-375")

    # Fix it; Enter in a field presses the form's first button, Save.
    field.fill("https://www.instituteofhealthequity.example.org/fair-society")
    field.press("Enter")
    expect(page.get_by_text("Saved. No problems found.")).to_be_visible()
    expect(by_id(page, "error-sections.3.items.3.url")).to_have_count(0)
    issue = load_issue(issue_file, Vocabulary.load(REPO_ROOT / "subscribers"))
    added = issue.sections[2].items[2]
    assert added.url == "https://www.instituteofhealthequity.example.org/fair-society"
    assert added.authors == ("Michael Marmot", "UCL Institute of Health Equity")
    assert added.topics == ("health-equity",)

    page.emulate_media(color_scheme="dark")
    assert axe_violations(page) == [], "dark"
    screenshot(page, "desk-edit-dark-375")
    page.close()
