"""Members sharing their work (`/submit`), on SQLite and PostgreSQL: who may submit, their links, the
form's checks (the editor's own validation, no HTML, https:// links only), the daily limit, asking for a
link by email, the preferences page's list, and submissions in a member's data export and erasure."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
import yaml
from sqlalchemy import select, update

from newsletter.content.loader import load_issue
from newsletter.db.models import Status, Submission, SubmissionStatus, Subscriber
from newsletter.delivery.message import PreparedMessage, Recipient, message_id_for
from newsletter.submissions import member as submissions
from newsletter.web.ratelimit import Limit, Limits
from web_support import BASE_URL, forged, open_site

DAY = 24 * 3600
JO = "jo@example.org"
REPORT = {
    "what": "publication",
    "title": "Fair Society, Healthy Lives: ten years on",
    "url": "https://example.org/reports/ten-years-on",
    "summary": "What changed in a decade, and **what did not**. [The data](https://example.org/data).",
    "date": "2024-02-25",
    "authors": "Michael Marmot\r\nJessica Allen\r\n",
    "topics": ["health-equity", "housing"],
    "credit": "yes",
}


@pytest.fixture
def site(database_url):
    yield from open_site(database_url)


@pytest.fixture
def jo(site):
    """Jo, a confirmed member of Acme Trust; `jo.link` is her submit link."""
    site.active_member(JO, name="Jo Bloggs", organisation="Acme Trust")
    site.mail(1)
    site.link = f"/submit/{site.token('submit', JO)}"
    return site


def share(site, link: str, answers: dict):
    """Send `answers` with a CSRF token, as a browser does (the token is the cookie's, from any form)."""
    return site.submit(link, answers, form_path="/submit")


def stored(site) -> list[Submission]:
    with site.store.database.session() as session:
        return list(session.scalars(select(Submission).order_by(Submission.id)))


# --- Sharing ---------------------------------------------------------------------------------------------


def test_a_member_chooses_a_kind_fills_its_fields_and_it_waits_for_the_editors(jo):
    choose = jo.client.get(jo.link)
    assert choose.status_code == 200
    for kind in submissions.KINDS.values():
        assert f'value="{kind.name}"' in choose.text and kind.label in choose.text
    form = jo.client.get(f"{jo.link}?what=publication")
    assert form.status_code == 200
    for name in ("title", "url", "summary", "date", "authors", "commissioner", "topics"):
        assert f'name="{name}"' in form.text, name
    assert 'name="credit" value="yes" checked' in form.text and "Acme Trust" in form.text
    before = jo.snapshot(with_rate_limits=False)

    done = share(jo, jo.link, REPORT)
    assert done.status_code == 200, done.text
    assert "with the editors" in done.text and "Fair Society, Healthy Lives: ten years on" in done.text
    [sent] = stored(jo)
    member = jo.member(JO)
    assert (sent.subscriber_id, sent.name, sent.organisation, sent.credit) == (
        member.id,
        "Jo Bloggs",
        "Acme Trust",
        True,
    )
    assert (sent.kind, sent.status, sent.note, sent.issue_slug) == (
        "publication",
        SubmissionStatus.PENDING,
        "",
        None,
    )
    assert sent.title == "Fair Society, Healthy Lives: ten years on"
    assert sent.fields == {
        "title": "Fair Society, Healthy Lives: ten years on",
        "url": "https://example.org/reports/ten-years-on",
        "summary": "What changed in a decade, and **what did not**. [The data](https://example.org/data).",
        "date": "2024-02-25",
        "authors": ["Michael Marmot", "Jessica Allen"],
        "topics": ["health-equity", "housing"],
    }
    changed = {name for name, rows in jo.snapshot(with_rate_limits=False).items() if rows != before[name]}
    assert changed == {"submissions"}


EVERY_KIND = {
    "place": {
        "place": "Coventry",
        "region": "west-midlands",
        "kind": "marmot-city",
        "updates": "Ten years as a Marmot City.\n\nWhat comes next.",
        "link.label": "Coventry's plan",
        "link.url": "https://example.org/coventry",
    },
    "collaboration": {
        "title": "Fairer Futures",
        "partners": "Leeds City Council\nNHS West Yorkshire",
        "body": "A joint programme.",
    },
    "event": {
        "title": "Health equity webinar",
        "start": "2024-03-05T18:00",
        "end": "2024-03-05T19:30",
        "online": "yes",
        "url": "https://example.org/webinar",
        "speakers.2.name": "Jessica Allen",  # the first row left blank: rows are numbered afresh
        "speakers.2.role": "Deputy Director",
    },
    "story": {
        "title": "A street that changed",
        "body": "How one street did it.",
        "links.1.label": "More",
        "links.1.url": "https://example.org/street",
    },
}


@pytest.mark.parametrize("kind", EVERY_KIND)
def test_each_kind_is_stored_as_issue_yaml_would_hold_it(jo, kind, tmp_path):
    response = share(jo, jo.link, {"what": kind, **EVERY_KIND[kind]})
    assert response.status_code == 200, response.text
    [sent] = stored(jo)
    assert sent.kind == kind
    if kind == "place":
        assert sent.title == "Coventry"
        assert (
            sent.fields["kind"] == "Marmot City"  # the loader keeps the name the email shows
            and sent.fields["link"]["url"] == "https://example.org/coventry"
        )
    if kind == "event":
        assert sent.fields["speakers"] == [{"name": "Jessica Allen", "role": "Deputy Director"}]
        assert (sent.fields["start"], sent.fields["end"], sent.fields["online"]) == (
            "2024-03-05T18:00",
            "2024-03-05T19:30",
            True,
        )
    # The fields, put into an issue as the desk would, load with no problem.
    section = dict(sent.fields) if kind == "story" else {"items": [sent.fields]}
    issue = {
        "title": "t",
        "date": "2024-03-01",
        "subject": "s",
        "preheader": "p",
        "editor": "e",
        "sections": [{"kind": submissions.SECTIONS[kind], **section}],
    }
    (tmp_path / "x").mkdir()
    load_issue(tmp_path / "x" / "issue.yaml", jo.store.vocabulary, text=yaml.safe_dump(issue))


def test_credit_is_the_members_choice_and_needs_an_organisation(jo):
    unticked = {key: value for key, value in REPORT.items() if key != "credit"}
    assert share(jo, jo.link, unticked).status_code == 200
    jo.active_member("sam@example.org")  # no organisation
    jo.mail(2)
    sam = f"/submit/{jo.token('submit', 'sam@example.org')}"
    form = jo.client.get(f"{sam}?what=publication")
    assert 'name="credit"' not in form.text and "name no organisation" in form.text
    assert share(jo, sam, REPORT).status_code == 200
    assert [(sent.organisation, sent.credit) for sent in stored(jo)] == [("Acme Trust", False), ("", False)]


# --- Mistakes, and what must never be stored --------------------------------------------------------------


def test_a_mistake_is_shown_at_its_field_with_nothing_typed_lost(jo):
    before = jo.snapshot(with_rate_limits=False)
    wrong = {**REPORT, "url": "example.org/report", "date": "2024-02-30", "title": "   "}
    response = share(jo, jo.link, wrong)
    assert response.status_code == 400
    page = response.text
    assert re.search(r'id="error-url"[^>]*>.*https://', page)
    assert re.search(r'id="error-date"[^>]*>.*not a real date', page)
    assert re.search(r'id="error-title"[^>]*>.*Please fill this in', page)
    assert 'aria-invalid="true"' in page and 'href="#field-url"' in page  # the summary links to the field
    assert 'value="example.org/report"' in page and 'value="2024-02-30"' in page  # as typed
    assert "**what did not**" in page and "Michael Marmot" in page
    assert re.search(r'value="housing" checked', page) and 'name="credit" value="yes" checked' in page
    assert jo.snapshot(with_rate_limits=False) == before


def test_an_unknown_kind_or_a_tampered_form_changes_nothing_it_should_not(jo):
    assert jo.client.get(f"{jo.link}?what=newsletter").status_code == 400
    assert share(jo, jo.link, {**REPORT, "what": "contact"}).status_code == 400
    assert stored(jo) == []
    # Names the form does not have are ignored: no raw values, no editors' fields, no credit line.
    extra = {**REPORT, "title!raw": '{"$date": "2020-01-01"}', "credit": "yes", "label": "Lead story"}
    extra |= {"sections.1.kind": "contact", "summary!extra": '{"evil": 1}'}
    assert share(jo, jo.link, extra).status_code == 200
    [sent] = stored(jo)
    assert set(sent.fields) == {"title", "url", "summary", "date", "authors", "topics"}


HOSTILE = [
    ("title", "<script>alert(1)</script>"),
    ("summary", "Read <script>alert(1)</script> this"),
    ("summary", '<img src="x" onerror="alert(1)">'),
    ("summary", "[Read it](javascript:alert(1))"),
    ("summary", "[Read it](JaVaScRiPt:alert(1))"),
    ("summary", "[Read it](&#106;avascript:alert(1))"),
    ("summary", "<javascript:alert(1)>"),
    ("summary", "[Read it](data:text/html;base64,PHNjcmlwdD4=)"),
    ("url", "javascript:alert(1)"),
    ("url", 'https://example.org/"><script>alert(1)</script>'),
    ("authors", "Jo\n<script>alert(1)</script>"),
    ("commissioner", "<b onclick=alert(1)>NHS</b>"),
]


@pytest.mark.parametrize(("field", "value"), HOSTILE)
def test_script_and_javascript_links_never_reach_the_desk(jo, field, value):
    response = share(jo, jo.link, {**REPORT, field: value})
    assert response.status_code == 400
    assert re.search(rf'id="error-{field}"', response.text)
    assert "<script>alert" not in response.text and "<img src" not in response.text  # shown escaped
    assert stored(jo) == []


def test_what_a_member_may_write_is_kept_as_written(jo):
    fine = {
        **REPORT,
        "title": "Children <5 and adults >65: a javascript: free report",
        "summary": "Under-5s <https://example.org/u5> and [mail us](mailto:team@example.org): 3 < 4 & 5 > 4.",
    }
    assert share(jo, jo.link, fine).status_code == 200
    [sent] = stored(jo)
    assert sent.title == fine["title"] and sent.fields["summary"] == fine["summary"]


def test_a_form_left_open_too_long_keeps_what_was_typed(jo):
    jo.client.get(f"{jo.link}?what=publication")
    response = jo.client.post(jo.link, data={**REPORT, "csrf_token": "stale"})
    assert response.status_code == 400 and "press the button again" in response.text
    assert "Fair Society, Healthy Lives" in response.text
    assert stored(jo) == []


def test_five_a_day_per_member(jo):
    for number in range(submissions.SUBMISSIONS_A_DAY):
        assert share(jo, jo.link, {**REPORT, "title": f"Report {number}"}).status_code == 200
    # A mistake does not count against the limit, and is answered as a mistake.
    assert share(jo, jo.link, {**REPORT, "url": "nope"}).status_code == 400
    refused = share(jo, jo.link, {**REPORT, "title": "One too many"})
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == str(DAY)
    assert "tomorrow" in refused.text and 'value="One too many"' in refused.text
    assert len(stored(jo)) == submissions.SUBMISSIONS_A_DAY
    # Another member has a limit of their own.
    jo.active_member("ann@example.org")
    ann = f"/submit/{jo.token('submit', 'ann@example.org')}"
    assert share(jo, ann, REPORT).status_code == 200


# --- Who may submit, and with which links -----------------------------------------------------------------


def test_only_a_confirmed_member_may_submit(jo):
    jo.subscribe("pat@example.org")  # pending: never confirmed
    pending = f"/submit/{jo.token('submit', 'pat@example.org')}"
    for path in (pending, f"{pending}?what=publication"):
        response = jo.client.get(path)
        assert response.status_code == 403 and "Only confirmed members" in response.text
    assert share(jo, pending, REPORT).status_code == 403
    jo.audience.unsubscribe(JO)
    assert jo.member(JO).status == Status.UNSUBSCRIBED
    assert jo.client.get(jo.link).status_code == 403
    assert share(jo, jo.link, REPORT).status_code == 403
    assert stored(jo) == []


def test_tampered_expired_revoked_and_wrong_links_are_refused(jo):
    member = jo.member(JO)
    old = jo.token("submit", JO, age=60 * DAY + 60)
    recent = jo.token("submit", JO, age=60 * DAY - 60)
    cases = [
        (forged(jo.link), 400, "This link does not work"),
        ("/submit/garbage", 400, "This link does not work"),
        (f"/submit/{jo.token('preferences', JO)}", 400, "This link does not work"),  # another purpose
        (f"/submit/{old}", 410, "This link has expired"),
    ]
    before = jo.snapshot(with_rate_limits=False)
    for path, status, words in cases:
        for response in (jo.client.get(path), jo.client.post(path, data=REPORT)):
            assert response.status_code == status, path
            assert words in response.text and 'href="/submit"' in response.text  # ask for a new one
    assert jo.snapshot(with_rate_limits=False) == before
    assert jo.client.get(f"/submit/{recent}").status_code == 200
    # "Send me new links" stops every submit link made before it.
    with jo.store.database.session() as session:
        moment = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=5)
        session.execute(update(Subscriber).where(Subscriber.id == member.id).values(links_valid_from=moment))
    revoked = jo.client.get(jo.link)
    assert revoked.status_code == 410 and "This link was replaced" in revoked.text
    # An erased member's link names nobody.
    fresh = f"/submit/{jo.token('submit', JO, age=-10)}"
    jo.audience.erase(JO)
    assert jo.client.get(fresh).status_code == 410
    assert stored(jo) == []


