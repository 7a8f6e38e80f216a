"""Members' submissions at the desk, over the real app and a real database (SQLite and PostgreSQL) and a
copy of the sample issues folder: an editor adds one to a draft (the issue file gains the item in the
right section, credited, and still loads as a valid issue), asks the member a question, declines one
with a reason; the member is emailed each decision. A contributor may not decide; what a member typed
is shown as text."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import yaml
from sqlalchemy import select

from delivery_support import member_row, run_cli, write_members
from desk_support import ADMIN, CONTRIBUTOR, add_team, csrf_of, open_desk, sign_in
from newsletter.content.loader import load_issue
from newsletter.db.models import Submission, SubmissionStatus, Subscriber
from newsletter.submissions import review
from web_support import WebSite

MEMBER = "lee.shah@leeds.gov.example"
REPORT = {
    "title": "Leeds: a year as a Marmot City <script>alert(1)</script>",
    "url": "https://www.leeds.gov.example/marmot-city-year-one",
    "summary": "What changed in Leeds in the first year.\n\nTwo lines.",
    "date": "2023-11-01",
    "authors": ["Leeds City Council"],
    "topics": ["communities"],
}


@pytest.fixture
def site(database_url, tmp_path) -> Iterator[WebSite]:
    yield from open_desk(database_url, tmp_path)


@pytest.fixture
def submitted(site, tmp_path) -> int:
    """A confirmed member's report waiting for the editors, and an admin signed in."""
    add_team(site)
    row = member_row(MEMBER, name="Lee Shah", organisation="Leeds City Council", sector="local-government")
    site.audience.import_csv(write_members(tmp_path / "members.csv", [row]))
    with site.store.session() as session:
        member = session.scalar(select(Subscriber).where(Subscriber.email == MEMBER))
        submission = Submission(
            subscriber_id=member.id,
            name=member.name,
            organisation=member.organisation,
            credit=True,
            kind="publication",
            title=REPORT["title"],
            fields=REPORT,
            status=SubmissionStatus.PENDING,
            note="",
        )
        session.add(submission)
        session.commit()
        submission_id = submission.id
    sign_in(site, ADMIN)
    return submission_id


def _decide(site, submission_id: int, decision: str, **form: str):
    token = csrf_of(site.client, f"/desk/submissions/{submission_id}")
    return site.client.post(
        f"/desk/submissions/{submission_id}/{decision}", data={"csrf_token": token, **form}
    )


def _mail_to(site, count: int) -> list:
    return [m for m in site.mail(count) if m["To"].addresses[0].addr_spec == MEMBER]


def test_an_editor_adds_a_report_to_a_draft_and_the_member_is_told(site, submitted):
    queue = site.client.get("/desk/submissions/")
    assert queue.status_code == 200
    assert "Leeds City Council" in queue.text and "a publication or report" in queue.text
    shown = site.client.get(f"/desk/submissions/{submitted}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown.text and "<script>alert" not in shown.text

    done = _decide(site, submitted, "accept", issue="2023-10")
    assert done.status_code == 303
    issue_file = site.settings.issues_dir / "2023-10" / "issue.yaml"
    data = yaml.safe_load(issue_file.read_text(encoding="utf-8"))
    publications = next(s for s in data["sections"] if s["kind"] == "publications")
    added = publications["items"][-1]
    assert added["url"] == REPORT["url"] and added["credit"] == "Leeds City Council"
    issue = load_issue(issue_file, site.store.vocabulary)  # still a valid issue: `newsletter check` loads it
    assert any(
        getattr(item, "url", "") == REPORT["url"] for s in issue.sections for item in getattr(s, "items", ())
    )

    (told,) = _mail_to(site, 2)  # the sign-in link, then the member's email
    text = told.get_body(("plain",)).get_content()
    assert "was accepted" in told["Subject"] and "Leeds: a year as a Marmot City" in text
    assert re.search(r"/preferences/[A-Za-z0-9._-]+", text)
    with site.store.session() as session:
        kept = session.get(Submission, submitted)
        assert (kept.status, kept.issue_slug, kept.decided_by) == (
            SubmissionStatus.ACCEPTED,
            "2023-10",
            ADMIN,
        )
    assert "Nothing is waiting" in site.client.get("/desk/submissions/").text
    listed = run_cli(site.settings, "submissions", "--all")
    assert "accepted (2023-10)" in listed.output and "from Lee Shah, Leeds City Council" in listed.output
    assert run_cli(site.settings, "submissions").output == "Nothing is waiting for an editor.\n"
    again = _decide(site, submitted, "decline", reason="Changed my mind")
    assert again.status_code == 400 and "already accepted" in again.text


def test_a_question_and_a_refusal_are_emailed_with_the_editors_words(site, submitted):
    empty = _decide(site, submitted, "decline", reason="  ")
    assert empty.status_code == 400 and 'id="error-reason"' in empty.text
    asked = _decide(site, submitted, "ask", question="Is there a summary <b>for the public</b>?")
    assert asked.status_code == 303
    (question,) = _mail_to(site, 2)
    assert "Is there a summary <b>for the public</b>?" in question.get_body(("plain",)).get_content()
    html = question.get_body(("html",)).get_content()
    assert "&lt;b&gt;for the public&lt;/b&gt;" in html
    assert "question" in site.client.get("/desk/submissions/").text  # still waiting, for their answer
    declined = _decide(site, submitted, "decline", reason="It came after this month's issue closed.")
    assert declined.status_code == 303
    refusal = _mail_to(site, 3)[-1]
    assert "It came after this month's issue closed." in refusal.get_body(("plain",)).get_content()


def test_only_a_draft_takes_a_submission_and_a_contributor_may_not_decide(site, submitted):
    nowhere = _decide(site, submitted, "accept", issue="../etc")
    assert nowhere.status_code == 400 and "choose a draft issue" in nowhere.text
    contributor = site.app.test_client()
    sign_in(site, CONTRIBUTOR, count=2, client=contributor)
    assert contributor.get("/desk/submissions/").status_code == 403
    token = csrf_of(contributor, "/desk/")
    refused = contributor.post(
        f"/desk/submissions/{submitted}/accept", data={"csrf_token": token, "issue": "2023-10"}
    )
    assert refused.status_code == 403
    assert site.client.get("/desk/submissions/999").status_code == 404
    without_csrf = site.client.post(f"/desk/submissions/{submitted}/accept", data={"issue": "2023-10"})
    assert without_csrf.status_code == 400
    with site.store.session() as session:
        assert session.get(Submission, submitted).status == SubmissionStatus.PENDING


def test_an_item_goes_where_an_editor_would_put_it():
    place = {"place": "Gwent", "region": "wales", "kind": "Marmot Region", "updates": "News."}
    draft = {"sections": [{"kind": "story", "title": "Lead"}, {"kind": "contact", "email": "a@b.example"}]}
    added = review.with_item(draft, "place", place, "Gwent Public Services Board")
    # A draft without a places section gets one, before the contact section that closes the issue.
    assert [section["kind"] for section in added["sections"]] == ["story", "places", "contact"]
    assert added["sections"][1]["items"] == [{**place, "credit": "Gwent Public Services Board"}]
    assert draft["sections"][1]["kind"] == "contact", "the draft's own data is left as it was"
    story = review.with_item(added, "story", {"title": "An idea", "body": "Text."}, None)
    assert story["sections"][2] == {"kind": "story", "title": "An idea", "body": "Text."}
    again = review.with_item(added, "place", {**place, "place": "Leeds"}, None)
    assert [item["place"] for item in again["sections"][1]["items"]] == ["Gwent", "Leeds"]
