"""Per-recipient messages from one prepared variant, read back as a mail client would read them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import re
import time
from email.message import EmailMessage

import pytest
from itsdangerous import TimestampSigner

from newsletter.delivery.message import (
    PreparedMessage,
    Recipient,
    bounce_address,
    campaign_tag,
    message_id_for,
    sender_domain,
)
from newsletter.errors import UserError
from newsletter.render.placeholders import PREFERENCES_URL, SUBMIT_URL, UNSUBSCRIBE_URL, VIEW_URL
from newsletter.tokens import Tokens

DOMAIN = "health-equity-network.example.org"
BASE = "https://news.health-equity-network.example.org"
DATE = "Fri, 20 Oct 2023 09:00:00 +0000"
KEY = "0123456789ABCDEF" * 2  # a member's link key, as `Subscriber.link_key` holds them
KEY_OF = lambda _subscriber_id: KEY  # noqa: E731  (every member here has the same key)
ANN = Recipient(4711, "ann.smith@example.org", "Ann Smith", text_only=False, link_key=KEY)
TOKEN_URL = re.compile(
    rf"{re.escape(BASE)}/(unsubscribe|preferences|submit)/[0-9a-z]+\.[0-9A-F]{{16}}\.[\w-]+\.[\w-]{{27}}"
)


@pytest.fixture(scope="module")
def tokens(settings) -> Tokens:
    return Tokens(settings.secret_key)


@pytest.fixture(autouse=True)
def same_second(monkeypatch):
    """Tokens made during one test carry one timestamp, so the test can make the expected links."""
    now = int(time.time())
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: now)


def url(tokens: Tokens, purpose: str, recipient: Recipient = ANN) -> str:
    return f"{BASE}/{purpose}/{tokens.make(purpose, recipient.subscriber_id, recipient.link_key)}"


@pytest.fixture(scope="module")
def edition(sample):
    return sample.edition


@pytest.fixture(scope="module")
def prepared(edition, settings) -> PreparedMessage:
    return PreparedMessage.build(edition, settings, text_only=False)


@pytest.fixture(scope="module")
def text_prepared(edition, settings) -> PreparedMessage:
    return PreparedMessage.build(edition, settings, text_only=True)


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def send(prepared: PreparedMessage, tokens: Tokens, recipient: Recipient = ANN, campaign: int = 9) -> bytes:
    return prepared.render(recipient, message_id_for(campaign, recipient.subscriber_id, DOMAIN), tokens, DATE)


def bodies(message: EmailMessage) -> dict[str, str]:
    return {
        part.get_content_type(): part.get_content().replace("\r\n", "\n")
        for part in message.walk()
        if not part.is_multipart()
    }


def expected_body(template: str, unsubscribe: str, preferences: str, slug: str, submit: str) -> str:
    return (
        template.replace(VIEW_URL, f"{BASE}/archive/{slug}/")
        .replace(UNSUBSCRIBE_URL, unsubscribe)
        .replace(PREFERENCES_URL, preferences)
        .replace(SUBMIT_URL, submit)
    )


def links(text: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {"unsubscribe": set(), "preferences": set(), "submit": set()}
    for match in TOKEN_URL.finditer(text):
        found[match.group(1)].add(match.group(0))
    return found


# --- Headers ---


def test_headers(prepared, tokens, settings, edition):
    message = parse(send(prepared, tokens))
    assert message["From"] == settings.from_address
    assert message["To"] == "Ann Smith <ann.smith@example.org>"
    assert message["Reply-To"] == settings.reply_to
    assert message["Subject"] == edition.subject
    assert message["Date"] == DATE
    assert message["Message-ID"] == f"<nl.9.4711@{DOMAIN}>"
    assert message["MIME-Version"] == "1.0"
    assert message["List-Id"] == settings.list_id
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = re.fullmatch(
        rf"<{re.escape(BASE)}/unsubscribe/([A-Za-z0-9._-]+)>", message["List-Unsubscribe"]
    )
    assert unsubscribe and tokens.read("unsubscribe", unsubscribe.group(1), KEY_OF) == 4711
    for name in [
        "From",
        "To",
        "Reply-To",
        "Subject",
        "Date",
        "Message-ID",
        "List-Unsubscribe",
    ]:
        assert len(message.get_all(name)) == 1, name
    assert message["Return-Path"] is None  # the final delivery server writes it (RFC 5321 section 4.4)
    assert not message.defects


def test_the_bounce_address_is_the_envelope_sender_only(prepared, tokens, settings):
    sender = prepared.envelope_sender(ANN, tokens)
    bounce = re.fullmatch(rf"bounces\+([A-Za-z0-9._-]+)@{re.escape(DOMAIN)}", sender)
    assert bounce and tokens.read("bounce", bounce.group(1), KEY_OF) == ANN.subscriber_id
    assert sender == bounce_address(tokens.make("bounce", ANN.subscriber_id, ANN.link_key), settings)
    together, wire = prepared.wire(ANN, "<a.1@example.org>", tokens)
    assert together == sender
    assert b"Return-Path" not in wire and b"bounces+" not in wire
    assert b"Return-Path" not in send(prepared, tokens)


def test_date_defaults_to_now(prepared, tokens):
    message = parse(prepared.render(ANN, "<a.1@example.org>", tokens))
    sent = message["Date"].datetime
    assert sent.utcoffset() is not None and sent.utcoffset().total_seconds() == 0
    assert re.fullmatch(r"\w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d \+0000", str(message["Date"]))


def test_subject_prefix(edition, settings, tokens):
    prepared = PreparedMessage.build(edition, settings, text_only=False, subject_prefix="[TEST] ")
    assert parse(send(prepared, tokens))["Subject"] == "[TEST] " + edition.subject


def test_message_id_for_is_deterministic():
    assert message_id_for(3, 4711, DOMAIN) == message_id_for(3, 4711, DOMAIN) == f"<nl.3.4711@{DOMAIN}>"
    assert message_id_for(3, 4711, DOMAIN) != message_id_for(4, 4711, DOMAIN)
    assert message_id_for(3, 4711, DOMAIN) != message_id_for(3, 4712, DOMAIN)


def test_a_campaigns_tag_is_stable_and_differs_from_a_campaign_made_another_moment():
    created = dt.datetime(2023, 10, 20, 9, 0, 0, 123456)
    tag = campaign_tag(3, created)
    assert tag == campaign_tag(3, created)
    assert re.fullmatch(r"[a-z2-7]{16}", tag)
    assert tag != campaign_tag(3, created + dt.timedelta(microseconds=1))
    assert tag != campaign_tag(4, created)
    assert message_id_for(3, 4711, DOMAIN, tag) == f"<nl.3.{tag}.4711@{DOMAIN}>"


def test_sender_domain(settings):
    assert sender_domain(settings) == DOMAIN
    assert sender_domain(dataclasses.replace(settings, from_address="News <news@Bücher.example>")) == (
        "xn--bcher-kva.example"
    )


# --- Structure and bodies ---


def test_text_then_html(prepared, tokens):
    message = parse(send(prepared, tokens))
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"


def test_bodies_are_the_edition_with_the_members_links(prepared, tokens, edition):
    """Decoded, each part is exactly the rendered edition with this member's links in place."""
    message = parse(send(prepared, tokens))
    decoded = bodies(message)
    unsubscribe, preferences = url(tokens, "unsubscribe"), url(tokens, "preferences")
    submit = url(tokens, "submit")
    found = links(decoded["text/plain"])
    assert found == {"unsubscribe": {unsubscribe}, "preferences": {preferences}, "submit": {submit}}
    slug = edition.issue.slug
    assert decoded["text/plain"] == expected_body(edition.text, unsubscribe, preferences, slug, submit)
    assert decoded["text/html"] == expected_body(edition.html, unsubscribe, preferences, slug, submit)
    assert links(decoded["text/html"]) == found
    for text in decoded.values():
        assert "%%" not in text
        assert f"{BASE}/archive/{slug}/" in text
    assert tokens.read("unsubscribe", unsubscribe.rsplit("/", 1)[1], KEY_OF) == ANN.subscriber_id
    assert tokens.read("preferences", preferences.rsplit("/", 1)[1], KEY_OF) == ANN.subscriber_id
    assert tokens.read("submit", submit.rsplit("/", 1)[1], KEY_OF) == ANN.subscriber_id
    assert message["List-Unsubscribe"] == f"<{unsubscribe}>"


