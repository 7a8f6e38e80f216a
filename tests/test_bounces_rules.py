"""The rules, end to end through `Intake` on SQLite and PostgreSQL: hard bounces suppress, soft ones are
scored once a day and forgotten after a quiet spell, spam blocks never count, complaints take the member
off everything, `status` counts what came back, and `bounces undo` puts a wrong suppression right."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from bounces_support import DOMAIN, arf, auto_reply, dsn
from newsletter.audience import members
from newsletter.bounces.findings import Finding, Kind
from newsletter.bounces.history import Bounces
from newsletter.bounces.intake import Intake
from newsletter.db.models import (
    BounceEvent,
    Campaign,
    CampaignStatus,
    ConsentRecord,
    Delivery,
    DeliveryStatus,
    MailingList,
    Status,
    Subscriber,
    Subscription,
    Suppression,
    utcnow,
)
from newsletter.delivery import campaigns
from newsletter.errors import UserError
from newsletter.settings import Settings
from newsletter.tokens import Tokens
from test_audience_support import import_text
from user_support import init_project, newsletter

PEOPLE = "email,name,lists\njo@example.org,Jo,newsletter;events\nsam@example.org,Sam,newsletter\n"
DAY = dt.datetime(2024, 5, 1, 9, 0)


@pytest.fixture
def site(audience, audience_settings, tmp_path):
    """Two members, and the intake over the same Store, mail coming from DOMAIN."""
    import_text(audience, tmp_path, PEOPLE)
    settings = Settings(**{**_fields(audience_settings), "from_address": f"News <newsletter@{DOMAIN}>"})
    return Site(audience, settings)


def _fields(settings: Settings) -> dict:
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}


class Site:
    def __init__(self, audience, settings: Settings) -> None:
        self.store = audience.store
        self.settings = settings
        self.intake = Intake(self.store, settings)
        self.tokens = Tokens(settings.secret_key)

    def member(self, email: str) -> Subscriber:
        with self.store.session() as session:
            found = members.find(session, email)
            assert found is not None
            session.expunge(found)
            return found

    def token(self, email: str) -> str:
        member = self.member(email)
        return self.tokens.make("bounce", member.id, member.link_key)

    def bounce(self, email: str, status: str, diagnostic: str, when: dt.datetime, **options):
        raw = dsn(
            self.token(email), [(email, options.pop("action", "failed"), status, diagnostic)], **options
        )
        return self.intake.process(raw, now=when)

    def suppression(self, email: str) -> str | None:
        with self.store.session() as session:
            return session.scalar(
                select(Suppression.reason).where(Suppression.email_hash == self.member(email).email_hash)
            )

    def events(self) -> list[BounceEvent]:
        with self.store.session() as session:
            rows = list(session.scalars(select(BounceEvent).order_by(BounceEvent.id)))
            session.expunge_all()
            return rows

    def consent(self, email: str) -> list[ConsentRecord]:
        with self.store.session() as session:
            rows = list(
                session.scalars(
                    select(ConsentRecord)
                    .where(ConsentRecord.subscriber_id == self.member(email).id)
                    .order_by(ConsentRecord.id)
                )
            )
            session.expunge_all()
            return rows

    def lists(self, email: str) -> dict[str, bool]:
        with self.store.session() as session:
            rows = session.execute(
                select(MailingList.slug, Subscription.subscribed)
                .join(Subscription, Subscription.list_id == MailingList.id)
                .where(Subscription.subscriber_id == self.member(email).id)
            )
            return {slug: bool(on) for slug, on in rows}

    def sent_campaign(self) -> tuple[int, dict[str, str]]:
        """A campaign sent to both members: its id and each member's Message-ID."""
        now = utcnow()
        with self.store.session() as session:
            campaign = Campaign(
                issue_slug="2024-05",
                issue_source="",
                subject="Health Equity News, May",
                audiences=["everyone"],
                status=CampaignStatus.SENT,
                send_at=now,
                recipients=2,
            )
            session.add(campaign)
            session.flush()
            ids = {}
            for member in session.scalars(select(Subscriber)):
                ids[member.email] = f"<nl.{campaign.id}.tag.{member.id}@{DOMAIN}>"
                session.add(
                    Delivery(
                        campaign_id=campaign.id,
                        subscriber_id=member.id,
                        status=DeliveryStatus.SENT,
                        next_attempt_at=now,
                        message_id=ids[member.email],
                        sent_at=now,
                    )
                )
            return campaign.id, ids

    def report(self, campaign_id: int) -> campaigns.CampaignReport:
        with self.store.session() as session:
            return campaigns.report(session, session.get(Campaign, campaign_id))


