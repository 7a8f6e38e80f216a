"""The built archive in a real headless Chromium, served on loopback under CSP default-src 'self':
a reader goes from the index to an issue, to a place, and searches. Screenshots land in test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from archive_support import issue_yaml, serve_directory, settings_for, write
from browser_support import colours, looked_at, open_page, overflow, screenshot
from contrast_support import AA_NON_TEXT, AA_TEXT, contrast, luminance
from newsletter.archive.build import build

pytestmark = pytest.mark.browser
# The member organisation credited with June 2022's place update (issue 18: "Shared by ...").
CREDIT = "Blaenau Gwent County Borough Council"


@pytest.fixture(scope="module")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    repo = Path(__file__).resolve().parents[1]
    project = tmp_path_factory.mktemp("archive-project")
    (project / "issues" / "2023-10").mkdir(parents=True)
    sample = (repo / "issues" / "2023-10" / "issue.yaml").read_text(encoding="utf-8")
    (project / "issues" / "2023-10" / "issue.yaml").write_text(sample, encoding="utf-8")
    june = issue_yaml(
        "June 2022 Newsletter",
        "2022-06-10",
        places=(("Gwent", "wales", "Gwent began its Marmot journey with Blaenau Gwent council.", "[]"),),
    )
    assert june.count("        topics: []\n") == 1
    write(
        project,
        "2022-06",
        june.replace("        topics: []\n", f"        credit: {CREDIT}\n        topics: []\n"),
    )
    settings = settings_for(project, repo)
    out = project / "public"
    build(settings, out)
    with serve_directory(out) as url:
        yield url


def watch_console(page: Page) -> list[str]:
    """Collect console errors (a CSP violation, a script error) and failed requests."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("response", lambda response: errors.append(response.url) if response.status >= 400 else None)
    return errors


def test_reader_follows_an_issue_then_a_place_then_searches(browser, site_url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = watch_console(page)
    page.goto(f"{site_url}archive/")
    assert page.locator("h1").inner_text() == "Newsletter archive"
    screenshot(page, "archive-index-1280px")

    page.get_by_role("link", name="October 2023 Newsletter").click()
    page.wait_for_url(f"{site_url}archive/2023-10/")
    assert page.locator("h1").inner_text() == "October 2023 Newsletter"
    # The stylesheet applied (no inline styles, loaded from the archive itself).
    assert (
        page.evaluate("getComputedStyle(document.querySelector('.site-header')).backgroundColor")
        != "rgba(0, 0, 0, 0)"
    )

    page.locator("#gwent-h").get_by_role("link", name="Gwent").click()
    page.wait_for_url(f"{site_url}archive/places/gwent/")
    assert page.locator("h1").inner_text() == "Gwent"
    updates = page.locator("ol.updates > li")
    assert updates.count() == 2
    assert "Torfaen local authority" in updates.nth(0).inner_text()  # newest first: October 2023
    assert "began its Marmot journey" in updates.nth(1).inner_text()
    screenshot(page, "archive-place-gwent-1280px")

    page.get_by_role("navigation", name="Archive").get_by_role("link", name="Search").click()
    page.wait_for_url(f"{site_url}archive/search/")
    page.get_by_label("Words to look for").fill("Gwent")
    page.get_by_role("button", name="Search").click()
    results = page.locator("#search-results li")
    results.first.wait_for()
    titles = results.locator("h2").all_inner_texts()
    # Newest first: the October issue (its intro), its report and place update, then June 2022's update.
    assert titles == [
        "October 2023 Newsletter",
        "Building a Fairer Gwent: improving health equity and the social determinants",
        "Gwent",
        "Gwent",
    ]
    assert "June 2022 Newsletter" in results.nth(3).inner_text()
    assert "results for “Gwent”" in page.locator("#search-status").inner_text()
    assert "q=Gwent" in page.url  # the results have an address that can be shared
    screenshot(page, "archive-search-gwent-1280px")

    # A word (here a prefix) only one item holds finds that item alone; the result opens it on its issue page.
    page.get_by_label("Words to look for").fill("inactiv")
    page.get_by_role("button", name="Search").click()
    page.locator("#search-status", has_text="1 result for").wait_for()
    assert results.count() == 1
    results.first.get_by_role("link").click()
    page.wait_for_url(f"{site_url}archive/2023-10/#gwent")
    assert page.evaluate("location.hash") == "#gwent"
    assert errors == []
    page.close()


def test_reader_follows_a_credit_to_what_its_organisation_shared(browser, site_url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = watch_console(page)
    page.goto(f"{site_url}archive/2022-06/")
    credit = page.locator("#gwent .credit")
    assert credit.inner_text() == f"Shared by {CREDIT}"
    credit.get_by_role("link", name=CREDIT).click()
    page.wait_for_url(f"{site_url}archive/contributors/blaenau-gwent-county-borough-council/")
    assert page.locator("h1").inner_text() == CREDIT
    looked_at(page, "archive-contributor")

    entries = page.locator("main ul.entries > li")
    assert entries.count() == 1
    entries.first.get_by_role("link", name="Gwent").click()
    page.wait_for_url(f"{site_url}archive/2022-06/#gwent")
    assert page.evaluate("location.hash") == "#gwent"

    page.get_by_role("navigation", name="Archive").get_by_role("link", name="Contributors").click()
    page.wait_for_url(f"{site_url}archive/contributors/")
    assert page.get_by_role("main").get_by_role("link").all_inner_texts() == [CREDIT]
    looked_at(page, "archive-contributors")
    assert errors == []
    page.close()


@pytest.mark.parametrize(
    "path",
    [
        "archive/",
        "archive/2023-10/",
        "archive/places/gwent/",
        "archive/topics/marmot-places/",
        "archive/search/?q=gwent",
    ],
)
def test_nothing_overflows_on_a_phone(browser, site_url, path):
    page = open_page(browser, f"{site_url}{path}", 375)
    if "q=" in path:
        page.locator("#search-results li").first.wait_for()
    name = path.strip("/").replace("/", "-").replace("?q=", "-") or "index"
    screenshot(page, f"{name}-375px")
    assert overflow(page) == 0
    widest = page.evaluate(
        "Math.max(...[...document.body.querySelectorAll('*')].map(e => e.getBoundingClientRect().right))"
    )
    assert widest <= 375
    page.close()


def test_without_javascript_the_search_page_still_lets_people_browse(browser, site_url):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 375, "height": 900})
    page = context.new_page()
    page.goto(f"{site_url}archive/search/")
    assert "needs JavaScript" in page.locator("main").inner_text()
    page.get_by_role("link", name="By place and region").click()
    page.wait_for_url(f"{site_url}archive/places/")
    assert page.get_by_role("link", name="Gwent").count() == 1
    context.close()