def test_the_issue_footer_carries_a_working_submit_link(jo, sample):
    member = jo.member(JO)
    prepared = PreparedMessage.build(sample.edition, jo.settings, text_only=False)
    reader = Recipient(member.id, member.email, member.name, text_only=False, link_key=member.link_key)
    raw = prepared.render(reader, message_id_for(1, member.id, "example.org"), jo.tokens).decode("ascii")
    text = raw.replace("=\r\n", "")
    [path] = set(re.findall(re.escape(BASE_URL) + r"(/submit/[A-Za-z0-9._-]+)", text))
    assert "Share your work with the network" in text
    assert jo.client.get(path).status_code == 200


# --- Asking for a link ------------------------------------------------------------------------------------


def test_asking_for_a_link_answers_the_same_for_anyone_and_mails_only_members(jo):
    jo.subscribe("pat@example.org")  # pending
    jo.mail(2)
    pages = []
    for address in (JO, "pat@example.org", "nobody@example.org"):
        response = jo.submit("/submit", {"email": address})
        assert response.status_code == 200
        pages.append(response.text.replace(address, "ADDRESS"))
    assert pages[0] == pages[1] == pages[2]
    [sent] = jo.mail(3)[2:]
    assert sent["To"].addresses[0].addr_spec == JO and "share your work" in sent["Subject"]
    assert not jo.smtp.wait_for(4, timeout=0.5)
    link = jo.last_link(JO)
    assert link.startswith("/submit/") and jo.client.get(link).status_code == 200
    assert share(jo, link, REPORT).status_code == 200