def test_a_batch_from_a_mailbox_is_recorded_together_and_one_failing_report_fails_alone(site):
    """`process_many` (what `bounces read` runs, 200 reports a transaction): each report's result in
    order; a report the database refuses is that report's failure, and the others are still recorded."""
    campaign_id, ids = site.sent_campaign()

    class RefusesSam(Intake):  # the database refusing one report, as a constraint or a lock would
        def _record(self, session, finding, *rest):
            if finding.address == "sam@example.org":
                raise RuntimeError("the database refused this one")
            return super()._record(session, finding, *rest)

    reports = [
        dsn(site.token(email), [(email, "failed", "5.1.1", "550 5.1.1 User unknown")], message_id=ids[email])
        for email in ("jo@example.org", "sam@example.org")
    ]
    results = RefusesSam(site.store, site.settings).process_many([*reports, b"\xff\xfe not mail at all"])

    assert [type(result).__name__ for result in results] == ["Processed", "RuntimeError", "Processed"]
    assert results[0].actions == ["jo@example.org: suppressed: hard bounce (dsn 5.1.1)"]
    assert results[2].understood is False  # not a report: nothing written, left for a person
    assert site.member("jo@example.org").status == Status.BOUNCED
    assert site.member("sam@example.org").status == Status.ACTIVE  # its report stays for the next run
    assert [(event.kind, event.campaign_id) for event in site.events()] == [("hard", campaign_id)]

    again = site.intake.process_many([reports[1]])  # the next run: recorded like any other
    assert again[0].actions == ["sam@example.org: suppressed: hard bounce (dsn 5.1.1)"]


def test_a_hard_bounce_suppresses_the_member_at_once(site):
    processed = site.bounce("jo@example.org", "5.1.1", "550 5.1.1 User unknown", DAY)
    assert processed.understood
    assert [f.kind for f in processed.findings] == [Kind.HARD]
    assert processed.actions == ["jo@example.org: suppressed: hard bounce (dsn 5.1.1)"]
    assert site.member("jo@example.org").status == Status.BOUNCED
    assert site.suppression("jo@example.org") == "bounced"
    assert site.member("sam@example.org").status == Status.ACTIVE  # nobody else changes
    [event] = site.events()
    assert (event.kind, event.source, event.status, event.subscriber_id) == (
        "hard",
        "dsn",
        "5.1.1",
        site.member("jo@example.org").id,
    )
    assert event.diagnostic == "550 5.1.1 User unknown"
    assert event.received_at == dt.datetime(2024, 5, 7, 9, 0)  # the report's own date, in UTC


def test_soft_bounces_count_once_a_day_decay_after_a_quiet_week_and_suppress_at_the_threshold(site):
    def soft(day: int) -> None:
        site.bounce("jo@example.org", "4.2.2", "452 4.2.2 Mailbox full", DAY + dt.timedelta(days=day))

    def score() -> float:
        return site.member("jo@example.org").bounce_score

    soft(0)
    soft(0)  # the same day: counted once
    assert score() == 1
    soft(1)
    soft(2)
    assert score() == 3
    soft(2 + 8)  # more than bounce_quiet_days (7) since the last: the count starts again
    assert score() == 1
    assert site.member("jo@example.org").status == Status.ACTIVE
    for day in (11, 12, 13):
        soft(day)
    assert score() == 4
    assert site.member("jo@example.org").status == Status.ACTIVE
    assert site.suppression("jo@example.org") is None
    soft(14)  # the fifth day in a row: bounce_threshold
    assert site.member("jo@example.org").status == Status.BOUNCED
    assert site.suppression("jo@example.org") == "bounced"
    assert "5 soft bounces on separate days" in site.events()[-1].action


