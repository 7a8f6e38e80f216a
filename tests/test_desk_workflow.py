"""An issue's way through the desk: submitted by a contributor, approved (or sent back) by an editor,
test-sent, scheduled to segments after a confirmation that names the count, the subject and the time,
then followed, paused, resumed and cancelled. Each step is checked by role on the server and recorded
in the issue's history. A real app, database (SQLite and PostgreSQL) and SMTP server."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from desk_support import ADMIN, CONTRIBUTOR, add_team, csrf_of, open_desk, sign_in
from newsletter.db.models import Role
from web_support import REPO_ROOT

EDITOR = "ed.editor@example.org"
SLUG = "2023-10"
TOMORROW = (dt.datetime.now(ZoneInfo("Europe/London")) + dt.timedelta(days=1)).strftime("%Y-%m-%d")


@pytest.fixture
def site(database_url, tmp_path):
    yield from open_desk(database_url, tmp_path)


@pytest.fixture
def team(site):
    team = add_team(site)
    team.add(EDITOR, Role.EDITOR, name="Ed Editor")
    site.audience.import_csv(
        REPO_ROOT / "subscribers" / "sample.csv", report_path=site.settings.issues_dir.parent / "r.csv"
    )
    return team


def post(site, path: str, client=None, **data):
    client = client or site.client
    return client.post(path, data={"csrf_token": csrf_of(client, f"/desk/issues/{SLUG}"), **data})


def stage_of(site, client=None) -> str:
    page = (client or site.client).get(f"/desk/issues/{SLUG}").text
    return page.split('class="stage stage-', 1)[1].split(">", 1)[1].split("<", 1)[0]


def test_submit_approve_test_send_schedule_and_follow(site, team):
    contributor, editor = site.client, site.fresh_client()
    sign_in(site, CONTRIBUTOR, client=contributor)
    assert stage_of(site, contributor) == "draft"
    submitted = post(site, f"/desk/issues/{SLUG}/submit", contributor, note="Ready for you, Ed")
    assert submitted.status_code == 302
    assert stage_of(site, contributor) == "in review"
    assert post(site, f"/desk/issues/{SLUG}/approve", contributor).status_code == 403
    assert post(site, f"/desk/issues/{SLUG}/test-send", contributor).status_code == 403
    scheduled = post(
        site,
        f"/desk/issues/{SLUG}/schedule",
        contributor,
        to="everyone",
        when_date=TOMORROW,
        when_time="09:00",
    )
    assert scheduled.status_code == 403

    sign_in(site, EDITOR, count=2, client=editor)
    assert post(site, f"/desk/issues/{SLUG}/approve", editor).status_code == 302
    assert stage_of(site, editor) == "approved"

    tested = post(site, f"/desk/issues/{SLUG}/test-send", editor, as_email="kate.mensah@solihull.ac.example")
    assert tested.status_code == 302
    copies = [
        m
        for m in site.mail(3)
        if m["To"].addresses[0].addr_spec == EDITOR and m["Subject"].startswith("[TEST]")
    ]
    assert len(copies) == 1

    reach = json.loads(editor.get(f"/desk/issues/{SLUG}/reach?to=housing&to=north-west-councils").text)
    alone = json.loads(editor.get(f"/desk/issues/{SLUG}/reach?to=housing").text)
    assert 0 < alone["members"] <= reach["members"] and reach["new"] == reach["members"]

    asked = post(
        site,
        f"/desk/issues/{SLUG}/schedule",
        editor,
        to=["housing", "north-west-councils"],
        when_date=TOMORROW,
        when_time="09:00",
    )
    assert asked.status_code == 200
    assert (
        "Send <strong>“" in asked.text and f"{TOMORROW} 09:00" in asked.text and "Europe/London" in asked.text
    )
    count = int(asked.text.split("to <strong>", 1)[1].split(" member", 1)[0].replace(",", ""))
    assert count == reach["new"]
    assert not desk_campaigns(site)  # the confirmation wrote nothing

    confirmed = post(
        site,
        f"/desk/issues/{SLUG}/schedule",
        editor,
        to=["housing", "north-west-councils"],
        when_date=TOMORROW,
        when_time="09:00",
        confirmed="yes",
    )
    assert confirmed.status_code == 302 and "/desk/campaigns/" in confirmed.headers["Location"]
    [campaign] = desk_campaigns(site)
    assert campaign.audiences == ["housing", "north-west-councils"]
    page = editor.get(confirmed.headers["Location"])
    assert page.status_code == 200 and "scheduled" in page.text
    progress = json.loads(editor.get(confirmed.headers["Location"] + "/progress").text)
    assert progress["total"] == 0 and progress["status"] == "scheduled"

    month = campaign.send_at.strftime("%Y-%m")
    calendar = contributor.get(f"/desk/calendar?month={month}")
    assert calendar.status_code == 200 and f"/desk/campaigns/{campaign.id}" in calendar.text
    assert f"{SLUG}: scheduled" in calendar.text

    assert post(site, f"/desk/campaigns/{campaign.id}/pause", contributor).status_code == 403
    assert post(site, f"/desk/campaigns/{campaign.id}/pause", editor).status_code == 302
    assert desk_campaigns(site)[0].status.value == "paused"
    assert post(site, f"/desk/campaigns/{campaign.id}/resume", editor).status_code == 302
    assert post(site, f"/desk/campaigns/{campaign.id}/cancel", editor).status_code == 302
    assert desk_campaigns(site)[0].status.value == "cancelled"

    history = [event.action for event in team.history(issue_slug=SLUG)]
    assert history == ["cancelled", "resumed", "paused", "scheduled", "test-sent", "approved", "submitted"]


def desk_campaigns(site):
    from sqlalchemy import select

    from newsletter.db.models import Campaign

    with site.store.database.session() as session:
        return list(session.scalars(select(Campaign).order_by(Campaign.id)))


def test_a_change_to_the_file_after_approval_needs_approving_again(site, team):
    sign_in(site, ADMIN)
    post(site, f"/desk/issues/{SLUG}/submit")
    post(site, f"/desk/issues/{SLUG}/approve")
    assert stage_of(site) == "approved"
    path = site.settings.issues_dir / SLUG / "issue.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "# a change\n", encoding="utf-8")
    assert stage_of(site) == "in review"
    refused = post(
        site, f"/desk/issues/{SLUG}/schedule", to="everyone", when_date=TOMORROW, when_time="09:00"
    )
    assert refused.status_code == 400
    assert "only an approved issue can be scheduled; it is in review" in refused.text
    assert not desk_campaigns(site)


def test_a_draft_with_problems_cannot_be_submitted(site, team):
    sign_in(site, CONTRIBUTOR)
    path = site.settings.issues_dir / SLUG / "issue.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("subject:", "subject: ''\nold_subject:", 1), encoding="utf-8")
    answer = post(site, f"/desk/issues/{SLUG}/submit")
    assert answer.status_code == 400 and "Not submitted for review: fix these first." in answer.text
    assert stage_of(site) == "draft"


def test_sending_back_needs_a_note_and_returns_the_issue_to_draft(site, team):
    sign_in(site, ADMIN)
    post(site, f"/desk/issues/{SLUG}/submit")
    empty = post(site, f"/desk/issues/{SLUG}/send-back", note="  ")
    assert empty.status_code == 400 and 'id="error-note"' in empty.text
    assert post(site, f"/desk/issues/{SLUG}/send-back", note="Shorten the intro").status_code == 302
    assert stage_of(site) == "draft"
    assert "Shorten the intro" in site.client.get(f"/desk/issues/{SLUG}").text


def test_a_time_in_the_past_is_refused_next_to_its_field(site, team):
    sign_in(site, ADMIN)
    post(site, f"/desk/issues/{SLUG}/submit")
    post(site, f"/desk/issues/{SLUG}/approve")
    answer = post(
        site, f"/desk/issues/{SLUG}/schedule", to="everyone", when_date="2020-01-01", when_time="09:00"
    )
    assert answer.status_code == 400 and 'id="error-when"' in answer.text and "is in the past" in answer.text
    nobody = post(site, f"/desk/issues/{SLUG}/schedule", when_date=TOMORROW, when_time="09:00")
    assert nobody.status_code == 400 and 'id="error-to"' in nobody.text
    assert not desk_campaigns(site)
