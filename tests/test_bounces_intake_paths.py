"""Two ways reports come in: handed over by the relay (SMTP/LMTP), or waiting in a Maildir or IMAP folder.

The readers take the processing function as a parameter. Most tests give them `StandIn`, a small real
processor that records what it got and can fail on demand, so they pin the readers' own behaviour: what is
accepted, refused, moved, and above all what is left exactly as it was. One test runs the real `Intake`
on SQLite and PostgreSQL, and the installed command is run from a folder `newsletter init` made.
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import os
import re
import smtplib
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from delivery_support import member_row, write_members
from newsletter.bounces.intake import Intake, looks_like_report
from newsletter.bounces.mailbox import ImapFolder, ImapLocation, Tally, read_imap, read_maildir
from newsletter.bounces.receive import BounceReceiver, is_bounce_address
from newsletter.db.models import Subscriber
from newsletter.errors import UserError
from newsletter.testing.dovecot import TemporaryDovecot
from newsletter.tokens import Tokens
from user_support import Background, free_port, init_project, newsletter

DOMAIN = "health-equity-network.example.org"


# -- messages ----------------------------------------------------------------------------------------------


def dsn(token: str, address: str = "gone@example.com", status: str = "5.1.1") -> bytes:
    """An RFC 3464 delivery status notification for a message sent with VERP token `token`."""
    return (
        f"From: MAILER-DAEMON@mx.example.com\r\nTo: bounces+{token}@{DOMAIN}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-{token}@mx.example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n"
        f"Final-Recipient: rfc822; {address}\r\nAction: failed\r\nStatus: {status}\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 No such user\r\n"
        "--b--\r\n"
    ).encode()


def unreadable_report(token: str) -> bytes:
    """Addressed to a bounce address, but saying nothing a machine can use: for review."""
    return (
        f"From: postmaster@odd.example\r\nTo: bounces+{token}@{DOMAIN}\r\nSubject: problem\r\n\r\n"
        "Something went wrong with something.\r\n"
    ).encode()


def colleague(number: int) -> bytes:
    return (
        f"From: Amina <amina@{DOMAIN}>\r\nTo: network@{DOMAIN}\r\nSubject: Minutes, part {number}\r\n"
        f"Message-ID: <minutes-{number}@{DOMAIN}>\r\n\r\nThe minutes of meeting {number} are attached.\r\n"
    ).encode()


@dataclass
class Result:
    understood: bool


@dataclass
class StandIn:
    """Stands in for `Intake.process`: records what it was given, understands a message with a delivery
    status part, and can be told to fail the way a database that is down does."""

    fail: bool = False
    seen: list[tuple[bytes, str | None]] = field(default_factory=list)

    def process(self, raw: bytes, envelope_to: str | None = None) -> Result:
        if self.fail:
            raise RuntimeError("the database is not answering")
        self.seen.append((raw, envelope_to))
        message = email.message_from_bytes(raw, policy=email.policy.default)
        statuses = [part for part in message.walk() if part.get_content_type() == "message/delivery-status"]
        return Result(understood=bool(statuses))

    def process_many(self, raws: list[bytes]) -> list[Result | Exception]:
        """`Intake.process_many`: each message's result, or the exception that stopped it."""
        results: list[Result | Exception] = []
        for raw in raws:
            try:
                results.append(self.process(raw))
            except RuntimeError as error:
                results.append(error)
        return results

    @staticmethod
    def looks_like_report(raw: bytes) -> bool:
        """The real test (headers only), so what these readers leave alone is what production leaves."""
        return looks_like_report(raw, DOMAIN)


# -- SMTP and LMTP -----------------------------------------------------------------------------------------


def test_bounce_addresses_are_recognised_by_pattern_and_domain():
    assert is_bounce_address(f"bounces+abc123@{DOMAIN}", DOMAIN)
    assert is_bounce_address(f"Bounces+abc123@{DOMAIN.upper()}", DOMAIN)
    assert not is_bounce_address(f"bounces+@{DOMAIN}", DOMAIN)
    assert not is_bounce_address(f"bounces@{DOMAIN}", DOMAIN)
    assert not is_bounce_address(f"network+abc@{DOMAIN}", DOMAIN)
    assert not is_bounce_address("bounces+abc123@elsewhere.example", DOMAIN)


