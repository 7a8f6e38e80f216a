"""What each member's copy looks like when it reaches the relay: headers, MIME structure, raw bytes, and
personalisation, read back from what a real SMTP server received (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import email.utils
import html
import re
import shutil
from email.message import EmailMessage

import pytest
from sqlalchemy import update

from delivery_support import (
    SAMPLE_SLUG,
    assert_each_once,
    delivery_settings,
    ledger,
    link_key_of,
    member_row,
    open_sending,
    subscriber_id,
    write_members,
)
from newsletter.db.models import Campaign, Subscriber
from newsletter.delivery.message import campaign_tag, message_id_for
from newsletter.testing.smtp import RecordingSMTPServer
from newsletter.tokens import Tokens

DOMAIN = "health-equity-network.example.org"
BASE = "https://news.health-equity-network.example.org"
FEATURE = "The Role of Developers"  # a story tagged [housing, communities]
NHS_REPORT = "improving accountability in the NHS"  # a publication tagged only [nhs-integrated-care]

MEMBERS = [
    member_row("ann.everything@example.org", name="Ann Everything"),
    member_row("harry.housing@example.org", name="Harry Housing", topics="housing"),
    member_row("nia.nhs@example.org", name="Nia NHS", topics="nhs-integrated-care"),
    member_row("gwen.wales@example.org", name="Gwen Davies", region="wales"),
    member_row("tom.text@example.org", name="Tom Text", format="text"),
    member_row("o.brien@example.org", name="O'Brien, Siân (Dr.)", region="north-west"),
    member_row("eve@example.org", name="Eve"),
]
ADDRESSES = {row["email"] for row in MEMBERS}
# A name as a web form could store it (the CSV import already folds line breaks): it must not add a header.
EVE_NAME = "Eve\r\nBcc: victim@example.org\r\n\r\nHello"


@pytest.fixture
def delivered(database_url, tmp_path):
    """Send the sample issue to the six members above; yields (sending, campaign id, messages by address)."""
    path = write_members(tmp_path / "members.csv", MEMBERS)
    with RecordingSMTPServer() as server:
        settings = delivery_settings(database_url, server.port)
        with open_sending(settings, path) as sending:
            with sending.store.database.session() as session:
                session.execute(
                    update(Subscriber).where(Subscriber.email_key == "eve@example.org").values(name=EVE_NAME)
                )
            before = dt.datetime.now(dt.UTC)
            campaign, size = sending.send(SAMPLE_SLUG, ["everyone"])
            assert size == len(MEMBERS)
            sending.work(once=True, lease_seconds=30, retry_base_seconds=30)
            after = dt.datetime.now(dt.UTC)
            assert_each_once(server.messages, ADDRESSES)
            by_address = {received.rcpt_tos[0].lower(): received for received in server.messages}
            yield sending, campaign.id, by_address, (before, after)


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return part.get_content().replace("\r\n", "\n")


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return html.unescape(part.get_content())


def places(text: str) -> list[str]:
    """The place names of the text part's "Marmot Places" section, in the order the member sees them."""
    start = text.index("Marmot Places\n-------------")
    section = text[start : text.index("\n\n\n", start) if "\n\n\n" in text[start:] else len(text)]
    return re.findall(r"^\* (.+?) \(", section, re.MULTILINE)


def test_headers_of_every_copy(delivered):
    sending, campaign_id, by_address, (before, after) = delivered
    tokens = Tokens(sending.settings.secret_key)
    rows = ledger(sending, campaign_id)
    with sending.store.database.session() as session:
        campaign = session.get(Campaign, campaign_id)
        tag = campaign_tag(campaign_id, campaign.created_at)  # the campaign's own part of its Message-IDs
    for address, received in by_address.items():
        message = received.message()
        member_id = subscriber_id(sending, address)
        assert message["From"] == sending.settings.from_address
        assert message["Reply-To"] == sending.settings.reply_to
        assert message["Subject"] == "First Health Equity Network conference, plus new NHS and Gwent reports"
        assert message["MIME-Version"] == "1.0"
        assert message["List-Id"] == sending.settings.list_id
        assert (
            message["Message-ID"]
            == rows[address].message_id
            == message_id_for(campaign_id, member_id, DOMAIN, tag)
        )
        date = email.utils.parsedate_to_datetime(message["Date"])
        assert before - dt.timedelta(seconds=1) <= date <= after + dt.timedelta(seconds=1)

        unsubscribe = re.fullmatch(
            rf"<{re.escape(BASE)}/unsubscribe/([A-Za-z0-9._-]+)>", message["List-Unsubscribe"]
        )
        assert unsubscribe, message["List-Unsubscribe"]
        assert tokens.read("unsubscribe", unsubscribe.group(1), link_key_of(sending)) == member_id
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

        assert received.rcpt_tos == (address,)
    for row in MEMBERS:  # the name as the member gave it, however many commas and accents it has
        to = by_address[row["email"]].message()["To"]
        name = "Eve Bcc: victim@example.org Hello" if row["email"] == "eve@example.org" else row["name"]
        assert email.utils.getaddresses([str(to)]) == [(name, row["email"])], str(to)
    ids = [received.message()["Message-ID"] for received in by_address.values()]
    assert len(set(ids)) == len(ids) == len(MEMBERS)


