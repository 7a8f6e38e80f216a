"""The editor's desk as a team uses it: the installed `newsletter` command in a folder made by
`newsletter init`, default settings but for ports and addresses, `newsletter serve` and a
`newsletter sink` for the mail, and real headless Chromium for the pages.

An admin is added at the command line, signs in from the emailed link, adds a contributor on the team
page, and starts an issue; the contributor signs in with the link `newsletter editors link` prints.
axe-core finds nothing wrong on any desk page, and screenshots at 375 and 1280 px go to
test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from browser_support import looked_at, signed_in_page
from user_support import Background, free_port, init_project, link_in, newsletter, uncomment, wait_for_mail

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN = "ann.admin@our-network.example"
CONTRIBUTOR = "cat.contributor@our-network.example"


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
        looked_at(page, "desk-sign-in")
        page.get_by_label("Email address").fill(ADMIN)
        page.get_by_role("button", name="Email me a sign-in link").click()
        assert page.get_by_role("heading", name="Check your email").is_visible()

        [message] = wait_for_mail(folder / "sink", 1)
        assert message["Subject"] == "Your link to sign in to the Health Equity Network editor's desk"
        page.goto(link_in(message, base, "/desk/sign-in/"))
        page.get_by_role("button", name="Sign in").click()
        assert page.get_by_role("heading", name="Issues").is_visible()
        assert page.get_by_text("Ann Admin").is_visible()
        looked_at(page, "desk-issues")

        page.get_by_role("link", name="Team").click()
        page.get_by_label("Email address").fill(CONTRIBUTOR)
        page.get_by_label("Contributor:").check()
        page.get_by_role("button", name="Add to the team").click()
        assert page.get_by_text(f"Added {CONTRIBUTOR} as contributor.").is_visible()
        looked_at(page, "desk-team")
        listed = newsletter(folder, "editors", "list").stdout
        assert re.search(rf"^contributor\s+{re.escape(CONTRIBUTOR)}\s+signed in: never$", listed, re.M)

        page.get_by_role("link", name="Issues").click()
        page.get_by_label("Name").fill("2024-02")
        page.get_by_role("button", name="Start the issue").click()
        assert page.get_by_role("heading", name="2024-02").is_visible() or "2024-02" in page.content()
        assert page.get_by_text("drafted").is_visible()
        looked_at(page, "desk-issue")
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


MEMBERS = """\
email,name,organisation,sector,region,place,topics,lists
laura.morgan@blaenau-gwent.gov.example,Laura Morgan,Blaenau Gwent Council,local-government,wales,Blaenau Gwent,housing,newsletter
zara.begum@blaenau-gwent.gov.example,Zara Begum,Blaenau Gwent Council,local-government,wales,Blaenau Gwent,local-government,newsletter
amir.khan@leeds.ac.example,Amir Khan,University of Leeds,academia,yorkshire-humber,Leeds,,newsletter
"""
WALES_SEGMENT = """
wales:
  description: Members in Wales
  lists: newsletter
  region: wales
