"""The program as its users run it: the installed `newsletter` command, in subprocesses, in a folder
made by `newsletter init`, with the default settings but for ports and addresses. No Settings is built
by hand here; every step goes through the console script the way the README and
docs/getting-started.md tell a new network to.

One network's first month, in order: init, a first issue written and checked, members imported,
segments counted, the issue sent through `newsletter sink`, then `newsletter serve` in real headless
Chromium: sign up, confirm from the emailed link, change preferences, leave in one click from a
delivered message's List-Unsubscribe, open the archive from the subscribe page and follow its feed.
Last, `serve` started from another folder finds the same settings through NEWSLETTER_CONFIG.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser_support import one_click_post, open_page, overflow, screenshot
from user_support import (
    NEWSLETTER,
    Background,
    free_port,
    link_in,
    newsletter,
    uncomment,
    user_environment,
    wait_for_mail,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_ISSUE = REPO_ROOT / "issues" / "2023-10" / "issue.yaml"
SLUG = "2024-01"
ATOM = "{http://www.w3.org/2005/Atom}"
MISSES_GWENT = "laura.morgan@blaenau-gwent.gov.example"  # a Welsh council member who picked only housing
MEMBERS = """\
email,name,organisation,sector,region,place,topics,lists
laura.morgan@blaenau-gwent.gov.example,Laura Morgan,Blaenau Gwent Council,local-government,wales,Blaenau Gwent,housing,
zara.begum@blaenau-gwent.gov.example,Zara Begum,Blaenau Gwent Council,local-government,wales,Blaenau Gwent,local-government,
amir.khan@leeds.ac.example,Amir Khan,University of Leeds,academia,yorkshire-humber,Leeds,,
"""


@pytest.fixture
def network(tmp_path) -> Iterator[dict[str, object]]:
    """A network's folder from `newsletter init`, its relay a `newsletter sink`, its pages' address set."""
    assert NEWSLETTER.is_file(), f"the console script is not installed at {NEWSLETTER}"
    folder = tmp_path / "our-network"
    made = newsletter(tmp_path, "init", "our-network")
    assert "Created our-network/" in made.stdout
    smtp_port, web_port = free_port(), free_port()
    base = f"http://127.0.0.1:{web_port}"
    uncomment(folder / "newsletter.toml", smtp_url=f"smtp://127.0.0.1:{smtp_port}", base_url=base)
    sink = Background(folder, "sink", "--port", str(smtp_port), "--maildir", "sink", port=smtp_port)
    try:
        yield {"folder": folder, "base": base, "web_port": web_port, "maildir": folder / "sink"}
    finally:
        sink.stop()


def test_init_makes_a_folder_that_checks_and_refuses_to_fill_a_used_one(tmp_path):
    made = newsletter(tmp_path, "init", "net", "--theme")
    folder = tmp_path / "net"
    settings = (folder / "newsletter.toml").read_text(encoding="utf-8")
    key = re.search(r'^secret_key = "([^"]+)"$', settings, re.M)
    assert key and len(key[1]) >= 40 and "change-me" not in key[1]
    assert re.search(r"^# smtp_url = ", settings, re.M)  # every other key commented with its default
    assert (folder / "templates" / "email" / "theme.css").is_file()
    assert (folder / "subscribers" / "segments.yaml").read_text().count("everyone:") == 1
    assert (folder / "subscribers" / "members.csv").read_text().startswith("email,name,organisation")
    assert "*.sqlite3" in (folder / ".gitignore").read_text()
    (draft,) = (folder / "issues").iterdir()
    assert f"newsletter check {draft.name}" in made.stdout

    # A fresh draft is the editor's to-do list: every blank named with its line.
    checked = newsletter(folder, "check", draft.name, ok=False)
    assert checked.returncode == 1
    assert re.search(rf"^issues/{draft.name}/issue\.yaml:\d+: subject: is empty$", checked.stdout, re.M)

    # The theme copied into the folder is the one used: a change to it shows in the email.
    css = folder / "templates" / "email" / "theme.css"
    css.write_text(css.read_text() + "\n.our-own-rule { color: #123456; }\n")
    again = newsletter(tmp_path, "init", "net", ok=False)
    assert again.returncode == 1
    assert again.stderr.startswith("Error: net: is not empty")
    assert (folder / "newsletter.toml").read_text(encoding="utf-8") == settings  # nothing overwritten


def test_a_networks_first_month_from_init_to_one_click_unsubscribe(network, browser, tmp_path):
    folder: Path = network["folder"]  # type: ignore[assignment]
    base: str = network["base"]  # type: ignore[assignment]
    maildir: Path = network["maildir"]  # type: ignore[assignment]

    # The editor writes the month's issue into a new draft, and checks and renders it.
    newsletter(folder, "db", "upgrade")
    created = newsletter(folder, "new", SLUG)
    assert f"issues/{SLUG}/issue.yaml" in created.stdout
    issue_file = folder / "issues" / SLUG / "issue.yaml"
    issue_file.write_text(SAMPLE_ISSUE.read_text(encoding="utf-8"), encoding="utf-8")
    checked = newsletter(folder, "check", SLUG)
    assert checked.stdout.startswith(f"{SLUG}: ready: ")
    rendered = newsletter(folder, "render", SLUG, "--out", f"out/{SLUG}")
    assert (folder / "out" / SLUG / "email.html").stat().st_size > 10_000
    assert "Wrote out/" in rendered.stdout

    # Members, and the segment they make.
    (folder / "subscribers" / "members.csv").write_text(MEMBERS, encoding="utf-8")
    imported = newsletter(folder, "subscribers", "import", "subscribers/members.csv", "--list", "newsletter")
    assert "3" in imported.stdout
    segments = newsletter(folder, "segments")
    assert re.search(r"^everyone\s+3\s", segments.stdout, re.M)

    # Before sending: what the Welsh council member who did not pick the Gwent report's topic gets.
    looked = newsletter(folder, "send", SLUG, "--test", "editor@example.org", "--as", MISSES_GWENT)
    assert "test copy to editor@example.org: sent" in looked.stdout

    # Sending: once, then not again to the same members.
    sent = newsletter(folder, "send", SLUG, "--to", "everyone", "--yes")
    assert "everyone: 3 members as of now" in sent.stdout
    campaign = re.search(r"Campaign (\d+) scheduled", sent.stdout)
    assert campaign
    worked = newsletter(folder, "worker", "--once")
    assert "Worker done: 3 sent" in worked.stdout
    assert f"campaign {campaign[1]} ({SLUG}): sent: 3 sent of 3" in worked.stderr
    messages = wait_for_mail(maildir, 4)  # the test copy and three members
    test_copy = next(m for m in messages if m["Subject"].startswith("[TEST] "))
    assert "Building a Fairer Gwent" not in test_copy.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # The test copy left the way the members' messages did: Message-IDs of one form, each its own tag.
    member_copy = next(m for m in messages if not m["Subject"].startswith("[TEST] "))
    assert re.fullmatch(r"<nl\.t\d+\.[a-z2-7]{16}\.0@[^>]+>", test_copy["Message-ID"])
    assert re.fullmatch(rf"<nl\.{campaign[1]}\.[a-z2-7]{{16}}\.\d+@[^>]+>", member_copy["Message-ID"])
    twice = newsletter(folder, "send", SLUG, "--to", "everyone", "--yes", ok=False)
    assert twice.returncode == 1 and "already got" in twice.stderr and "--resend" in twice.stderr
    status = newsletter(folder, "status", campaign[1], "--failed")
    assert "Nobody deferred, failed or bounced." in status.stdout
    retried = newsletter(folder, "retry", campaign[1], ok=False)
    assert retried.returncode == 1
    assert (
        retried.stderr
        == f"Error: campaign {campaign[1]} has no failed messages to retry (bounced addresses are never retried)\n"
    )

    # The pages, started the way the README says, from the project folder.
    web_port: int = network["web_port"]  # type: ignore[assignment]
    serve = Background(folder, "serve", "--port", str(web_port), port=web_port)
    try:
        subscribe = open_page(browser, f"{base}/subscribe", 375)
        screenshot(subscribe, "user-subscribe-375px")
        assert overflow(subscribe) == 0
        subscribe.get_by_label("Email address").fill("new.member@example.org")
        subscribe.get_by_label("Your name").fill("New <Member>")
        subscribe.get_by_label("Region").select_option("wales")
        subscribe.get_by_label("Housing, homes and places").check()
        subscribe.get_by_label("I would like to receive").check()
        subscribe.get_by_role("button", name="Subscribe").click()
        subscribe.get_by_role("heading", name="Check your email").wait_for()

        confirmation = next(
            m for m in wait_for_mail(maildir, 5) if m["To"].addresses[0].addr_spec == "new.member@example.org"
        )
        confirm_url = link_in(confirmation, base, "/confirm/")
        subscribe.goto(confirm_url)
        subscribe.get_by_role("button", name="Confirm my subscription").click()
        subscribe.get_by_role("heading", name="You are subscribed").wait_for()
        screenshot(subscribe, "user-confirmed-375px")
        shown = newsletter(folder, "subscribers", "show", "new.member@example.org")
        assert re.search(r"^status\s+active$", shown.stdout, re.M)

        subscribe.get_by_role("link", name="Change what you receive").click()
        subscribe.get_by_role("heading", name="Your preferences").wait_for()
        subscribe.get_by_label("Early years").check()
        subscribe.get_by_role("button", name="Save my preferences").click()
        subscribe.get_by_text("Your changes are saved.").wait_for()
        shown = newsletter(folder, "subscribers", "show", "new.member@example.org")
        assert re.search(r"^topics\s+.*early-years", shown.stdout, re.M)

        # One click from a delivered message's List-Unsubscribe: the mail provider's POST.
        delivered = next(m for m in messages if m["To"].addresses[0].addr_spec.startswith("amir.khan@"))
        assert delivered["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert delivered["Return-Path"] is not None  # written by the sink on delivery, as a mailbox would
        target = delivered["List-Unsubscribe"].strip().removeprefix("<").removesuffix(">")
        assert target.startswith(f"{base}/unsubscribe/")
        assert one_click_post(target)[0] == 200
        shown = newsletter(folder, "subscribers", "show", "amir.khan@leeds.ac.example")
        assert re.search(r"^status\s+unsubscribed$", shown.stdout, re.M)

        # The archive, from the subscribe page, and its feed.
        subscribe.goto(f"{base}/subscribe")
        subscribe.get_by_role("link", name="Past issues").click()
        subscribe.wait_for_url(f"{base}/archive/**")
        screenshot(subscribe, "user-archive-375px")
        assert subscribe.get_by_role("link", name=re.compile("October 2023 Newsletter")).count() >= 1
        feed_href = subscribe.locator("a", has_text="Atom feed").first.get_attribute("href")
        assert feed_href
        feed_url = subscribe.evaluate("(href) => new URL(href, location.href).href", feed_href)
        with urllib.request.urlopen(feed_url, timeout=10) as response:
            assert response.status == 200
            feed = ET.fromstring(response.read())
        titles = [entry.findtext(f"{ATOM}title") for entry in feed.iter(f"{ATOM}entry")]
        assert titles == ["October 2023 Newsletter"], titles
        # ...and back from the archive to the subscribe page.
        subscribe.get_by_role("link", name="Subscribe").first.click()
        subscribe.get_by_role("heading", name=re.compile("^Join the ")).wait_for()
        subscribe.close()
    finally:
        log = serve.stop()
    assert "Traceback" not in log, log


def test_serve_from_another_folder_finds_the_settings_through_newsletter_config(network, tmp_path):
    folder: Path = network["folder"]  # type: ignore[assignment]
    newsletter(folder, "db", "upgrade")
    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    environment = {**user_environment(), "NEWSLETTER_CONFIG": str(folder / "newsletter.toml")}
    pages = {}
    for where, env in ((folder, user_environment()), (elsewhere, environment)):
        port = free_port()
        serve = Background(where, "serve", "--port", str(port), port=port, env=env)
        try:
            pages[where] = {}
            for path in ("/subscribe", "/static/site.css", "/archive/"):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
                    assert response.status == 200, path
                    pages[where][path] = re.sub(rb'name="csrf_token" value="[^"]+"', b"", response.read())
        finally:
            log = serve.stop()
        assert "Traceback" not in log, log
    assert pages[folder] == pages[elsewhere]
    assert not (elsewhere / "newsletter.sqlite3").exists()  # the project's database, not a new one here
    # The archive built from either folder is the same site (written where the command was typed).
    for where, env in ((folder, user_environment()), (elsewhere, environment)):
        newsletter(where, "archive", "build", "--out", "public", env=env)
    built = {
        where: {
            path.relative_to(where / "public"): path.read_bytes()
            for path in (where / "public").rglob("*")
            if path.is_file()
        }
        for where in (folder, elsewhere)
    }
    assert built[folder] and built[folder] == built[elsewhere]
    # --config says the same thing on the command line.
    listed = newsletter(elsewhere, "--config", str(folder / "newsletter.toml"), "segments")
    assert re.search(r"^everyone\s+0\s", listed.stdout, re.M)
    missing = newsletter(elsewhere, "--config", "nowhere.toml", "segments", ok=False)
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: --config: there is no settings file at ")


def test_send_asks_on_a_terminal_and_sends_nothing_when_told_no(network):
    """A real terminal (a pseudo-terminal): the editor sees who, when and what, and answers."""
    import pty

    folder: Path = network["folder"]  # type: ignore[assignment]
    newsletter(folder, "db", "upgrade")
    (folder / "issues" / SLUG).mkdir()
    shutil.copyfile(SAMPLE_ISSUE, folder / "issues" / SLUG / "issue.yaml")
    (folder / "subscribers" / "members.csv").write_text(MEMBERS, encoding="utf-8")
    newsletter(folder, "subscribers", "import", "subscribers/members.csv", "--list", "newsletter")

    def on_a_terminal(answer: str) -> str:
        leader, follower = pty.openpty()
        process = subprocess.Popen(
            [str(NEWSLETTER), "send", SLUG, "--to", "everyone"],
            cwd=folder,
            env=user_environment(),
            stdin=follower,
            stdout=follower,
            stderr=follower,
        )
        os.close(follower)
        seen = b""
        deadline = time.monotonic() + 60
        while b"Send it?" not in seen and time.monotonic() < deadline:
            seen += os.read(leader, 4096)
        os.write(leader, answer.encode() + b"\n")
        process.wait(timeout=60)
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        os.close(leader)
        return seen.decode(errors="replace")

    refused = on_a_terminal("n")
    assert "First Health Equity Network conference" in refused  # the subject
    assert "to everyone: 3 members as of now" in refused
    assert "sending now" in refused
    assert "Aborted" in refused
    assert "No campaigns yet" in newsletter(folder, "campaigns").stdout

    accepted = on_a_terminal("y")
    assert "Campaign 1 scheduled" in accepted
