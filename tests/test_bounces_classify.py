"""The classifier on returned mail as servers write it: what kind of failure, whose, which message."""

from __future__ import annotations

import datetime as dt

import pytest

from bounces_support import DOMAIN, arf, auto_reply, dsn, qmail
from newsletter.bounces.classify import classify, kind_of, looks_like_report
from newsletter.bounces.findings import Kind

TOKEN = "1f.0123456789ABCDEF.c2lnbmF0dXJl"
MESSAGE_ID = "<nl.3.abc.47@health-equity-network.example.org>"


def one(raw: bytes, envelope_to: str | None = None):
    [finding] = classify(raw, DOMAIN, envelope_to)
    return finding


def failure(action: str, status: str, diagnostic: str, **options) -> bytes:
    return dsn(TOKEN, [("jo@example.org", action, status, diagnostic)], message_id=MESSAGE_ID, **options)


def test_a_550_5_1_1_is_hard_and_names_the_member_and_the_message():
    finding = one(
        failure("failed", "5.1.1", "550 5.1.1 <jo@example.org>: Recipient address rejected: User unknown")
    )
    assert finding.kind == Kind.HARD
    assert finding.source == "dsn"
    assert finding.token == TOKEN
    assert finding.address == "jo@example.org"
    assert finding.message_id == MESSAGE_ID
    assert finding.status == "5.1.1"
    assert finding.diagnostic == "550 5.1.1 <jo@example.org>: Recipient address rejected: User unknown"
    assert finding.received_at == dt.datetime(2024, 5, 7, 9, 0, tzinfo=dt.UTC)  # Last-Attempt-Date, in UTC


def test_a_full_mailbox_and_a_4xx_are_soft():
    assert one(failure("failed", "4.2.2", "452 4.2.2 Mailbox full")).kind == Kind.SOFT
    assert one(failure("failed", "5.2.2", "552 5.2.2 Quota exceeded")).kind == Kind.SOFT


def test_a_delayed_message_is_soft_whatever_its_code():
    finding = one(failure("delayed", "4.4.1", "connect to mx.example.org: Connection timed out"))
    assert finding.kind == Kind.SOFT
    assert finding.status == "4.4.1"


def test_a_spam_block_is_policy_never_hard_even_as_5xx():
    assert one(failure("failed", "5.7.1", "550 5.7.1 Message rejected as spam")).kind == Kind.POLICY
    blocked = one(failure("failed", "5.0.0", "550 5.0.0 Blocked: the sending IP is on a blacklist"))
    assert blocked.kind == Kind.POLICY
    # a 5.1.x code with spam-filter words is still the sender's problem
    assert one(failure("failed", "5.1.1", "550 5.1.1 rejected for poor reputation")).kind == Kind.POLICY


def test_5_0_0_is_hard_only_when_the_server_says_the_user_does_not_exist():
    assert one(failure("failed", "5.0.0", "550 5.0.0 The email account does not exist")).kind == Kind.HARD
    assert one(failure("failed", "5.0.0", "550 5.0.0 Requested action not taken")).kind == Kind.SOFT


def test_the_envelope_recipient_names_the_member_before_the_headers():
    raw = failure("failed", "5.1.1", "550 5.1.1 unknown", to=f"bounces+someone.else@{DOMAIN}")
    assert one(raw, f"bounces+{TOKEN}@{DOMAIN}").token == TOKEN
    assert one(raw).token == "someone.else"


def test_the_returned_original_as_a_whole_message_gives_the_message_id():
    raw = failure("failed", "5.1.1", "550 5.1.1 unknown", returned="message/rfc822")
    assert one(raw).message_id == MESSAGE_ID


def test_one_finding_per_failed_or_delayed_recipient_none_for_delivered():
    raw = dsn(
        TOKEN,
        [
            ("a@example.org", "failed", "5.1.1", "550 5.1.1 no such user"),
            ("b@example.org", "delivered", "2.0.0", "250 ok"),
            ("c@example.org", "delayed", "4.7.0", "451 4.7.0 try later"),
        ],
    )
    assert [(f.address, f.kind) for f in classify(raw, DOMAIN)] == [
        ("a@example.org", Kind.HARD),
        ("c@example.org", Kind.SOFT),
    ]


def test_a_complaint_names_the_member_by_the_original_return_path():
    finding = one(arf(token=TOKEN, message_id=MESSAGE_ID))
    assert finding.kind == Kind.COMPLAINT
    assert finding.source == "arf"
    assert finding.token == TOKEN
    assert finding.message_id == MESSAGE_ID
    assert finding.address == "jo@example.org"