"""
EDITOR = "ed.editor@our-network.example"


def field(page: Page, name: str):
    return page.locator(f'[id="field-{name}"]')


def test_a_month_at_the_desk_from_draft_to_sent(tmp_path, browser):
    """The issue's whole way, as the team works: drafted, checked, submitted, previewed as a Welsh
    council member, test-sent, approved, scheduled to two segments, sent by a worker, followed."""
    folder = init_project(tmp_path, "our-network")
    shutil.copytree(REPO_ROOT / "issues" / "2023-10", folder / "issues" / "2023-10")  # last month's issue
    (folder / "members.csv").write_text(MEMBERS, encoding="utf-8")
    newsletter(folder, "subscribers", "import", "members.csv")
    segments = folder / "subscribers" / "segments.yaml"
    segments.write_text(segments.read_text(encoding="utf-8") + WALES_SEGMENT, encoding="utf-8")
    smtp_port, web_port = free_port(), free_port()
    base = f"http://127.0.0.1:{web_port}"
    uncomment(folder / "newsletter.toml", smtp_url=f"smtp://127.0.0.1:{smtp_port}", base_url=base)
    newsletter(folder, "editors", "add", ADMIN, "--role", "admin")
    maildir = folder / "sink"
    sink = Background(folder, "sink", "--port", str(smtp_port), "--maildir", "sink", port=smtp_port)
    serve = Background(folder, "serve", "--port", str(web_port), port=web_port)
    try:
        admin = signed_in_page(browser, base, ADMIN, maildir, 1)
        admin.get_by_role("link", name="Team").click()
        for email, role in ((CONTRIBUTOR, "Contributor:"), (EDITOR, "Editor:")):
            admin.get_by_label("Email address").fill(email)
            admin.get_by_label(role).check()
            admin.get_by_role("button", name="Add to the team").click()
            expect(admin.get_by_text(f"Added {email}")).to_be_visible()

        # The contributor starts November's issue from October's layout and keeps two of its sections.
        drafter = signed_in_page(browser, base, CONTRIBUTOR, maildir, 2)
        drafter.get_by_label("Name").fill("2023-11")
        drafter.get_by_label("Start from").select_option("2023-10")
        drafter.get_by_role("button", name="Start the issue").click()
        drafter.get_by_role("link", name="Edit the issue").click()
        issue_file = folder / "issues" / "2023-11" / "issue.yaml"
        comments = [
            line
            for line in issue_file.read_text(encoding="utf-8").splitlines()
            if line.lstrip().startswith("#")
        ]
        for number in (11, 10, 9, 8, 7, 6, 5, 2, 1):  # all but the publications and the place updates
            drafter.locator(f'button[name="op"][value="remove:sections.{number}"]').click()
        field(drafter, "subject").fill("November: the Gwent report one year on")
        field(drafter, "preheader").fill("A new publication and news from Blaenau Gwent.")
        field(drafter, "editor").fill("Cat Contributor")
        field(drafter, "sections.1.items.1.title").fill("Building a Fairer Gwent: one year on")
        field(drafter, "sections.1.items.1.url").fill("http://www.instituteofhealthequity.example.org/gwent")
        field(drafter, "sections.1.items.1.summary").fill(
            "What changed in Gwent in the year since the report."
        )
        field(drafter, "sections.1.items.1.date").fill("2023-11-01")
        field(drafter, "sections.2.items.1.place").fill("Blaenau Gwent")
        field(drafter, "sections.2.items.1.region").select_option("wales")
        field(drafter, "sections.2.items.1.updates").fill(
            "The council adopted the **Marmot principles** in its plan."
        )
        drafter.get_by_role("button", name="Save", exact=True).first.click()
        expect(drafter.locator('[id="error-sections.1.items.1.url"]')).to_contain_text("https://")
        looked_at(drafter, "desk-edit-problem")
        field(drafter, "sections.1.items.1.url").fill("https://www.instituteofhealthequity.example.org/gwent")
        # Beside the form, the email as the form now reads, before anything is saved.
        live = drafter.frame_locator("#live iframe")
        expect(live.get_by_text("Building a Fairer Gwent: one year on")).to_be_visible(timeout=15_000)
        expect(drafter.locator("[data-live-status]")).to_have_text("Up to date with the form (not saved).")
        drafter.get_by_role("button", name="Save", exact=True).first.click()
        expect(drafter.get_by_text("Saved. No problems found.")).to_be_visible()
        checked = newsletter(folder, "check", "2023-11")
        assert "2023-11: ready" in checked.stdout
        saved = issue_file.read_text(encoding="utf-8")
        kept = [line for line in comments if line in saved]
        assert kept and kept[0] == comments[0], "the draft's heading comment was lost"

        # An edit made in the file meanwhile is not overwritten.
        issue_file.write_text(saved.replace("Cat Contributor", "Cat C."), encoding="utf-8")
        field(drafter, "editor").fill("Catherine Contributor")
        drafter.get_by_role("button", name="Save", exact=True).first.click()
        expect(drafter.get_by_text("Nothing was saved:")).to_be_visible()
        on_disk = issue_file.read_text(encoding="utf-8")
        assert "Cat C." in on_disk and "Catherine" not in on_disk

        drafter.goto(f"{base}/desk/issues/2023-11")
        drafter.get_by_role("button", name="Submit for review").click()
        expect(drafter.get_by_text("2023-11 submitted for review.")).to_be_visible()
        looked_at(drafter, "desk-issue-in-review")

        # The editor previews it as a Welsh council member, test-sends it, approves and schedules it.
        editor = signed_in_page(browser, base, EDITOR, maildir, 3)
        editor.goto(f"{base}/desk/issues/2023-11/preview")
        editor.get_by_label("As the member with this address gets it").fill(
            "laura.morgan@blaenau-gwent.gov.example"
        )
        editor.get_by_role("button", name="Show").click()
        expect(editor.get_by_text("Showing as laura.morgan@blaenau-gwent.gov.example")).to_be_visible()
        looked_at(editor, "desk-preview")
        editor.goto(f"{base}/desk/issues/2023-11")
        editor.get_by_label("As the member with this address gets it").fill(
            "laura.morgan@blaenau-gwent.gov.example"
        )
        editor.get_by_role("button", name=f"Send a test copy to {EDITOR}").click()
        expect(editor.get_by_text(f"Test copy to {EDITOR}: sent")).to_be_visible()
        tests = [m for m in wait_for_mail(maildir, 4) if m["Subject"].startswith("[TEST]")]
        assert [m["To"].addresses[0].addr_spec for m in tests] == [EDITOR]
        editor.get_by_role("button", name="Approve this issue").click()
        expect(editor.get_by_text("2023-11 approved.")).to_be_visible()

        editor.get_by_label("wales").check()
        editor.get_by_label("everyone").check()
        expect(editor.locator("#reach")).to_contain_text("3 members in all")
        now = dt.datetime.now(ZoneInfo("Europe/London"))
        if now.second > 45:  # the time chosen must not pass before the form is confirmed
            time.sleep(61 - now.second)
            now = dt.datetime.now(ZoneInfo("Europe/London"))
        editor.get_by_label("Day").fill(now.strftime("%Y-%m-%d"))
        editor.get_by_label("Time").fill(now.strftime("%H:%M"))
        looked_at(editor, "desk-schedule", reload=False)
        editor.get_by_role("button", name="Check and confirm").click()
        expect(editor.get_by_text("to 3 members")).to_be_visible()
        looked_at(editor, "desk-confirm", reload=False)
        editor.get_by_role("button", name="Schedule it").click()
        expect(editor.get_by_text("scheduled", exact=False).first).to_be_visible()

        # A worker sends it; the campaign's page follows it to the end without being reloaded.
        worker = newsletter(folder, "worker", "--once")
        assert "Worker done: 3 sent, 0 deferred, 0 failed" in worker.stdout
        expect(editor.locator('[data-field="state"]')).to_have_text("sent", timeout=20_000)
        expect(editor.locator('[data-count="sent"]')).to_have_text("3")
        looked_at(editor, "desk-campaign")
        # Its report, from the campaign's page: a chart of the domains, with its table beside it.
        editor.get_by_role("link", name="Its report").click()
        domains = editor.locator(
            "section.report-figure", has=editor.get_by_role("heading", name="By recipient domain")
        )
        expect(domains.locator("svg[role=img]")).to_have_count(1)
        expect(domains.get_by_role("row", name="blaenau-gwent.gov.example")).to_contain_text("2")
        editor.go_back()
        delivered = [m for m in wait_for_mail(maildir, 7) if not m["Subject"].startswith("[TEST]")]
        assert {m["To"].addresses[0].addr_spec for m in delivered if "November" in m["Subject"]} == {
            "laura.morgan@blaenau-gwent.gov.example",
            "zara.begum@blaenau-gwent.gov.example",
            "amir.khan@leeds.ac.example",
        }
        editor.goto(f"{base}/desk/issues/2023-11")
        history = editor.locator(".history").inner_text()
        for step in (
            "drafted",
            "saved",
            "submitted",
            "test-sent",
            "approved",
            "scheduled",
            "sending started",
            "sent by the worker (campaign",
        ):
            assert step in history, step
        editor.goto(f"{base}/desk/calendar")
        looked_at(editor, "desk-calendar")
    finally:
        log = serve.stop()
        sink.stop()
    assert "Traceback" not in log