def test_a_soft_bounce_seven_days_after_the_last_still_counts(site):
    site.bounce("jo@example.org", "4.2.2", "452 mailbox full", DAY)
    site.bounce("jo@example.org", "4.2.2", "452 mailbox full", DAY + dt.timedelta(days=7))
    assert site.member("jo@example.org").bounce_score == 2


def test_the_threshold_and_quiet_days_are_settings(site):
    settings = Settings(**{**_fields(site.settings), "bounce_threshold": 2, "bounce_quiet_days": 1})
    intake = Intake(site.store, settings)
    token = site.token("jo@example.org")
    raw = dsn(token, [("jo@example.org", "failed", "4.2.2", "452 full")])
    intake.process(raw, now=DAY)
    intake.process(raw, now=DAY + dt.timedelta(days=3))  # two quiet days: forgotten
    assert site.member("jo@example.org").bounce_score == 1
    intake.process(raw, now=DAY + dt.timedelta(days=4))
    assert site.member("jo@example.org").status == Status.BOUNCED


def test_a_spam_block_never_counts_against_the_member(site):
    for day in range(10):
        processed = site.bounce(
            "jo@example.org",
            "5.7.1",
            "550 5.7.1 Message rejected as spam by Content Filtering",
            DAY + dt.timedelta(days=day),
        )
        assert [f.kind for f in processed.findings] == [Kind.POLICY]
    member = site.member("jo@example.org")
    assert (member.status, member.bounce_score) == (Status.ACTIVE, 0)
    assert site.suppression("jo@example.org") is None
    listed = Bounces(site.store).recent(days=3650)
    assert len(listed) == 10
    assert all("sending problem" in event.action for event in listed)


def test_a_complaint_unsubscribes_from_everything_suppresses_and_is_in_the_consent_history(site):
    campaign_id, ids = site.sent_campaign()
    processed = site.intake.process(arf(token=site.token("jo@example.org"), message_id=ids["jo@example.org"]))
    assert processed.understood
    assert processed.actions == [
        "jo@example.org: complaint: left events, newsletter; status complained; suppressed"
    ]
    assert site.member("jo@example.org").status == Status.COMPLAINED
    assert site.lists("jo@example.org") == {"newsletter": False, "events": False}
    assert site.suppression("jo@example.org") == "complained"
    record = site.consent("jo@example.org")[-1]
    assert (record.action, record.source) == ("complained", "complaint (arf)")
    assert record.details == {"lists": ["events", "newsletter"], "status": "active"}
    report = site.report(campaign_id)
    assert report.complained == 1
    assert report.counts == {"sent": 2}  # the message arrived: still sent
    # the same report again changes nothing and writes no second record
    site.intake.process(arf(token=site.token("jo@example.org"), message_id=ids["jo@example.org"]))
    assert [r.action for r in site.consent("jo@example.org")].count("complained") == 1
    assert site.report(campaign_id).complained == 1


def test_a_complaint_found_by_the_unsubscribe_link(site):
    member = site.member("sam@example.org")
    token = site.tokens.make("unsubscribe", member.id, member.link_key)
    site.intake.process(arf(unsubscribe=token))
    assert site.member("sam@example.org").status == Status.COMPLAINED


def test_bounces_that_come_back_after_sending_are_counted_by_status(site):
    campaign_id, ids = site.sent_campaign()
    site.bounce("jo@example.org", "5.1.1", "550 5.1.1 User unknown", DAY, message_id=ids["jo@example.org"])
    report = site.report(campaign_id)
    assert report.counts == {"sent": 1, "bounced": 1}
    assert report.bounced_later == 1
    [event] = site.events()
    assert event.campaign_id == campaign_id
    # a delay names the campaign too, but the message may still arrive: the row stays sent
    site.bounce(
        "sam@example.org", "4.4.1", "timed out", DAY, action="delayed", message_id=ids["sam@example.org"]
    )
    assert site.report(campaign_id).counts == {"sent": 1, "bounced": 1}
    assert site.events()[-1].campaign_id == campaign_id