def test_smtp_accepts_a_dsn_for_a_bounce_address_and_refuses_any_other_address():
    intake = StandIn()
    with (
        BounceReceiver(intake.process, DOMAIN, port=0) as server,
        smtplib.SMTP("127.0.0.1", server.port) as smtp,
    ):
        smtp.sendmail("", [f"bounces+tok1@{DOMAIN}"], dsn("tok1"))
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.sendmail("", [f"network@{DOMAIN}"], colleague(1))
        code, reply = refused.value.recipients[f"network@{DOMAIN}"]
        assert code == 550 and b"5.1.1" in reply
    assert [(raw, to) for raw, to in intake.seen] == [(dsn("tok1"), f"bounces+tok1@{DOMAIN}")]
    assert server.accepted == 1


def test_smtp_takes_one_recipient_per_message_so_a_retry_never_repeats_one():
    intake = StandIn()
    with (
        BounceReceiver(intake.process, DOMAIN, port=0) as server,
        smtplib.SMTP("127.0.0.1", server.port) as smtp,
    ):
        refused = smtp.sendmail("", [f"bounces+a@{DOMAIN}", f"bounces+b@{DOMAIN}"], dsn("a"))
    assert refused[f"bounces+b@{DOMAIN}"][0] == 452  # the relay sends it again, on its own
    assert [to for _, to in intake.seen] == [f"bounces+a@{DOMAIN}"]


def test_a_processing_error_answers_451_so_the_relay_keeps_the_message():
    intake = StandIn(fail=True)
    with (
        BounceReceiver(intake.process, DOMAIN, port=0) as server,
        smtplib.SMTP("127.0.0.1", server.port) as smtp,
    ):
        with pytest.raises(smtplib.SMTPDataError) as error:
            smtp.sendmail("", [f"bounces+tok1@{DOMAIN}"], dsn("tok1"))
        assert error.value.smtp_code == 451
        intake.fail = False  # the database is back: the relay's retry goes through
        smtp.sendmail("", [f"bounces+tok1@{DOMAIN}"], dsn("tok1"))
    assert len(intake.seen) == 1
    assert (server.accepted, server.retried) == (1, 1)


def test_lmtp_answers_each_recipient_on_its_own():
    intake = StandIn()
    with BounceReceiver(intake.process, DOMAIN, port=0, lmtp=True) as server:
        lmtp = smtplib.LMTP("127.0.0.1", server.port)
        try:
            assert lmtp.ehlo()[0] == 250  # smtplib's LMTP greets with LHLO
            lmtp.mail("")
            assert lmtp.rcpt(f"bounces+a@{DOMAIN}")[0] == 250
            assert lmtp.rcpt(f"bounces+b@{DOMAIN}")[0] == 250
            assert lmtp.rcpt(f"someone@{DOMAIN}")[0] == 550
            assert lmtp.data(dsn("a"))[0] == 250  # the first recipient's reply...
            assert lmtp.getreply()[0] == 250  # ...and the second's
        finally:
            lmtp.close()
    assert [to for _, to in intake.seen] == [f"bounces+a@{DOMAIN}", f"bounces+b@{DOMAIN}"]


def test_a_busy_port_is_one_clear_message():
    with BounceReceiver(StandIn().process, DOMAIN, port=0) as first:
        second = BounceReceiver(StandIn().process, DOMAIN, port=first.port)
        with pytest.raises(UserError, match=f"Cannot listen on 127.0.0.1:{first.port}"):
            second.start()


# -- Maildir -----------------------------------------------------------------------------------------------


def make_maildir(path: Path) -> Path:
    for part in ("tmp", "new", "cur"):
        (path / part).mkdir(parents=True)
    return path


def put(maildir: Path, name: str, raw: bytes) -> Path:
    file = maildir / name
    file.write_bytes(raw)
    return file


def snapshot(maildir: Path) -> dict[str, bytes]:
    """Every message file under new/ and cur/ by its relative name (so its flags), with its bytes."""
    return {
        f"{part}/{entry.name}": Path(entry.path).read_bytes()
        for part in ("new", "cur")
        if (maildir / part).is_dir()
        for entry in os.scandir(maildir / part)
    }