def test_text_only(text_prepared, tokens, edition):
    reader = dataclasses.replace(ANN, text_only=True)
    message = parse(send(text_prepared, tokens, reader))
    assert message.get_content_type() == "text/plain"
    assert not message.is_multipart()
    assert message.get_content_charset() == "utf-8"
    assert message["Content-Transfer-Encoding"] == "quoted-printable"
    text = message.get_content().replace("\r\n", "\n")
    unsubscribe, preferences = url(tokens, "unsubscribe", reader), url(tokens, "preferences", reader)
    submit = url(tokens, "submit", reader)
    assert text == expected_body(edition.text, unsubscribe, preferences, edition.issue.slug, submit)
    assert message["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert b"text/html" not in send(text_prepared, tokens, reader)


def test_a_text_only_member_never_gets_the_html_variant(prepared, tokens):
    with pytest.raises(ValueError, match="plain text"):
        send(prepared, tokens, dataclasses.replace(ANN, text_only=True))


@pytest.mark.parametrize("variant", ["prepared", "text_prepared"])
def test_crlf_and_line_lengths(request, variant, tokens):
    prepared = request.getfixturevalue(variant)
    reader = dataclasses.replace(ANN, text_only=prepared.text_only)
    raw = send(prepared, tokens, reader)
    assert raw.endswith(b"\r\n")
    lines = raw[:-2].split(b"\r\n")
    assert not any(b"\r" in line or b"\n" in line for line in lines), "a bare CR or LF"
    assert max(len(line) for line in lines) <= 998
    body = raw.partition(b"\r\n\r\n")[2]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76, "quoted-printable allows 76"
    assert raw.isascii()


def test_two_members_of_one_variant(prepared, tokens):
    bob = Recipient(4712, "bob@example.net", "Bob", text_only=False, link_key=KEY)
    ann_message, bob_message = parse(send(prepared, tokens)), parse(send(prepared, tokens, bob))
    assert ann_message["Message-ID"] != bob_message["Message-ID"]
    assert ann_message["To"] != bob_message["To"]
    assert prepared.envelope_sender(ANN, tokens) != prepared.envelope_sender(bob, tokens)
    ann_links, bob_links = links(bodies(ann_message)["text/plain"]), links(bodies(bob_message)["text/plain"])
    for purpose in ("unsubscribe", "preferences", "submit"):
        assert ann_links[purpose] != bob_links[purpose]
        (url,) = bob_links[purpose]
        assert tokens.read(purpose, url.rsplit("/", 1)[1], KEY_OF) == 4712
    assert bob_message["Subject"] == ann_message["Subject"]


# --- Markers wherever quoted-printable would cut them ---


@pytest.mark.parametrize(
    "text",
    [
        "x" * 74 + UNSUBSCRIBE_URL + "y" * 200 + "\n",
        UNSUBSCRIBE_URL + PREFERENCES_URL + UNSUBSCRIBE_URL,
        "a=b " * 30 + PREFERENCES_URL + " \n" + "é" * 50 + UNSUBSCRIBE_URL,
        "ends with a space " + UNSUBSCRIBE_URL + "\n\nnext\n",
        "x" * 76 + PREFERENCES_URL + "\n" + "." + "\n",
        "." + SUBMIT_URL + "\n" + "x" * 73 + SUBMIT_URL + PREFERENCES_URL + "\n",
        "line\r\nwith CRLF and a lone\rCR " + UNSUBSCRIBE_URL + "\n",
        "%%not_a_marker%% " + VIEW_URL + "\n",
        # Lines are encoded one at a time and kept: trailing spaces and tabs, '=', exact widths, repeats.
        ("trailing space \ntrailing tab\t\n" + "=" * 80 + "\n" + "x" * 75 + "\n" + "y" * 76 + "\n") * 2
        + " \n\t\n"
        + UNSUBSCRIBE_URL
        + " after\t",
        "é" * 37 + "\n" + "é" * 38 + " \n" + "\U0001f600" * 30 + PREFERENCES_URL + "\n",
    ],
)
def test_markers_in_awkward_places(edition, settings, tokens, text):
    odd = dataclasses.replace(edition, text=text, html=f"<p>{text}</p>")
    prepared = PreparedMessage.build(odd, settings, text_only=False)
    raw = send(prepared, tokens)
    assert max(len(line) for line in raw.partition(b"\r\n\r\n")[2].split(b"\r\n")) <= 76
    decoded = bodies(parse(raw))
    unsubscribe, preferences = url(tokens, "unsubscribe"), url(tokens, "preferences")
    submit = url(tokens, "submit")
    normal = text.replace("\r\n", "\n").replace("\r", "\n")
    slug = edition.issue.slug
    assert decoded["text/plain"] == expected_body(normal, unsubscribe, preferences, slug, submit)
    assert decoded["text/html"] == expected_body(f"<p>{normal}</p>", unsubscribe, preferences, slug, submit)


# --- Names, subjects and what they must not do ---


def test_non_ascii_name_and_subject(edition, settings, tokens):
    prepared = PreparedMessage.build(
        dataclasses.replace(edition, subject="Conference tickets now €25 for members"),
        settings,
        text_only=False,
    )
    sian = Recipient(5, "sian@example.org", "Siân Ó Dálaigh", text_only=False, link_key=KEY)
    raw = send(prepared, tokens, sian)
    message = parse(raw)
    assert message["To"].addresses[0].display_name == "Siân Ó Dálaigh"
    assert message["To"].addresses[0].addr_spec == "sian@example.org"
    assert message["Subject"] == "Conference tickets now €25 for members"
    head = raw.partition(b"\r\n\r\n")[0]
    assert head.isascii()
    assert b"=?utf-8?" in head


def test_ascii_stays_readable(prepared, tokens):
    head = send(prepared, tokens).partition(b"\r\n\r\n")[0]
    assert b"\r\nTo: Ann Smith <ann.smith@example.org>\r\n" in head
    assert b"=?" not in head


@pytest.mark.parametrize(
    "name",
    [
        'Smith, Ann "Annie"',
        "O'Brien (Dr.)",
        "back\\slash",
        "x@y.example <z@w.example>",
        "Müller, Jürgen",
        "  lots   of\tspace  ",
    ],
)
def test_display_names_with_specials(prepared, tokens, name):
    recipient = Recipient(6, "someone@example.org", name, text_only=False, link_key=KEY)
    to = parse(send(prepared, tokens, recipient))["To"]
    assert len(to.addresses) == 1
    assert to.addresses[0].addr_spec == "someone@example.org"
    assert to.addresses[0].display_name == " ".join(name.split())


def test_no_name(prepared, tokens):
    message = parse(
        send(prepared, tokens, Recipient(7, "anon@example.org", "", text_only=False, link_key=KEY))
    )
    assert message["To"] == "anon@example.org"


def test_header_injection(edition, settings, tokens):
    prepared = PreparedMessage.build(
        dataclasses.replace(edition, subject="Hello\nX-Evil: 1"), settings, text_only=False
    )
    evil = Recipient(8, "evil@example.org", "Evil\r\nBcc: victim@example.org", text_only=False, link_key=KEY)
    raw = send(prepared, tokens, evil)
    message = parse(raw)
    assert message["Bcc"] is None
    assert message["X-Evil"] is None
    assert len(message.get_all("To")) == 1
    assert [address.addr_spec for address in message["To"].addresses] == ["evil@example.org"]
    assert message["To"].addresses[0].display_name == "Evil Bcc: victim@example.org"
    assert message["Subject"] == "Hello X-Evil: 1"
    head = raw.partition(b"\r\n\r\n")[0]
    assert not re.search(rb"\r\n(Bcc|X-Evil):", head, re.IGNORECASE)


@pytest.mark.parametrize("control", ["\x00", "\x1b", "\x7f", "\x85", "\u2028", "\t", "\v"])
def test_control_characters_in_names(prepared, tokens, control):
    recipient = Recipient(9, "c@example.org", f"A{control}B", text_only=False, link_key=KEY)
    message = parse(send(prepared, tokens, recipient))
    assert message["To"].addresses[0].display_name == "A B"
    assert not message.defects


@pytest.mark.parametrize("name", ["A" * 5000, "Ö" * 5000, "Siân " * 1000, '"' * 3000])
def test_long_names_keep_lines_short(prepared, tokens, name):
    raw = send(prepared, tokens, Recipient(10, "long@example.org", name, text_only=False, link_key=KEY))
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    to = parse(raw)["To"]
    assert to.addresses[0].addr_spec == "long@example.org"
    assert len(to.addresses) == 1


@pytest.mark.parametrize(
    "address",
    [
        "",
        "no-at-sign",
        "a@b@c",
        "a b@example.org",
        "a@example.org\r\nBcc: x@y",
        "<a@example.org>",
        "a,b@example.org",
    ],
)
def test_addresses_that_would_break_the_header_are_refused(prepared, tokens, address):
    with pytest.raises(ValueError, match="address"):
        send(prepared, tokens, Recipient(11, address, "X", text_only=False, link_key=KEY))


def test_internationalised_domain_goes_out_in_ascii(prepared, tokens):
    raw = send(prepared, tokens, Recipient(12, "anna@bücher.example", "Anna", text_only=False, link_key=KEY))
    assert parse(raw)["To"].addresses[0].addr_spec == "anna@xn--bcher-kva.example"


@pytest.mark.parametrize("message_id", ["", "nl.1.2@x", "<nl.1.2@x>\r\nBcc: a@b", "<no-at-sign>", "<a b@x>"])
def test_bad_message_ids_are_refused(prepared, tokens, message_id):
    with pytest.raises(ValueError, match="Message-ID"):
        prepared.render(ANN, message_id, tokens, DATE)


def test_date_cannot_inject(prepared, tokens):
    raw = prepared.render(ANN, "<a.1@example.org>", tokens, "Fri, 20 Oct 2023 09:00:00 +0000\r\nBcc: x@y")
    assert parse(raw)["Bcc"] is None


# --- Settings the message depends on ---


@pytest.mark.parametrize(
    "base_url", ["ftp://x.example", "https://x.example/?a=b", "https://ex ample.org", ""]
)
def test_base_url_must_be_plain(edition, settings, base_url):
    with pytest.raises(UserError, match="base_url"):
        PreparedMessage.build(edition, dataclasses.replace(settings, base_url=base_url), text_only=False)


def test_from_address_must_have_a_domain(edition, settings):
    with pytest.raises(UserError, match="from_address"):
        PreparedMessage.build(
            edition, dataclasses.replace(settings, from_address="Newsletter"), text_only=False
        )


def test_base_url_trailing_slash(edition, settings, tokens):
    prepared = PreparedMessage.build(
        edition, dataclasses.replace(settings, base_url=BASE + "/"), text_only=False
    )
    message = parse(send(prepared, tokens))
    assert message["List-Unsubscribe"].startswith(f"<{BASE}/unsubscribe/")
    assert f"{BASE}/archive/{edition.issue.slug}/" in bodies(message)["text/plain"]


def test_lines_starting_with_a_dot_reach_the_reader_unchanged(edition, settings, tokens):
    """SMTP ends a message at a line holding one dot, so every line starting with a dot is sent doubled
    (RFC 5321 4.5.2): text lines, and a link cut by a soft line break just before a dot."""
    from newsletter.delivery.transport import SmtpTransport
    from newsletter.testing.smtp import RecordingSMTPServer

    base = "https://" + "a" * 67 + ".example.org"  # the unsubscribe link's second QP line starts with "."
    dotted = dataclasses.replace(edition, text=edition.text + "\n.a line with a leading dot\n..two\n.\nend\n")
    prepared = PreparedMessage.build(dotted, dataclasses.replace(settings, base_url=base), text_only=True)
    message_id = message_id_for(9, ANN.subscriber_id, DOMAIN)
    written = prepared.render(ANN, message_id, tokens, DATE)
    sender, wire = prepared.wire(ANN, message_id, tokens, DATE)
    assert b"\r\n.a line" in written and b"\r\n..a line" in wire and b"\r\n=\r\n.\r\nend" not in wire
    assert b"=\r\n..example.org/unsubscribe/" in wire and wire.endswith(b"\r\n.\r\n")

    with RecordingSMTPServer() as server:
        transport = SmtpTransport(f"smtp://127.0.0.1:{server.port}")
        try:
            assert transport.send_wire(sender, ANN.email, wire).code == 250
            assert transport.send(sender, ANN.email, written).code == 250
        finally:
            transport.close()
        assert server.wait_for(2)
        first, second = server.messages
    for received in (first, second):
        assert received.data.replace(b"\r\n", b"\n") == written.replace(b"\r\n", b"\n")
        body = parse(received.data).get_content().replace("\r\n", "\n")
        assert "\n.a line with a leading dot\n..two\n.\nend\n" in body
        assert f"{base}/unsubscribe/{tokens.make('unsubscribe', ANN.subscriber_id, ANN.link_key)}" in body
