"""The January 2023 launch issue (quotes, a full webinar, a table) as members see it, in Chromium.

Screenshots at phone (375 px) and desktop (600 px) widths go to test-artifacts/ to be looked at; the
assertions are what a reader would notice: nothing runs off the side, the quotes, the event's time,
speakers and buttons, and the table are there and fit.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from browser_support import open_page, overflow, screenshot
from newsletter.delivery.copies import render_copy
from newsletter.editor import Editor
from newsletter.settings import Settings

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[1]
LAUNCH = REPO_ROOT / "tests" / "issues" / "2023-01"
WIDTHS = (375, 600)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    """`newsletter render 2023-01`'s files: a sample member's email, and the web version."""
    folder = tmp_path_factory.mktemp("launch")
    shutil.copytree(LAUNCH, folder / "issues" / "2023-01")
    settings = Settings(
        issues_dir=folder / "issues",
        theme_dir=REPO_ROOT / "templates",
        vocabulary_dir=REPO_ROOT / "subscribers",
    )
    copy = render_copy(Editor(settings), "2023-01", folder / "out")
    assert not copy.checked.problems and not copy.checked.warnings
    return folder / "out"


@pytest.mark.parametrize("width", WIDTHS)
def test_the_launch_email_reads_well_on_a_phone_and_a_desktop(browser, rendered, width):
    page = open_page(browser, (rendered / "email.html").as_uri(), width)
    screenshot(page, f"launch-email-{width}px")
    assert overflow(page) == 0
    main = page.get_by_role("main")
    assert main.get_by_text("we know what to do").is_visible()
    assert (
        main.get_by_text("— Professor Sir Michael Marmot").first.is_visible()
        or main.get_by_text("Professor Sir Michael Marmot").first.is_visible()
    )
    assert main.get_by_text("14:00–15:30 GMT").is_visible()
    assert main.get_by_role("link", name="Register for Health Equity Network launch webinar").is_visible()
    assert main.get_by_role("link", name="Add to calendar: Health Equity Network launch webinar").is_visible()
    table = main.locator("table.nl-table")
    assert table.is_visible()
    box = table.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    assert page.locator("[lang=cy]").inner_text() == "Croeso"


@pytest.mark.parametrize("width", WIDTHS)
def test_the_launch_issue_on_the_web_reads_well_too(browser, rendered, width):
    page = open_page(browser, (rendered / "web.html").as_uri(), width)
    screenshot(page, f"launch-web-{width}px")
    assert overflow(page) == 0
    quote = page.locator("figure blockquote").first
    assert quote.is_visible() and "we know what to do" in quote.inner_text()
    assert page.locator("figure cite").first.inner_text() == "Professor Sir Michael Marmot"
    assert page.get_by_role("link", name="Register for Health Equity Network launch webinar").is_visible()
    assert page.locator("table").first.is_visible()