def test_asking_for_a_link_checks_the_address_and_the_form(jo):
    response = jo.submit("/submit", {"email": "not an address"})
    assert response.status_code == 400 and 'id="error-email"' in response.text
    response = jo.client.post("/submit", data={"email": JO})  # no CSRF token
    assert response.status_code == 400 and f'value="{JO}"' in response.text


@pytest.fixture
def tight(database_url):
    yield from open_site(database_url, limits=Limits(per_client=Limit(50, 600), per_address=Limit(2, 3600)))


def test_asking_for_a_link_is_rate_limited_per_inbox(tight):
    for _ in range(2):
        assert tight.submit("/submit", {"email": "someone@example.org"}).status_code == 200
    refused = tight.submit("/submit", {"email": "Someone+tag@example.org"})
    assert refused.status_code == 429 and "Retry-After" in refused.headers


# --- The preferences page ---------------------------------------------------------------------------------


def test_the_preferences_page_links_to_the_form_and_lists_each_submission_and_where_it_stands(jo):
    member = jo.member(JO)
    for title in ("Pending one", "Accepted one", "Declined one"):
        assert share(jo, jo.link, {**REPORT, "title": title}).status_code == 200
    with jo.store.database.session() as session:
        session.execute(
            update(Submission)
            .where(Submission.title == "Accepted one")
            .values(status=SubmissionStatus.ACCEPTED, issue_slug="2024-03")
        )
        session.execute(
            update(Submission)
            .where(Submission.title == "Declined one")
            .values(status=SubmissionStatus.DECLINED, note="We covered <this> last month.")
        )
    page = jo.client.get(f"/preferences/{jo.token('preferences', JO)}").text
    submit = re.search(r'href="/submit/([^"]+)"', page).group(1)
    assert jo.tokens.read("submit", submit, jo.key_of) == member.id
    listed = page[page.index('id="submissions"') :]
    assert listed.index("Declined one") < listed.index("Accepted one") < listed.index("Pending one")
    assert "Waiting for the editors" in listed and "the 2024-03 issue" in listed
    assert "Not used this time" in listed and "We covered &lt;this&gt; last month." in listed


