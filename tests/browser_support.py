"""A real headless Chromium (Debian's /usr/bin/chromium) for the tests that look at pages as people do.

Screenshots land in test-artifacts/ so a person can look at what subscribers and readers see.
"""

from __future__ import annotations

import contextlib
import http.client
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, expect, sync_playwright

from newsletter.audience.service import Audience
from newsletter.testing.processes import ServeProcess, free_port
from newsletter.testing.smtp import RecordingSMTPServer
from user_support import link_in, wait_for_mail
from web_support import web_settings

Scheme = Literal["light", "dark"]  # the reader's prefers-color-scheme, emulated
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
# As root, in a sandbox with no network beyond loopback: no sandboxing, no background fetches.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch_browser() -> Iterator[Browser]:
    """Yield a running Chromium; use as the body of a module-scoped fixture."""
    assert CHROMIUM.exists(), "Debian's chromium is not installed: run scripts/test, which installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the viewport (0 when nothing overflows)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def open_page(browser: Browser, url: str, width: int, color_scheme: Scheme = "light") -> Page:
    """`url` in a new page `width` CSS pixels wide, with the reader's light or dark setting emulated."""
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=color_scheme)
    page.goto(url)
    return page


def screenshot(page: Page, name: str) -> Path:
    """Write a full-page screenshot to test-artifacts/NAME.png and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# For each element `selector` matches (and is shown): its text colour, the first opaque background at
# or behind it, the one behind its parent (what a button's edge must stand out from), its border and
# outline colours, as the browser computed them.
_COLOURS = """(selector) => {
    const behind = (e) => {
        for (; e; e = e.parentElement) {
            const bg = getComputedStyle(e).backgroundColor;
            if (bg !== 'rgba(0, 0, 0, 0)' && bg !== 'transparent') return bg;
        }
        return 'rgb(255, 255, 255)';
    };
    return [...document.querySelectorAll(selector)]
        .filter(e => e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden')
        .map(e => {
            const style = getComputedStyle(e);
            return {
                name: e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
                    + ' "' + e.textContent.trim().slice(0, 30) + '"',
                text: e.textContent.trim(),
                color: style.color, background: behind(e), around: behind(e.parentElement),
                border: style.borderTopColor, outline: style.outlineColor,
            };
        });
}"""


def colours(page: Page, selector: str) -> list[dict[str, str]]:
    """The computed colours of every shown element matching `selector` (see `_COLOURS`)."""
    return page.evaluate(_COLOURS, selector)


def one_click_post(url: str) -> tuple[int, http.client.HTTPMessage]:
    """What a mail provider sends for an RFC 8058 one-click unsubscribe: a bare POST, no cookie, no
    CSRF token. Returns the status and the response's headers."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(
            "POST",
            parts.path,
            body="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = connection.getresponse()
        response.read()
        return response.status, response.headers
    finally:
        connection.close()


AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"  # axe-core 4.14.1 (MPL-2.0)


def axe_violations(page: Page) -> list[str]:
    """What axe-core (WCAG 2 A and AA rules) finds wrong on the page, a line a problem ("" for none).

    axe is evaluated in the page through the DevTools protocol, which the page's Content-Security-Policy
    (script-src 'self') does not govern, so the page is tested exactly as it is served."""
    page.evaluate(AXE.read_text(encoding="utf-8"))
    found = page.evaluate(
        """async () => (await axe.run(document, {runOnly: {type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})).violations"""
    )
    return [
        f"{violation['id']}: {violation['help']} at "
        + ", ".join(str(node["target"]) for node in violation["nodes"][:3])
        for violation in found
    ]


def looked_at(page: Page, name: str, reload: bool = True) -> None:
    """What a person checks on a page, at a phone's width and a desktop's: axe-core finds nothing,
    nothing is wider than the screen, and a screenshot `NAME-WIDTH.png` to look at. With `reload`
    the page is loaded afresh at each width; without, for a page a reload would change (a form
    being filled, the answer to a POST)."""
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        if reload:
            page.reload()
        violations = axe_violations(page)
        assert violations == [], f"{name} at {width} px: {violations}"
        assert overflow(page) == 0, f"{name} at {width} px is wider than the screen"
        screenshot(page, f"{name}-{width}")


def sign_in_to_desk(page: Page, base: str, email: str, emailed_link: Callable[[], str]) -> None:
    """Ask the desk for a sign-in link, open the one `emailed_link` finds in the mail, press the button."""
    page.goto(f"{base}/desk/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    page.goto(emailed_link())
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Issues")).to_be_visible()


def recorded_sign_in_link(smtp: RecordingSMTPServer, base: str) -> str:
    """The desk's sign-in link in the first message a recording SMTP server took."""
    assert smtp.wait_for(1, timeout=10)
    text = smtp.messages[0].message().get_body(("plain",)).get_content()
    [link] = re.findall(re.escape(base) + r"/desk/sign-in/[A-Za-z0-9._-]+", text)
    return link


def signed_in_page(browser: Browser, base: str, email: str, maildir: Path, count: int) -> Page:
    """A browser of their own, signed in with the link the desk emails them (the `count`th email)."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()

    def emailed_link() -> str:
        mine = [m for m in wait_for_mail(maildir, count) if m["To"].addresses[0].addr_spec == email]
        return link_in(mine[-1], base, "/desk/sign-in/")

    sign_in_to_desk(page, base, email, emailed_link)
    return page


@contextlib.contextmanager
def serving(
    tmp_path: Path, members_csv: str = ""
) -> Iterator[tuple[ServeProcess, Audience, RecordingSMTPServer]]:
    """The real server (`newsletter serve` as a child process) with base_url pointing at itself, its
    migrated database holding `members_csv` (CSV text, if any), and the SMTP server it mails; its log
    is checked for tracebacks at the end."""
    port = free_port()
    with RecordingSMTPServer() as smtp:
        settings = web_settings(
            f"sqlite:///{tmp_path / 'newsletter.sqlite3'}", smtp.port, base_url=f"http://127.0.0.1:{port}"
        )
        audience = Audience.open(settings)
        audience.upgrade()
        if members_csv:
            members = tmp_path / "members.csv"
            members.write_text(members_csv, encoding="utf-8")
            audience.import_csv(members)
        try:
            with ServeProcess(settings, port=port) as server:
                yield server, audience, smtp
                assert "Traceback" not in server.log(), server.log()
        finally:
            audience.close()