def test_maildir_files_reports_and_leaves_other_mail_alone(tmp_path):
    maildir = make_maildir(tmp_path / "Maildir")
    put(maildir, "new/1.bounce", dsn("tok1"))
    put(maildir, "cur/2.bounce:2,S", dsn("tok2"))  # someone opened it in a mail client: still ours to do
    put(maildir, "new/3.odd", unreadable_report("tok3"))
    put(maildir, "cur/4.minutes:2,FS", colleague(4))
    put(maildir, "new/5.minutes", colleague(5))
    intake = StandIn()
    tally = read_maildir(maildir, intake.process_many, intake.looks_like_report, print)

    assert tally == Tally(processed=2, review=1, other=2)
    assert tally.summary() == "2 bounces processed, 1 for review, 2 other messages left as they were"
    assert snapshot(maildir) == {"cur/4.minutes:2,FS": colleague(4), "new/5.minutes": colleague(5)}
    assert snapshot(maildir / ".Processed") == {"new/1.bounce": dsn("tok1"), "cur/2.bounce:2,S": dsn("tok2")}
    assert snapshot(maildir / ".Review") == {"new/3.odd": unreadable_report("tok3")}
    assert (maildir / ".Processed" / "maildirfolder").exists()
    # A second run finds nothing new to do and still touches nothing.
    again = read_maildir(maildir, intake.process_many, intake.looks_like_report, print)
    assert again == Tally(other=2)


def test_a_report_that_fails_to_process_stays_for_the_next_run(tmp_path):
    maildir = make_maildir(tmp_path / "Maildir")
    put(maildir, "new/1.bounce", dsn("tok1"))
    notes: list[str] = []
    tally = read_maildir(maildir, StandIn(fail=True).process_many, StandIn.looks_like_report, notes.append)
    assert tally.failed == 1 and "stay for the next run" in tally.summary()
    assert snapshot(maildir) == {"new/1.bounce": dsn("tok1")}
    assert "the database is not answering" in notes[0]


def test_a_folder_that_is_not_a_maildir_is_one_clear_message(tmp_path):
    with pytest.raises(UserError, match="is not a Maildir"):
        read_maildir(tmp_path, StandIn().process_many, StandIn.looks_like_report, print)


def test_twenty_thousand_messages_where_only_the_reports_move(tmp_path):
    maildir = make_maildir(tmp_path / "Maildir")
    flags = ["", ":2,", ":2,S", ":2,FS", ":2,RS"]
    for number in range(20_000):
        if number % 200 == 0:  # 100 bounces among them
            put(maildir, f"new/{number}.bounce", dsn(f"tok{number}"))
        elif number % 5_000 == 1:  # and 4 reports nobody can read
            put(maildir, f"new/{number}.odd", unreadable_report(f"tok{number}"))
        else:
            flag = flags[number % len(flags)]
            put(maildir, f"{'cur' if flag else 'new'}/{number}.mail{flag}", colleague(number))
    before = snapshot(maildir)
    others = {name: raw for name, raw in before.items() if ".mail" in name}
    mtimes = {name: (maildir / name).stat().st_mtime_ns for name in others}

    started = time.monotonic()
    intake = StandIn()
    tally = read_maildir(maildir, intake.process_many, intake.looks_like_report, print)
    elapsed = time.monotonic() - started

    assert tally == Tally(processed=100, review=4, other=len(others))
    assert snapshot(maildir) == others  # same names, so same flags, same bytes
    assert {name: (maildir / name).stat().st_mtime_ns for name in others} == mtimes
    assert len(snapshot(maildir / ".Processed")) == 100
    assert elapsed < 60, f"{elapsed:.1f} s for 20,000 messages"


# -- IMAP against a real Dovecot ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dovecot():
    with TemporaryDovecot() as server:
        yield server


def test_the_dovecot_harness_serves_imaps_with_a_verified_certificate(dovecot):
    with dovecot.client() as imap:
        assert imap.select("INBOX")[0] == "OK"
    location = ImapLocation.parse(dovecot.url())
    with ImapFolder(location, dovecot.password, str(dovecot.ca_file)) as folder:
        assert folder.can_move
    with pytest.raises(UserError, match="Cannot trust the IMAP server"):
        ImapFolder(location, dovecot.password).__enter__()  # the system's CAs do not know a self-signed cert
    with pytest.raises(UserError, match="refused the login"):
        ImapFolder(location, "wrong", str(dovecot.ca_file)).__enter__()