def test_an_unsubscribed_member_sees_their_submissions_but_no_form(jo):
    assert share(jo, jo.link, REPORT).status_code == 200
    jo.audience.unsubscribe(JO)
    page = jo.client.get(f"/preferences/{jo.token('preferences', JO)}").text
    assert "Fair Society, Healthy Lives" in page and 'href="/submit/' not in page


# --- Data rights ------------------------------------------------------------------------------------------


def test_submissions_are_in_the_data_export(jo):
    assert share(jo, jo.link, REPORT).status_code == 200
    held = json.loads(jo.client.get(f"/data/{jo.token('data', JO)}/download").text)
    [entry] = held["submissions"]
    assert (entry["kind"], entry["title"], entry["status"]) == ("publication", REPORT["title"], "pending")
    assert (entry["name"], entry["organisation"], entry["credit_organisation"]) == (
        "Jo Bloggs",
        "Acme Trust",
        True,
    )
    assert entry["fields"]["url"] == REPORT["url"] and entry["sent"].endswith("+00:00")


@pytest.mark.parametrize("how", ["page", "cli"])
def test_erasing_a_member_unnames_their_submissions(jo, how):
    for title in ("Still waiting", "Published"):
        assert share(jo, jo.link, {**REPORT, "title": title}).status_code == 200
    with jo.store.database.session() as session:
        session.execute(
            update(Submission)
            .where(Submission.title == "Published")
            .values(status=SubmissionStatus.ACCEPTED, issue_slug="2024-03")
        )
    if how == "page":
        assert jo.submit(f"/data/{jo.token('data', JO)}/erase", {}).status_code == 200
    else:
        jo.audience.erase(JO)
    rows = {sent.title: sent for sent in stored(jo)}
    waiting, published = rows["Still waiting"], rows["Published"]
    assert (waiting.subscriber_id, waiting.name, waiting.organisation, waiting.credit) == (
        None,
        "",
        "",
        False,
    )
    assert (published.subscriber_id, published.name, published.organisation, published.credit) == (
        None,
        "",
        "Acme Trust",
        True,
    )
    assert "Jo Bloggs" not in repr(jo.snapshot()) and JO not in repr(jo.snapshot())


def test_the_kinds_follow_the_model(site):
    """Every field of each kind's item is on the form, bar the editors' own (credit, a story's layout)."""
    vocabulary = site.store.vocabulary
    publication = [field.name for field in submissions.form_fields("publication", vocabulary)]
    assert publication == ["title", "url", "summary", "date", "authors", "commissioner", "topics"]
    story = [field.name for field in submissions.form_fields("story", vocabulary)]
    assert story == ["title", "body", "links", "topics"]
    with pytest.raises(submissions.UnknownKind):
        submissions.form_fields("contact", vocabulary)
