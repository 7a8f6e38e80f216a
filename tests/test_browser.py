"""The rendered email and the live preview in a real headless Chromium (Debian's /usr/bin/chromium).

Screenshots land in test-artifacts/ so a person can look at what subscribers see.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from browser_support import ARTIFACTS, open_page, overflow, screenshot
from newsletter.editor import Editor, write_edition
from newsletter.preview import make_server, preview_url
from newsletter.settings import Settings

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def rendered_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = Path(__file__).resolve().parents[1]
    settings = Settings(
        issues_dir=repo / "issues", theme_dir=repo / "templates", vocabulary_dir=repo / "subscribers"
    )
    out = tmp_path_factory.mktemp("render")
    write_edition(Editor(settings).check("2023-10").edition, out)
    return out / "email.html"


@pytest.mark.parametrize("width", [375, 600])
def test_sample_email_fits_the_screen_without_horizontal_scrolling(browser, rendered_sample, width):
    page = open_page(browser, rendered_sample.as_uri(), width)
    screenshot(page, f"email-2023-10-{width}px")
    assert overflow(page) == 0
    # Every element stays inside the viewport: no table or image pokes out to the right.
    widest = page.evaluate(
        "Math.max(...[...document.body.querySelectorAll('*')].map(e => e.getBoundingClientRect().right))"
    )
    assert widest <= width
    page.close()


def test_sample_email_is_one_column_on_a_phone(browser, rendered_sample):
    page = open_page(browser, rendered_sample.as_uri(), 375)
    # Every section's column spans the phone's width (no side-by-side columns).
    widths = page.evaluate(
        "[...document.querySelectorAll('.mj-outlook-group-fix')].map(e => e.getBoundingClientRect().width)"
    )
    assert widths, "the email has no MJML columns"
    assert all(w >= 375 - 1 for w in widths)
    # Headings wrap rather than shrink into unreadable text.
    size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('h2')).fontSize)")
    assert size >= 18
    page.close()


def test_live_preview_shows_both_widths_and_reloads_on_save(browser, tmp_path):
    repo = Path(__file__).resolve().parents[1]
    issue_dir = tmp_path / "issues" / "2023-10"
    issue_dir.mkdir(parents=True)
    issue_file = issue_dir / "issue.yaml"
    issue_file.write_text((repo / "issues/2023-10/issue.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    settings = Settings(
        issues_dir=tmp_path / "issues", theme_dir=repo / "templates", vocabulary_dir=repo / "subscribers"
    )
    server = make_server(Editor(settings), "2023-10", "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page = open_page(browser, preview_url(server), 1280)
        phone = page.frame_locator("#phone")
        desktop = page.frame_locator("#desktop")
        phone.locator("h1").wait_for()
        assert page.locator("#phone").evaluate("e => e.getBoundingClientRect().width") == pytest.approx(
            375, abs=2
        )
        assert page.locator("#desktop").evaluate("e => e.getBoundingClientRect().width") == pytest.approx(
            600, abs=2
        )
        assert phone.locator("h1").inner_text() == "October 2023 Newsletter"
        assert "Read the report: https://" in page.locator("#text").inner_text()

        text = issue_file.read_text(encoding="utf-8").replace(
            "title: October 2023 Newsletter", "title: Autumn 2023 Newsletter", 1
        )
        issue_file.write_text(text, encoding="utf-8")
        later = time.time() + 5
        os.utime(issue_file, (later, later))
        desktop.locator("h1", has_text="Autumn 2023 Newsletter").wait_for(timeout=10_000)
        phone.locator("h1", has_text="Autumn 2023 Newsletter").wait_for(timeout=10_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "preview-2023-10.png"))

        issue_file.write_text(text.replace("date: 2023-10-20", "date: 20/10/2023", 1), encoding="utf-8")
        os.utime(issue_file, (later + 5, later + 5))
        problem = page.locator("#problem-list li").first
        problem.wait_for(timeout=10_000)
        assert "issue.yaml:" in problem.inner_text() and "date" in problem.inner_text()
        # The last good render stays on screen while the file is broken.
        assert desktop.locator("h1").inner_text() == "Autumn 2023 Newsletter"
        page.close()
    finally:
        server.shutdown()
        server.server_close()