def test_a_message_id_names_the_campaign_only_for_the_member_the_token_names(site):
    campaign_id, ids = site.sent_campaign()
    # Jo's token with Sam's Message-ID: Jo is the one bounced, and Sam's row is left alone
    site.bounce("jo@example.org", "5.1.1", "550 5.1.1 unknown", DAY, message_id=ids["sam@example.org"])
    assert site.report(campaign_id).counts == {"sent": 2}
    assert site.events()[0].campaign_id is None


def test_a_report_for_nobody_we_know_is_recorded_and_changes_nothing(site):
    forged = dsn("1.0123456789ABCDEF.forged", [("jo@example.org", "failed", "5.1.1", "550 5.1.1 unknown")])
    processed = site.intake.process(forged)
    assert processed.actions == ["jo@example.org: nobody we hold: nothing changed"]
    assert site.member("jo@example.org").status == Status.ACTIVE
    assert site.suppression("jo@example.org") is None
    [event] = site.events()
    assert event.subscriber_id is None
    # mail names nobody by its address alone: no token, no member
    site.intake.process(dsn(None, [("jo@example.org", "failed", "5.1.1", "550 5.1.1 unknown")]))
    assert site.member("jo@example.org").status == Status.ACTIVE


def test_a_providers_finding_names_the_member_by_address(site):
    [action] = site.intake.record(
        [Finding(Kind.HARD, "ses", address="Jo@Example.org", status="5.1.1")], now=DAY
    )
    assert action == "jo@example.org: suppressed: hard bounce (ses 5.1.1)"
    assert site.member("jo@example.org").status == Status.BOUNCED


def test_auto_replies_and_unreadable_reports_change_nothing_and_unreadable_ones_are_for_review(site):
    token = site.token("jo@example.org")
    assert site.intake.process(auto_reply(token)).understood
    odd = f"From: x@example.net\r\nTo: bounces+{token}@{DOMAIN}\r\nSubject: ???\r\n\r\nhm\r\n".encode()
    processed = site.intake.process(odd)
    assert not processed.understood
    assert site.member("jo@example.org").status == Status.ACTIVE
    history = Bounces(site.store)
    assert history.recent() == []  # neither is a bounce or a complaint
    [review] = history.recent(review=True)
    assert (review.who, review.kind, review.diagnostic) == ("jo@example.org", "unknown", "???")


def test_undo_restores_a_bounced_member_and_refuses_anyone_else(site):
    site.bounce("jo@example.org", "5.1.1", "550 5.1.1 User unknown", DAY)
    history = Bounces(site.store)
    message = history.undo("JO@example.org")
    assert message == "jo@example.org is active again (was bounced, suppressed: bounced)"
    member = site.member("jo@example.org")
    assert (member.status, member.bounce_score, member.bounce_scored_on) == (Status.ACTIVE, 0, None)
    assert site.suppression("jo@example.org") is None
    assert site.consent("jo@example.org")[-1].action == "restored"
    assert history.recent(days=3650)[0].undone
    with pytest.raises(UserError, match="not suppressed by a bounce or a complaint"):
        history.undo("jo@example.org")
    with pytest.raises(UserError, match="no member with this address"):
        history.undo("nobody@example.org")


def test_undo_puts_a_complainer_back_on_their_lists(site):
    site.intake.process(arf(token=site.token("jo@example.org")))
    assert Bounces(site.store).undo("jo@example.org") == (
        "jo@example.org is active again (was complained, suppressed: complained), back on events, newsletter"
    )
    assert site.lists("jo@example.org") == {"newsletter": True, "events": True}