def test_a_complaint_without_the_return_path_names_the_member_by_the_unsubscribe_link():
    finding = one(arf(unsubscribe="5.0123456789ABCDEF.AAAA.BBBB"))
    assert finding.kind == Kind.COMPLAINT
    assert finding.token == "5.0123456789ABCDEF.AAAA.BBBB"


@pytest.mark.parametrize(
    "headers",
    [
        {"subject": "Out of Office: Health Equity News, May"},
        {"subject": "Automatic reply: Health Equity News, May"},
        {"subject": "Re: the May issue", "Auto_Submitted": "auto-replied"},
        {"subject": "Re: the May issue", "X_Autoreply": "yes"},
        {"subject": "Re: the May issue", "Precedence": "auto_reply"},
    ],
    ids=["out-of-office", "automatic-reply", "auto-submitted", "x-autoreply", "precedence"],
)
def test_automatic_replies_are_ignored_not_taken_for_bounces(headers):
    finding = one(auto_reply(TOKEN, **headers))
    assert finding.kind == Kind.AUTO_REPLY
    assert finding.token == TOKEN


def test_a_non_standard_bounce_is_read_by_flufl_and_judged_by_its_code():
    hard = one(
        qmail(TOKEN, "jo@example.org", "550 5.1.1 <jo@example.org>: Recipient address rejected: User unknown")
    )
    assert (hard.kind, hard.source, hard.address, hard.token, hard.status) == (
        Kind.HARD,
        "flufl",
        "jo@example.org",
        TOKEN,
        "5.1.1",
    )
    assert "User unknown" in hard.diagnostic
    assert hard.message_id == "<nl.1.abc.1@x>"  # from the copy quoted below the words: names the campaign


def test_flufl_calls_a_spam_block_permanent_but_it_stays_policy():
    finding = one(
        qmail(
            TOKEN,
            "jo@example.org",
            "554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org",
        )
    )
    assert finding.source == "flufl"
    assert finding.kind == Kind.POLICY


def test_a_vague_permanent_failure_is_only_soft_and_the_quoted_newsletter_is_not_read():
    # the copy of our message below the bounce says "spam" and "block": not the server's words
    finding = one(qmail(TOKEN, "jo@example.org", "550 Requested action not taken: mailbox unavailable"))
    assert finding.kind == Kind.SOFT


def test_mail_to_the_bounce_address_that_says_nothing_usable_is_kept_for_review():
    raw = f"From: someone@example.org\r\nTo: bounces+{TOKEN}@{DOMAIN}\r\nSubject: hello?\r\n\r\nAnyone there?\r\n"
    finding = one(raw.encode())
    assert finding.kind == Kind.UNKNOWN
    assert finding.token == TOKEN
    assert finding.diagnostic == "hello?"


def test_unrelated_mail_is_not_a_report_and_is_left_alone():
    raw = (
        f"From: colleague@example.org\r\nTo: newsletter@{DOMAIN}\r\nSubject: Vacation plans and the spam filter\r\n"
        "\r\nAre you around in May? The user does not exist in the rota yet.\r\n"
    ).encode()
    assert classify(raw, DOMAIN) == []
    assert not looks_like_report(raw, DOMAIN)


def test_looks_like_report_knows_reports_by_their_headers():
    assert looks_like_report(failure("failed", "5.1.1", "550 unknown"), DOMAIN)
    not_to_us = dsn(None, [("jo@example.org", "failed", "5.1.1", "550 unknown")])
    assert looks_like_report(not_to_us, DOMAIN)  # a DSN sent to the From address
    assert looks_like_report(arf(token=TOKEN), DOMAIN)
    assert looks_like_report(auto_reply(TOKEN, subject="Hi", X_Autoreply="yes"), DOMAIN)
    assert looks_like_report(f"To: BOUNCES+{TOKEN}@{DOMAIN.upper()}\r\n\r\nx".encode(), DOMAIN)
    assert not looks_like_report(f"To: bounces+{TOKEN}@other.example\r\n\r\nx".encode(), DOMAIN)


def test_kind_of_is_the_rule_every_source_shares():
    assert kind_of("5.1.1", "") == Kind.HARD
    assert kind_of("4.4.7", "") == Kind.SOFT
    assert kind_of("5.7.26", "unauthenticated email") == Kind.POLICY
    assert kind_of(None, "mailbox full") == Kind.SOFT
    assert kind_of(None, "No such user here", permanent=True) == Kind.HARD
    assert kind_of(None, "No such user here", permanent=False) == Kind.SOFT
