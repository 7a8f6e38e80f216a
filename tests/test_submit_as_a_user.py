"""Sharing work as a member does, through the installed command: a folder from `newsletter init`, its
members imported, `newsletter sink` for the mail and `newsletter serve` for the pages. The member asks
for a link at /submit, follows it from the sink's mail, makes a mistake, fixes it and sends; then an
issue goes out and its footer's own link opens the form too. Plain HTTP (urllib with a cookie jar),
as any browser would send it."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from user_support import Background, free_port, init_project, link_in, newsletter, uncomment, wait_for_mail

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_ISSUE = REPO_ROOT / "issues" / "2023-10" / "issue.yaml"
MEMBER = "amir.khan@leeds.ac.example"
MEMBERS = f"email,name,organisation\n{MEMBER},Amir Khan,University of Leeds\n"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Visitor:
    """One person's browser, as far as the pages can tell: cookies kept, forms sent with their token."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, url: str) -> tuple[int, str]:
        return self._open(urllib.request.Request(url))

    def post(self, url: str, form_url: str, fields: dict[str, str]) -> tuple[int, str]:
        """Open `form_url`, then post `fields` to `url` with the page's CSRF token."""
        status, page = self.get(form_url)
        assert status == 200, page
        token = CSRF.search(page)
        assert token, page
        body = urllib.parse.urlencode({"csrf_token": token.group(1), **fields}).encode("ascii")
        return self._open(urllib.request.Request(url, data=body, method="POST"))

    def _open(self, request: urllib.request.Request) -> tuple[int, str]:
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8")


def test_a_member_asks_for_a_link_shares_an_event_and_finds_the_link_in_the_next_issue(tmp_path):
    folder = init_project(tmp_path, "our-network")
    smtp_port, web_port = free_port(), free_port()
    base = f"http://127.0.0.1:{web_port}"
    uncomment(folder / "newsletter.toml", smtp_url=f"smtp://127.0.0.1:{smtp_port}", base_url=base)
    (folder / "subscribers" / "members.csv").write_text(MEMBERS, encoding="utf-8")
    newsletter(folder, "subscribers", "import", "subscribers/members.csv", "--list", "newsletter")
    maildir = folder / "sink"

    sink = Background(folder, "sink", "--port", str(smtp_port), "--maildir", "sink", port=smtp_port)
    serve = Background(folder, "serve", "--port", str(web_port), port=web_port)
    try:
        amir = Visitor()
        status, page = amir.post(f"{base}/submit", f"{base}/submit", {"email": MEMBER})
        assert status == 200 and "Check your email" in page
        [message] = wait_for_mail(maildir, 1)
        assert message["Subject"] == "Your link to share your work with the Health Equity Network"
        link = link_in(message, base, "/submit/")

        status, page = amir.get(link)
        assert status == 200 and "What would you like to share?" in page
        event = {
            "what": "event",
            "title": "Leeds health equity assembly",
            "start": "2024-05-14T10:00",
            "end": "2024-05-14T16:00",
            "location": "Leeds Civic Hall",
            "url": "http:/leeds.example/assembly",
            "summary": "A day on the city's health equity plan.",
            "topics": "communities",
            "credit": "yes",
        }
        status, page = amir.post(link, f"{link}?what=event", event)
        assert status == 400
        assert re.search(r'id="error-url"[^>]*>.*https://', page)
        assert 'value="Leeds Civic Hall"' in page  # nothing typed is lost
        status, page = amir.post(
            link, f"{link}?what=event", {**event, "url": "https://leeds.example/assembly"}
        )
        assert status == 200 and "with the editors" in page
        preferences = re.search(r'href="(/preferences/[^"#]+)#submissions"', page)
        assert preferences
        status, page = amir.get(base + preferences.group(1))
        assert status == 200 and "Leeds health equity assembly" in page and "Waiting for the editors" in page

        # The next issue's footer carries Amir's own link to the form, in both parts.
        slug = "2024-05"
        newsletter(folder, "new", slug)
        (folder / "issues" / slug / "issue.yaml").write_text(
            SAMPLE_ISSUE.read_text(encoding="utf-8"), encoding="utf-8"
        )
        newsletter(folder, "send", slug, "--to", "everyone", "--yes")
        assert "Worker done: 1 sent" in newsletter(folder, "worker", "--once").stdout
        issue = next(m for m in wait_for_mail(maildir, 2) if m["Subject"] != message["Subject"])
        footer = link_in(issue, base, "/submit/")
        assert footer in issue.get_body(("html",)).get_content()
        status, page = Visitor().get(footer)
        assert status == 200 and "What would you like to share?" in page
    finally:
        log = serve.stop()
        sink.stop()
    assert "Traceback" not in log, log