def test_undo_never_restores_who_unsubscribed_was_erased_or_was_blocked_by_hand(site, audience, tmp_path):
    site.bounce("jo@example.org", "5.1.1", "550 5.1.1 User unknown", DAY)
    audience.unsubscribe("sam@example.org")
    site.bounce("sam@example.org", "5.1.1", "550 5.1.1 User unknown", DAY)  # suppressed, still unsubscribed
    assert site.member("sam@example.org").status == Status.UNSUBSCRIBED
    history = Bounces(site.store)
    with pytest.raises(UserError, match="unsubscribed of their own accord"):
        history.undo("sam@example.org")
    audience.erase("jo@example.org")
    with pytest.raises(UserError, match="erased at the member's request"):
        history.undo("jo@example.org")
    # the erased member's event is kept without them
    assert [event.subscriber_id for event in site.events()] == [None, site.member("sam@example.org").id]
    import_text(audience, tmp_path, "email\nann@example.org\n", "ann.csv")
    with site.store.session() as session:
        members.suppress(session, "ann@example.org", "manual", "admin")
    with pytest.raises(UserError, match="suppressed as 'manual'"):
        history.undo("ann@example.org")


@pytest.mark.slow
def test_bounces_and_undo_through_the_installed_command(tmp_path):
    folder = init_project(tmp_path)
    (folder / "people.csv").write_text(PEOPLE.replace(";events", ""), encoding="utf-8")
    newsletter(folder, "subscribers", "import", "people.csv")
    settings = Settings.load(folder, environ={})
    from newsletter.audience.store import Store
    from newsletter.delivery.message import sender_domain

    store = Store.open(settings)
    try:
        with store.session() as session:
            jo = members.find(session, "jo@example.org")
            assert jo is not None
            token = Tokens(settings.secret_key).make("bounce", jo.id, jo.link_key)
        raw = dsn(token, [("jo@example.org", "failed", "5.1.1", "550 5.1.1 <jo@example.org>: User unknown")])
        domain = sender_domain(settings)
        processed = Intake(store, settings).process(raw.replace(DOMAIN.encode(), domain.encode()))
        assert processed.actions == ["jo@example.org: suppressed: hard bounce (dsn 5.1.1)"]
    finally:
        store.close()

    listed = newsletter(folder, "bounces").stdout
    assert "hard" in listed and "jo@example.org" in listed and "5.1.1" in listed
    assert "said: 550 5.1.1 <jo@example.org>: User unknown" in listed
    assert "done: suppressed: hard bounce (dsn 5.1.1)" in listed
    assert "No reports that could not be classified" in newsletter(folder, "bounces", "--review").stdout

    undone = newsletter(folder, "bounces", "undo", "jo@example.org")
    assert undone.stdout.strip() == "jo@example.org is active again (was bounced, suppressed: bounced)"
    shown = newsletter(folder, "subscribers", "show", "jo@example.org").stdout
    assert "status         active" in shown
    assert "restored  via bounces undo" in shown
    assert "suppressed" not in shown.split("consent history")[0]

    newsletter(folder, "subscribers", "unsubscribe", "sam@example.org")
    refused = newsletter(folder, "bounces", "undo", "sam@example.org", ok=False)
    assert refused.returncode == 1
    assert "unsubscribed of their own accord" in refused.stderr
    assert "[undone]" in newsletter(folder, "bounces").stdout


def test_a_confirmation_email_that_bounces_is_taken_in_like_a_campaigns(database_url, tmp_path):
    """The pages' emails leave from the member's VERP address too, so a dead address given on the sign-up
    form comes back to the same rules: the pending member is marked bounced and never mailed again."""
    from web_support import open_site

    for site in open_site(database_url):
        assert site.subscribe("gone@example.org").status_code == 200
        site.mail(1)
        [sent] = site.smtp.messages
        local, _, domain = sent.envelope_from.partition("@")
        assert local.startswith("bounces+") and domain == DOMAIN
        token = local.removeprefix("bounces+")
        returned = dsn(token, [("gone@example.org", "failed", "5.1.1", "550 5.1.1 No such user")])
        processed = Intake(site.store, site.settings).process(returned, envelope_to=sent.envelope_from)
        assert [finding.kind for finding in processed.findings] == [Kind.HARD]
        member = site.member("gone@example.org")
        assert member is not None and member.status == Status.BOUNCED
