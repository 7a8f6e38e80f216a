"""The editor's desk as a team uses it: the installed `newsletter` command in a folder made by
`newsletter init`, default settings but for ports and addresses, `newsletter serve` and a
`newsletter sink` for the mail, and real headless Chromium for the pages.

An admin is added at the command line, signs in from the emailed link, adds a contributor on the team
page, and starts an issue; the contributor signs in with the link `newsletter editors link` prints.
axe-core finds nothing wrong on any desk page, and screenshots at 375 and 1280 px go to
test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from browser_support import axe_violations, launch_browser, overflow, screenshot
from user_support import Background, free_port, init_project, link_in, newsletter, uncomment, wait_for_mail

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN = "ann.admin@our-network.example"
CONTRIBUTOR = "cat.contributor@our-network.example"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_browser()


def looked_at(page: Page, name: str) -> None:
    """No accessibility problem axe can find, nothing wider than the screen, and a screenshot at both
    widths (the page is reloaded at each)."""
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.reload()
        assert axe_violations(page) == [], f"{name} at {width} px"
        assert overflow(page) == 0, f"{name} at {width} px is wider than the screen"
        screenshot(page, f"desk-{name}-{width}")


def test_a_team_signs_in_to_the_desk_and_starts_an_issue(tmp_path, browser):
    folder = init_project(tmp_path, "our-network")
    smtp_port, web_port = free_port(), free_port()
    base = f"http://127.0.0.1:{web_port}"
    uncomment(folder / "newsletter.toml", smtp_url=f"smtp://127.0.0.1:{smtp_port}", base_url=base)
    added = newsletter(folder, "editors", "add", ADMIN, "--role", "admin", "--name", "Ann Admin")
    assert f"Added {ADMIN} as admin." in added.stdout
    refused = newsletter(folder, "editors", "add", "someone@example.org", "--role", "boss", ok=False)
    assert (
        refused.returncode == 1 and "not a role; the roles are contributor, editor, admin" in refused.stderr
    )

    sink = Background(folder, "sink", "--port", str(smtp_port), "--maildir", "sink", port=smtp_port)
    serve = Background(folder, "serve", "--port", str(web_port), port=web_port)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/desk/")
        assert page.url.startswith(f"{base}/desk/sign-in")
        looked_at(page, "sign-in")
        page.get_by_label("Email address").fill(ADMIN)
        page.get_by_role("button", name="Email me a sign-in link").click()
        assert page.get_by_role("heading", name="Check your email").is_visible()

        [message] = wait_for_mail(folder / "sink", 1)
        assert message["Subject"] == "Your link to sign in to the Health Equity Network editor's desk"
        page.goto(link_in(message, base, "/desk/sign-in/"))
        page.get_by_role("button", name="Sign in").click()
        assert page.get_by_role("heading", name="Issues").is_visible()
        assert page.get_by_text("Ann Admin").is_visible()
        looked_at(page, "issues")

        page.get_by_role("link", name="Team").click()
        page.get_by_label("Email address").fill(CONTRIBUTOR)
        page.get_by_label("Contributor:").check()
        page.get_by_role("button", name="Add to the team").click()
        assert page.get_by_text(f"Added {CONTRIBUTOR} as contributor.").is_visible()
        looked_at(page, "team")
        listed = newsletter(folder, "editors", "list").stdout
        assert re.search(rf"^contributor\s+{re.escape(CONTRIBUTOR)}\s+signed in: never$", listed, re.M)

        page.get_by_role("link", name="Issues").click()
        page.get_by_label("Name").fill("2024-02")
        page.get_by_role("button", name="Start the issue").click()
        assert page.get_by_role("heading", name="2024-02").is_visible() or "2024-02" in page.content()
        assert page.get_by_text("drafted").is_visible()
        looked_at(page, "issue")
        assert (folder / "issues" / "2024-02" / "issue.yaml").is_file()

        # The contributor, with the link the command line prints, in a browser of their own.
        printed = newsletter(folder, "editors", "link", CONTRIBUTOR).stdout
        [link] = re.findall(re.escape(base) + r"/desk/sign-in/\S+", printed)
        theirs = browser.new_page(viewport={"width": 375, "height": 900})
        theirs.goto(link)
        theirs.get_by_role("button", name="Sign in").click()
        assert theirs.get_by_role("heading", name="Issues").is_visible()
        assert theirs.get_by_role("link", name="Team").count() == 0
        theirs.goto(f"{base}/desk/team")
        assert theirs.get_by_role("heading", name="Your account cannot do that").is_visible()
    finally:
        log = serve.stop()
        sink.stop()
    assert "Traceback" not in log