def test_the_dovecot_harness_removes_everything_when_it_stops():
    with TemporaryDovecot() as server:
        directory, process = server.directory, server.process
        assert directory is not None and directory.is_dir()
    assert not directory.exists()
    assert process is not None and process.poll() is not None


def flags_by_subject(imap: imaplib.IMAP4_SSL, folder: str) -> dict[str, set[str]]:
    assert imap.select(folder)[0] == "OK", folder
    _, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    found = {}
    for item in data:
        if isinstance(item, tuple):
            flags = set(imaplib.ParseFlags(item[0])) if b"FLAGS" in item[0] else set()
            subject = email.message_from_bytes(item[1])["Subject"]
            found[subject] = {flag.decode() for flag in flags} - {"\\Recent"}
    return found


@pytest.mark.parametrize("move", [True, False], ids=["MOVE", "COPY+EXPUNGE"])
def test_imap_files_reports_and_never_touches_other_mail(dovecot, move, monkeypatch):
    folder = f"Bounces{int(move)}"
    with dovecot.client() as imap:
        assert imap.create(folder)[0] == "OK"
        imap.append(
            folder, None, None, dsn("tok1").replace(b"Subject: Undelivered", b"Subject: DSN1 Undelivered")
        )
        imap.append(folder, r"(\Seen)", None, dsn("tok2").replace(b"Subject: Undelivered", b"Subject: DSN2"))
        imap.append(folder, None, None, unreadable_report("tok3"))
        imap.append(folder, r"(\Flagged)", None, colleague(4))  # unread, flagged: must stay unread
        imap.append(folder, None, None, colleague(5))
        before = flags_by_subject(imap, folder)
    if not move:
        monkeypatch.setattr(ImapFolder, "_begin", _without_move(ImapFolder._begin))
    intake = StandIn()
    tally = read_imap(
        dovecot.url(folder),
        dovecot.password,
        str(dovecot.ca_file),
        intake.process_many,
        intake.looks_like_report,
        print,
    )

    assert tally == Tally(processed=2, review=1, other=2)
    with dovecot.client() as imap:
        left = flags_by_subject(imap, folder)
        assert left == {key: before[key] for key in ("Minutes, part 4", "Minutes, part 5")}
        assert left["Minutes, part 4"] == {"\\Flagged"}  # not marked \Seen by our reading
        assert set(flags_by_subject(imap, f"{folder}.Processed")) == {
            "DSN1 Undelivered Mail Returned to Sender",
            "DSN2 Mail Returned to Sender",
        }
        assert set(flags_by_subject(imap, f"{folder}.Review")) == {"problem"}
    again = read_imap(
        dovecot.url(folder),
        dovecot.password,
        str(dovecot.ca_file),
        intake.process_many,
        intake.looks_like_report,
        print,
    )
    assert again == Tally(other=2)


def _without_move(begin):
    """Pretend the server lacks MOVE, to take the COPY + \\Deleted + UID EXPUNGE path."""

    def wrapped(self, where):
        begin(self, where)
        self.can_move = False

    return wrapped


def test_imap_addresses_are_checked_before_connecting():
    assert ImapLocation.parse("imaps://bounces%40example.org@mail.example.org/Bounces") == ImapLocation(
        "bounces@example.org", "mail.example.org", 993, "Bounces"
    )
    assert ImapLocation.parse("imaps://u@h:1993").folder == "INBOX"
    for bad, message in [
        ("imap://u@h/INBOX", "imaps://"),
        ("imaps://h/INBOX", "log in as"),
        ("imaps://u:secret@h/INBOX", "imap_password"),
        ("imaps://u@h:99999/INBOX", "port"),
    ]:
        with pytest.raises(UserError, match=message):
            ImapLocation.parse(bad)
    with pytest.raises(UserError, match="needs a password"):
        ImapFolder(ImapLocation.parse("imaps://u@h/INBOX"), "")