def test_bounce_address_is_in_the_envelope_only(delivered):
    """Bounces come back to a VERP address naming the member (MAIL FROM), and the message as sent has no
    Return-Path: RFC 5321 section 4.4 leaves that header to the server that finally delivers it."""
    sending, _, by_address, _ = delivered
    tokens = Tokens(sending.settings.secret_key)
    for address, received in by_address.items():
        bounce = re.fullmatch(rf"bounces\+([A-Za-z0-9._-]+)@{re.escape(DOMAIN)}", received.envelope_from)
        assert bounce, received.envelope_from
        assert tokens.read("bounce", bounce.group(1), link_key_of(sending)) == subscriber_id(sending, address)
        head = received.data.split(b"\r\n\r\n", 1)[0]
        assert not re.search(rb"^Return-Path:", head, re.MULTILINE | re.IGNORECASE), address
        assert received.message()["Return-Path"] is None


def test_a_line_break_in_a_name_cannot_add_a_header(delivered):
    _, _, by_address, _ = delivered
    received = by_address["eve@example.org"]
    message = received.message()
    assert message["Bcc"] is None
    assert received.rcpt_tos == ("eve@example.org",)
    head = received.data.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"^Bcc:", head, re.MULTILINE | re.IGNORECASE)
    assert message.get_content_type() == "multipart/alternative"  # the body was not cut short either
    assert [(name, address) for name, address in email.utils.getaddresses(message.get_all("To"))] == [
        ("Eve Bcc: victim@example.org Hello", "eve@example.org")
    ]


def test_raw_bytes_and_mime_structure(delivered):
    """CRLF only, no line over 998 octets; text and HTML, or text alone for a member who chose it."""
    _, _, by_address, _ = delivered
    for address, received in by_address.items():
        raw = received.data
        assert b"\r\n" in raw
        assert re.search(rb"(?<!\r)\n", raw) is None, f"{address}: a bare LF"
        assert re.search(rb"\r(?!\n)", raw) is None, f"{address}: a bare CR"
        longest = max(len(line) for line in raw.split(b"\r\n"))
        assert longest <= 998, f"{address}: a line of {longest} octets"
        head = raw.split(b"\r\n\r\n", 1)[0]
        assert head.isascii(), f"{address}: 8-bit bytes in the header"

        message = received.message()
        if address == "tom.text@example.org":
            assert message.get_content_type() == "text/plain"
            assert not message.is_multipart()
            assert "October 2023 Newsletter" in message.get_content()
        else:
            assert message.get_content_type() == "multipart/alternative"
            parts = [part.get_content_type() for part in message.iter_parts()]
            assert parts == ["text/plain", "text/html"], f"{address}: {parts}"
            assert "<html" in html_of(message).lower()
        header_url = message["List-Unsubscribe"].strip("<>")
        assert header_url in text_of(message), address
        if message.is_multipart():
            assert header_url in html_of(message), address


def test_topics_choose_the_items_a_member_gets(delivered):
    _, _, by_address, _ = delivered
    everything = by_address["ann.everything@example.org"].message()
    housing = by_address["harry.housing@example.org"].message()
    nhs = by_address["nia.nhs@example.org"].message()

    for body in (text_of(everything), html_of(everything)):  # no topics chosen: everything
        assert FEATURE in body and NHS_REPORT in body
    for body in (text_of(housing), html_of(housing)):
        assert FEATURE in body
        assert NHS_REPORT not in body
    for body in (text_of(nhs), html_of(nhs)):
        assert NHS_REPORT in body
        assert FEATURE not in body
    # Untagged sections reach everyone.
    for message in (everything, housing, nhs):
        assert "Growing a Movement for Health Equity: our first annual conference" in text_of(message)


