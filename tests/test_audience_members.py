"""Member care from the command line: show, unsubscribe (everything or one list), erase."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import func, select

from newsletter.db.models import ConsentRecord, Status, Subscriber, Subscription, Suppression
from test_audience_support import (
    consent_actions,
    error_lines,
    every_stored_value,
    import_text,
    member,
    run_cli,
    segment_emails,
)

PEOPLE = """\
email,name,organisation,sector,region,place,topics,lists,joined,team
Jo.Bloggs@Example.org,Jo Bloggs,Acme Trust,nhs,london,Hackney,housing;climate,newsletter;events,2021-02-03,red
other@example.org,Other Person,Org,nhs,london,Hackney,housing,newsletter,2021-02-03,
"""


@pytest.fixture
def people(audience, tmp_path):
    import_text(audience, tmp_path, PEOPLE, "people.csv", source="spring conference")
    return audience


def show(settings, email):
    result = run_cli(settings, "subscribers", "show", email)
    fields = {}
    for line in result.stdout.splitlines():
        if line.startswith("  ") or line == "consent history:":
            continue
        fields[line[:14].strip()] = line[15:]  # label padded to 14 characters, then the value
    history = result.stdout.partition("consent history:\n")[2].splitlines()
    return result, fields, history


def test_show_prints_details_lists_topics_and_consent_history(people, audience_settings):
    result, fields, history = show(audience_settings, "jo.bloggs@EXAMPLE.ORG")  # any case finds them
    assert result.exit_code == 0
    assert fields["email"] == "Jo.Bloggs@example.org"
    assert fields["status"] == "active"
    assert (fields["name"], fields["organisation"]) == ("Jo Bloggs", "Acme Trust")
    assert (fields["sector"], fields["region"], fields["place"]) == ("nhs", "london", "Hackney")
    assert fields["joined"] == "2021-02-03 00:00 UTC"
    assert fields["lists"] == "events, newsletter"
    assert fields["topics"] == "climate, housing"
    assert fields["attribute team"] == "red"
    assert len(history) == 1
    assert re.match(r"^  \d{4}-\d\d-\d\d \d\d:\d\d UTC  imported  via spring conference$", history[0]), (
        history
    )


def test_show_an_unknown_address_exits_1(people, audience_settings):
    for address in ("nobody@example.org", "not an address"):
        result = run_cli(audience_settings, "subscribers", "show", address)
        assert result.exit_code == 1
        assert error_lines(result) == [f"Error: {address}: no member with this address"]


def test_unsubscribe_from_everything(people, audience_settings):
    result = run_cli(audience_settings, "subscribers", "unsubscribe", "JO.BLOGGS@example.org")
    assert result.exit_code == 0
    assert result.stdout.strip() == "Jo.Bloggs@example.org is unsubscribed from everything"
    jo = member(people, "jo.bloggs@example.org")
    assert jo.status == Status.UNSUBSCRIBED and jo.unsubscribed_at is not None
    assert consent_actions(people, "jo.bloggs@example.org") == [
        ("imported", "spring conference"),
        ("unsubscribed", "admin"),
    ]
    assert "Jo.Bloggs@example.org" not in segment_emails(people, "everyone")
    _, fields, history = show(audience_settings, "jo.bloggs@example.org")
    assert fields["status"] == "unsubscribed"
    assert history[-1].endswith("  unsubscribed  via admin")
    again = run_cli(audience_settings, "subscribers", "unsubscribe", "jo.bloggs@example.org")
    assert again.stdout.strip() == "Jo.Bloggs@example.org was already unsubscribed"
    assert len(consent_actions(people, "jo.bloggs@example.org")) == 2


def test_unsubscribe_from_one_list(people, audience_settings):
    result = run_cli(
        audience_settings, "subscribers", "unsubscribe", "jo.bloggs@example.org", "--list", "events"
    )
    assert result.exit_code == 0
    assert result.stdout.strip() == "Jo.Bloggs@example.org has left the list 'events'"
    assert member(people, "jo.bloggs@example.org").status == Status.ACTIVE
    assert people.member("jo.bloggs@example.org").lists == [("events", False), ("newsletter", True)]
    assert consent_actions(people, "jo.bloggs@example.org")[-1] == ("left_list", "admin")
    _, fields, history = show(audience_settings, "jo.bloggs@example.org")
    assert fields["lists"] == "events (left), newsletter"
    assert history[-1].endswith("  left_list  via admin")
    assert "Jo.Bloggs@example.org" in segment_emails(people, "everyone")
    again = run_cli(
        audience_settings, "subscribers", "unsubscribe", "jo.bloggs@example.org", "--list", "events"
    )
    assert again.stdout.strip() == "Jo.Bloggs@example.org is not on the list 'events'"
    unknown = run_cli(
        audience_settings, "subscribers", "unsubscribe", "jo.bloggs@example.org", "--list", "event"
    )
    assert unknown.exit_code == 1
    assert "unknown list 'event' (did you mean 'events'?)" in error_lines(unknown)[0]


def test_erase_leaves_only_the_hash(people, audience_settings, tmp_path):
    address = "Jo.Bloggs@example.org"
    result = run_cli(audience_settings, "subscribers", "erase", "jo.bloggs@example.org", "--yes")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"{address}: erased;")
    digest = hashlib.sha256(address.lower().encode()).hexdigest()
    with people.store.session() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Subscriber).where(Subscriber.email_key == address.lower())
            )
            == 0
        )
        suppressions = session.execute(
            select(Suppression.email_hash, Suppression.email, Suppression.reason)
        ).all()
        assert suppressions == [(digest, None, "erased")]
        # their consent records went with them; one record of the erasure, by hash only
        records = session.execute(
            select(ConsentRecord.action, ConsentRecord.subscriber_id, ConsentRecord.email_hash)
        ).all()
        assert sorted(records, key=str) == sorted(
            [("imported", member(people, "other@example.org").id, None), ("erased", None, digest)], key=str
        )
        assert session.scalar(select(func.count()).select_from(Subscription)) == 1  # the other member's
    # the address is nowhere in the database, in any case, in any table
    values = [value.lower() for value in every_stored_value(people)]
    assert not [value for value in values if address.lower() in value]
    assert not [value for value in values if "jo bloggs" in value or "acme trust" in value]
    # show says it was erased; a re-import skips it
    shown = run_cli(audience_settings, "subscribers", "show", address)
    assert shown.exit_code == 1
    assert "was erased at the member's request" in error_lines(shown)[0]
    summary = import_text(people, tmp_path, PEOPLE, "again.csv")
    assert (summary.added, summary.skipped) == (0, 1)
    assert member(people, address) is None


def test_erase_asks_first_and_no_erases_nothing(people, audience_settings):
    result = run_cli(audience_settings, "subscribers", "erase", "jo.bloggs@example.org", input="n\n")
    assert result.exit_code == 1
    assert "Erase everything held about jo.bloggs@example.org?" in result.output
    assert member(people, "jo.bloggs@example.org") is not None
    assert consent_actions(people, "jo.bloggs@example.org") == [("imported", "spring conference")]
    with people.store.session() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    confirmed = run_cli(audience_settings, "subscribers", "erase", "jo.bloggs@example.org", input="y\n")
    assert confirmed.exit_code == 0
    assert member(people, "jo.bloggs@example.org") is None


def test_erase_an_unknown_address_exits_1(people, audience_settings):
    result = run_cli(audience_settings, "subscribers", "erase", "nobody@example.org", "--yes")
    assert result.exit_code == 1
    assert error_lines(result) == ["Error: nobody@example.org: no member with this address"]


def test_erase_after_a_suppression_forgets_the_kept_address(people, audience_settings):
    from newsletter.audience.members import suppress

    with people.store.session() as session:
        suppress(session, "other@example.org", "bounce", "test")
    assert run_cli(audience_settings, "subscribers", "erase", "other@example.org", "--yes").exit_code == 0
    assert not [value for value in every_stored_value(people) if "other@example.org" in value.lower()]
    with people.store.session() as session:
        assert session.execute(select(Suppression.email, Suppression.reason)).all() == [(None, "erased")]