def test_imap_that_cannot_be_reached_is_one_clear_message():
    with pytest.raises(UserError, match="Cannot connect to the IMAP server"):
        read_imap(
            f"imaps://u@127.0.0.1:{free_port()}/INBOX",
            "pw",
            "",
            StandIn().process_many,
            StandIn.looks_like_report,
            print,
        )


# -- with the real Intake, on SQLite and PostgreSQL --------------------------------------------------------


def stored_member(audience, email_address: str) -> Subscriber:
    with audience.store.database.session() as session:
        found = session.scalar(select(Subscriber).where(Subscriber.email == email_address))
        assert found is not None, email_address
        return found


def test_the_real_intake_suppresses_the_member_a_dsn_names_whichever_way_it_came(
    audience, audience_settings, tmp_path
):
    settings = audience_settings
    audience.import_csv(
        write_members(tmp_path / "members.csv", [member_row("jo@example.com"), member_row("al@example.com")])
    )
    tokens = Tokens(settings.secret_key)
    token_of = {}
    for email_address in ("jo@example.com", "al@example.com"):
        found = stored_member(audience, email_address)
        token_of[email_address] = tokens.make("bounce", found.id, found.link_key)
    intake = Intake(audience.store, settings)

    maildir = make_maildir(tmp_path / "Maildir")
    put(maildir, "new/1.bounce", dsn(token_of["jo@example.com"], "jo@example.com"))
    put(maildir, "new/2.minutes", colleague(2))
    tally = read_maildir(maildir, intake.process_many, lambda raw: looks_like_report(raw, DOMAIN), print)
    assert tally == Tally(processed=1, other=1)

    with (
        BounceReceiver(intake.process, DOMAIN, port=0) as server,
        smtplib.SMTP("127.0.0.1", server.port) as smtp,
    ):
        address = f"bounces+{token_of['al@example.com']}@{DOMAIN}"
        smtp.sendmail("", [address], dsn(token_of["al@example.com"], "al@example.com"))

    statuses = {
        email_address: stored_member(audience, email_address).status.value for email_address in token_of
    }
    assert statuses == {"jo@example.com": "bounced", "al@example.com": "bounced"}


# -- the installed command ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_bounces_read_from_a_users_folder_files_the_report_and_leaves_the_rest(tmp_path):
    folder = init_project(tmp_path)
    maildir = make_maildir(folder / "Maildir")
    put(maildir, "new/1.bounce", dsn("tok1"))
    put(maildir, "cur/2.minutes:2,S", colleague(2))

    done = newsletter(folder, "bounces", "read", "--maildir", "Maildir")

    assert re.search(
        r"^\d+ bounces? processed, \d+ for review, 1 other message left as it was$", done.stdout, re.M
    )
    assert snapshot(maildir) == {"cur/2.minutes:2,S": colleague(2)}
    filed = {**snapshot(maildir / ".Processed"), **snapshot(maildir / ".Review")}
    assert filed == {"new/1.bounce": dsn("tok1")}


@pytest.mark.slow
def test_bounces_read_says_what_is_wrong_in_one_line(tmp_path):
    folder = init_project(tmp_path)
    for args, message in [
        ((), "--maildir DIR or --imap"),
        (("--maildir", "nowhere"), "is not a Maildir"),
        (("--imap", "imaps://bounces@127.0.0.1/INBOX"), "needs a password"),
    ]:
        done = newsletter(folder, "bounces", "read", *args, ok=False)
        assert done.returncode != 0 and message in done.stderr, done.stderr


@pytest.mark.slow
def test_bounces_receive_from_a_users_folder_takes_only_bounce_addresses(tmp_path):
    folder = init_project(tmp_path)
    port = free_port()
    server = Background(folder, "bounces", "receive", "--port", str(port), port=port)
    try:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.sendmail("", [f"bounces+tok1@{DOMAIN}"], dsn("tok1"))
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                smtp.sendmail("", [f"network@{DOMAIN}"], colleague(1))
    finally:
        output = server.stop()
    assert f"Taking bounces for bounces+*@{DOMAIN} over SMTP on 127.0.0.1:{port}" in output
    assert "1 report taken in, 0 answered 451 for a retry" in output
