"""A member's work from their inbox into next month's issue, as the people involved do it: the installed
`newsletter` command in a folder from `newsletter init` (`sink` for the mail, `serve` for the pages, a
worker for the issue) and real headless Chromium for both people.

The member follows the link in a delivered issue's footer, shares a report with an address that is
not one, sees the message next to the field, fixes it and sends it. An editor opens Submissions at the
desk and adds it to next month's draft: the draft's issue.yaml gains the item in its publications
section, credited to the member's organisation, and passes `newsletter check`. The member gets the
acceptance email in the sink and sees where their submission stands on their preferences page.
axe-core finds nothing wrong on the queue and the submission's page; screenshots go to
test-artifacts/desk-submission*.png."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import expect

from browser_support import looked_at, signed_in_page
from user_support import Background, free_port, init_project, link_in, newsletter, uncomment, wait_for_mail

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[1]
MEMBER = "amir.khan@leeds.ac.example"
EDITOR = "ed.editor@our-network.example"
MEMBERS = f"email,name,organisation\n{MEMBER},Amir Khan,University of Leeds\n"
REPORT_URL = "https://leeds.ac.example/reports/health-equity-leeds"


def test_a_members_report_goes_from_their_inbox_into_next_months_draft(tmp_path, browser):
    folder = init_project(tmp_path, "our-network")
    shutil.copytree(REPO_ROOT / "issues" / "2023-10", folder / "issues" / "2023-10")
    (folder / "members.csv").write_text(MEMBERS, encoding="utf-8")
    newsletter(folder, "subscribers", "import", "members.csv", "--list", "newsletter")
    smtp_port, web_port = free_port(), free_port()
    base = f"http://127.0.0.1:{web_port}"
    uncomment(folder / "newsletter.toml", smtp_url=f"smtp://127.0.0.1:{smtp_port}", base_url=base)
    newsletter(folder, "editors", "add", EDITOR, "--role", "editor")
    # Next month's draft, laid out like October's (which passes check), waiting for the member's report.
    draft = folder / "issues" / "2023-11" / "issue.yaml"
    draft.parent.mkdir()
    draft.write_text(
        (folder / "issues" / "2023-10" / "issue.yaml")
        .read_text(encoding="utf-8")
        .replace("2023-10", "2023-11"),
        encoding="utf-8",
    )
    maildir = folder / "sink"
    sink = Background(folder, "sink", "--port", str(smtp_port), "--maildir", "sink", port=smtp_port)
    serve = Background(folder, "serve", "--port", str(web_port), port=web_port)
    try:
        newsletter(folder, "send", "2023-10", "--to", "everyone", "--yes")
        newsletter(folder, "worker", "--once")
        (issue,) = wait_for_mail(maildir, 1)

        member = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        member.goto(link_in(issue, base, "/submit/"))  # the footer's own link
        member.get_by_label("A publication or report").check()
        member.get_by_role("button", name="Continue").click()
        member.get_by_label("Title").fill("Health equity in Leeds: the first year")
        member.get_by_label("Address of the report").fill("leeds.ac.example/reports/health-equity-leeds")
        member.get_by_label("Summary").fill("What the city did in its first year as a **Marmot City**.")
        member.get_by_label("Date published").fill("2023-10-30")
        member.get_by_role("button", name="Send it to the editors").click()
        expect(member.locator("#error-url")).to_contain_text("https://")
        assert member.get_by_label("Title").input_value() == "Health equity in Leeds: the first year"
        member.get_by_label("Address of the report").fill(REPORT_URL)
        member.get_by_role("button", name="Send it to the editors").click()
        expect(member.get_by_role("heading", name="Thank you: it is with the editors")).to_be_visible()

        editor = signed_in_page(browser, base, EDITOR, maildir, 2)
        editor.get_by_role("link", name="Submissions").click()
        expect(editor.get_by_role("heading", name="Members' submissions")).to_be_visible()
        looked_at(editor, "desk-submissions")
        editor.get_by_role("link", name="Health equity in Leeds: the first year").click()
        expect(editor.get_by_text("To be credited to University of Leeds.")).to_be_visible()
        looked_at(editor, "desk-submission")
        editor.get_by_label("Draft issue").select_option("2023-11")
        editor.get_by_role("button", name="Add to this draft").click()
        expect(editor.get_by_text("Added to 2023-11")).to_be_visible()

        publications = next(
            section
            for section in yaml.safe_load(draft.read_text(encoding="utf-8"))["sections"]
            if section["kind"] == "publications"
        )
        added = publications["items"][-1]
        assert (added["url"], added["credit"]) == (REPORT_URL, "University of Leeds")
        assert "2023-11: ready" in newsletter(folder, "check", "2023-11").stdout

        accepted = next(m for m in wait_for_mail(maildir, 3) if "was accepted" in m["Subject"])
        assert accepted["To"].addresses[0].addr_spec == MEMBER
        member.goto(link_in(accepted, base, "/preferences/"))
        submissions = member.locator("ul.submissions")
        expect(submissions).to_contain_text("Health equity in Leeds: the first year")
        expect(submissions).to_contain_text("Accepted for an issue: the 2023-11 issue")
    finally:
        log = serve.stop()
        sink.stop()
    assert "Traceback" not in log, log