def test_a_member_sees_their_own_region_first_among_the_places(delivered):
    _, _, by_address, _ = delivered
    default_order = places(text_of(by_address["ann.everything@example.org"].message()))
    assert default_order[0] == "Leeds" and "Gwent" in default_order[1:]

    welsh = places(text_of(by_address["gwen.wales@example.org"].message()))
    assert welsh[0] == "Gwent"
    assert welsh[1:] == [place for place in default_order if place != "Gwent"]
    html_body = html_of(by_address["gwen.wales@example.org"].message())
    assert html_body.index("Marmot Gwent") < html_body.index("Leeds Marmot City")

    north_west = places(text_of(by_address["o.brien@example.org"].message()))
    assert north_west[:2] == ["Cheshire and Merseyside", "Lancashire and Cumbria"]  # both in the North West
    assert sorted(north_west) == sorted(default_order)


def test_the_text_member_gets_the_same_personalised_content(delivered):
    _, _, by_address, _ = delivered
    text = text_of(by_address["tom.text@example.org"].message())
    assert FEATURE in text and NHS_REPORT in text
    assert places(text) == places(text_of(by_address["ann.everything@example.org"].message()))


# --- What was checked is what is sent ---


@pytest.fixture
def own_issues(tmp_path, repo_root):
    """A copy of the sample issue in tmp_path/issues, free to edit or delete."""
    target = tmp_path / "issues" / SAMPLE_SLUG
    shutil.copytree(repo_root / "issues" / SAMPLE_SLUG, target)
    return target / "issue.yaml"


@pytest.mark.parametrize("change", ["edited", "deleted"])
def test_a_campaign_sends_the_issue_as_it_was_when_scheduled(database_url, tmp_path, own_issues, change):
    path = write_members(tmp_path / "members.csv", MEMBERS[:2])
    with RecordingSMTPServer() as server:
        settings = delivery_settings(database_url, server.port, issues_dir=own_issues.parents[1])
        with open_sending(settings, path) as sending:
            sending.send(SAMPLE_SLUG, ["everyone"])
            if change == "edited":
                source = own_issues.read_text(encoding="utf-8")
                own_issues.write_text(
                    source.replace("subject: First", "subject: Edited later: First"), "utf-8"
                )
            else:
                shutil.rmtree(own_issues.parent)

            stats = sending.work(once=True, lease_seconds=30, retry_base_seconds=30)

            assert stats.sent == 2
            assert_each_once(server.messages, {row["email"] for row in MEMBERS[:2]})
            subjects = {received.message()["Subject"] for received in server.messages}
            assert subjects == {"First Health Equity Network conference, plus new NHS and Gwent reports"}
            assert sending.campaigns()[0].campaign.subject == subjects.pop()


# --- An internationalised sender domain ---


def test_an_internationalised_from_domain_is_used_in_ascii(database_url, tmp_path):
    path = write_members(tmp_path / "members.csv", MEMBERS[:2])
    with RecordingSMTPServer() as server:
        settings = delivery_settings(
            database_url, server.port, from_address="Bücherei Netzwerk <news@bücher.example>"
        )
        with open_sending(settings, path) as sending:
            campaign, _ = sending.send(SAMPLE_SLUG, ["everyone"])
            stats = sending.work(once=True, lease_seconds=30, retry_base_seconds=30)
            rows = ledger(sending, campaign.id)
            assert {row.status for row in rows.values()} == {"sent"}, [
                row.last_reply for row in rows.values()
            ]
            assert stats.sent == 2
            for received in server.messages:
                message = received.message()
                assert message["Message-ID"].endswith("@xn--bcher-kva.example>")
                assert received.envelope_from.endswith("@xn--bcher-kva.example")


def test_a_test_send_from_an_internationalised_domain(database_url):
    with RecordingSMTPServer() as server:
        settings = delivery_settings(
            database_url, server.port, from_address="Bücherei Netzwerk <news@bücher.example>"
        )
        with open_sending(settings, members=None) as sending:
            results = sending.send_test(SAMPLE_SLUG, ["ed@example.org"])
            assert list(results) == ["ed@example.org"]
            assert results["ed@example.org"].startswith("sent: 250"), results
            assert server.messages[0].message()["Message-ID"].endswith("@xn--bcher-kva.example>")