def test_skip_link_and_focus_are_visible(browser, site_url):
    page = open_page(browser, f"{site_url}archive/2023-10/", 1280)
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content"
    box = page.locator(".skip-link").bounding_box()
    assert box is not None and box["y"] >= 0  # on screen once focused
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.close()


@pytest.mark.parametrize("width", [375, 1280])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("path", ["archive/", "archive/2023-10/", "archive/places/gwent/"])
def test_the_header_and_its_subscribe_link_are_readable_in_light_and_dark(
    browser, site_url, path, scheme, width
):
    page = open_page(browser, f"{site_url}{path}", width, scheme)
    name = path.strip("/").replace("/", "-")
    screenshot(page, f"{name}-{scheme}-{width}px")
    assert overflow(page) == 0
    [body] = colours(page, "body")
    [header] = colours(page, ".site-header")
    if scheme == "dark":
        # A dark bar across a dark page, not a bright one: close to the page, lighter text on it.
        assert luminance(body["background"]) < 0.02
        assert contrast(header["background"], body["background"]) < 1.6
        assert luminance(header["color"]) > luminance(header["background"])
    for sample in colours(page, ".site-header a, main h1, main h2, main p, main li, .site-footer p"):
        if sample["text"]:
            ratio = contrast(sample["color"], sample["background"])
            assert ratio >= AA_TEXT, (scheme, sample, round(ratio, 2))
    # The Subscribe button: readable, its edge clear of the bar, and leading to the sign-up page
    # beside the archive at the site's root.
    [subscribe] = colours(page, ".site-header .subscribe")
    assert subscribe["text"] == "Subscribe"
    assert contrast(subscribe["color"], subscribe["background"]) >= AA_TEXT
    assert contrast(subscribe["background"], subscribe["around"]) >= AA_NON_TEXT
    link = page.get_by_role("banner").get_by_role("link", name="Subscribe")
    assert link.evaluate("a => a.href") == f"{site_url}subscribe"
    # Reached with the keyboard (skip link, archive name, Subscribe), its focus ring shows against the bar.
    for _ in range(3):
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "subscribe"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    [focused] = colours(page, ".site-header .subscribe")
    assert contrast(focused["outline"], focused["around"]) >= AA_NON_TEXT
    page.close()
