"""Bounce benchmark: 10,000 delivery reports in a Maildir, taken in as `newsletter bounces read --maildir`.

It imports N fictional members (bench/members.py) into a fresh SQLite database and sends the sample
issue to all of them (`Sending.send`, then the worker, into Postfix's smtp-sink), so every member has a
ledger row with its Message-ID, sent. It then
writes `--reports` reports (default 10,000, one a member, a seeded mix) into a Maildir's `new/`, each
to the member's VERP address (`bounces+TOKEN@domain`, the real bounce token) and quoting the ledger's
Message-ID, the way a relay returns them:

* 55% RFC 3464 DSNs, "550 5.1.1 User unknown" (Postfix's layout): hard, the member is suppressed;
* 20% RFC 3464 DSNs, "452 4.2.2 over quota" after the relay gave up: soft, scored;
* 10% RFC 3464 DSNs, "550 5.7.1 rejected as spam": policy, never the member's fault;
* 15% qmail's plain-text reports (no DSN), read through flufl.bounce: hard.

Then it times, in the same run:

* the reference, twice (before and after): reading each file and parsing it with Python's `email`
  package alone, nothing else: `email.message_from_bytes` (its default policy, compat32: the cheaper
  parse, so the stricter reference, and the target is judged against it), and for comparison
  `BytesParser(policy=email.policy.default)`, the modern API, which does more work per header;
* `classify` alone on each file (no database), to show where the time goes;
* the real thing: `read_maildir` with `Intake.process_many`, the library calls behind
  `newsletter bounces read --maildir`: classify, record against member and campaign (SQLite), move
  each file to `.Processed`.

The machine is shared and noisy, so the ratio of the intake's rate to the reference's (the mean of its
two runs) is the figure to compare between machines. Target: at least 0.5. It checks the outcome too
(every report processed, the hard ones suppressed and nobody else) and exits 1 if that is wrong; it
exits 0 whether or not the target is met (a benchmark, not a test).

    .venv/bin/python bench/bounces.py [--reports 10000] [--seed 2023]
"""

from __future__ import annotations

import argparse
import email.policy
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import members  # noqa: E402  (bench/members.py, the deterministic member generator)

ISSUE = "2023-10"
AUDIENCE = "everyone"
RATIO_TARGET = 0.5
RELAY = "relay.health-equity-network.example.org"
MIX = (("hard", 0.55), ("soft", 0.20), ("policy", 0.10), ("qmail", 0.15))
REPLIES = {
    "hard": ("failed", "5.1.1", "550 5.1.1 <{address}>: Recipient address rejected: User unknown"),
    "soft": ("failed", "4.2.2", "452 4.2.2 The email account that you tried to reach is over quota"),
    "policy": ("failed", "5.7.1", "550 5.7.1 Message rejected as spam by Content Filtering"),
}


@dataclass(frozen=True)
class Member:
    id: int
    email: str
    token: str
    message_id: str


def prepare(directory: Path, count: int) -> tuple[object, list[Member]]:
    """A database holding `count` members, each sent the sample issue (through the real worker, into
    Postfix's smtp-sink), so each has a ledger row with its Message-ID; with their bounce tokens."""
    from sqlalchemy import select

    from newsletter.audience.service import Audience
    from newsletter.db.models import Delivery, Subscriber
    from newsletter.delivery.service import Sending
    from newsletter.settings import Settings
    from newsletter.testing.smtp import PostfixSmtpSink
    from newsletter.tokens import Tokens

    csv_path = directory / "members.csv"
    members.write_csv(csv_path, count)
    with PostfixSmtpSink() as sink:
        settings = Settings(
            database_url=f"sqlite:///{directory / 'newsletter.sqlite3'}",
            smtp_url=f"smtp://127.0.0.1:{sink.port}",
            issues_dir=ROOT / "issues",
            theme_dir=ROOT / "templates",
            vocabulary_dir=ROOT / "subscribers",
            max_rate=0,
            domain_rate=0,
        )
        sending = Sending(settings)
        try:
            sending.store.upgrade()
            Audience(sending.store).import_csv(csv_path, report_path=directory / "import-report.csv")
            campaign, _ = sending.send(ISSUE, [AUDIENCE])
            while sending.work(once=True).sent:
                pass
            tokens = Tokens(settings.secret_key)
            with sending.store.database.session() as session:
                rows = session.execute(
                    select(Subscriber.id, Subscriber.email, Subscriber.link_key, Delivery.message_id)
                    .join(Delivery, Delivery.subscriber_id == Subscriber.id)
                    .where(Delivery.campaign_id == campaign.id)
                    .order_by(Subscriber.id)
                ).all()
        finally:
            sending.close()
    found = [Member(id, email, tokens.make("bounce", id, key), mid) for id, email, key, mid in rows]
    return settings, found


def dsn(member: Member, domain: str, kind: str, number: int) -> bytes:
    """A Postfix-style RFC 3464 report about `member`'s copy, to its VERP address."""
    action, status, reply = REPLIES[kind]
    reply = reply.format(address=member.email)
    verp = f"bounces+{member.token}@{domain}"
    boundary = f"{number:08X}.1696924800/{RELAY}"
    mx = f"mx.{member.email.partition('@')[2]}"
    return (
        f"Return-Path: <>\n"
        f"Delivered-To: {verp}\n"
        f"Received: by {RELAY} (Postfix) id {number:010X}; Tue, 10 Oct 2023 08:02:00 +0100 (BST)\n"
        f"Date: Tue, 10 Oct 2023 08:02:00 +0100 (BST)\n"
        f"From: MAILER-DAEMON@{RELAY} (Mail Delivery System)\n"
        f"Subject: Undelivered Mail Returned to Sender\n"
        f"To: {verp}\n"
        f"Auto-Submitted: auto-replied\n"
        f"MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\n'
        f"Message-Id: <{number:010X}.bounce@{RELAY}>\n\n"
        f"This is a MIME-encapsulated message.\n\n"
        f"--{boundary}\nContent-Description: Notification\nContent-Type: text/plain; charset=us-ascii\n\n"
        f"This is the mail system at host {RELAY}.\n\n"
        f"I'm sorry to have to inform you that your message could not\n"
        f"be delivered to one or more recipients.\n\n"
        f"<{member.email}>: host {mx}[203.0.113.{number % 250}] said: {reply} (in reply to RCPT TO command)\n\n"
        f"--{boundary}\nContent-Description: Delivery report\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; {RELAY}\nX-Postfix-Queue-ID: {number:010X}\n"
        f"X-Postfix-Sender: rfc822; {verp}\nArrival-Date: Tue, 10 Oct 2023 08:00:01 +0100 (BST)\n\n"
        f"Final-Recipient: rfc822; {member.email}\nOriginal-Recipient: rfc822;{member.email}\n"
        f"Action: {action}\nStatus: {status}\nRemote-MTA: dns; {mx}\nDiagnostic-Code: smtp; {reply}\n\n"
        f"--{boundary}\nContent-Description: Undelivered Message Headers\nContent-Type: text/rfc822-headers\n\n"
        f"{original_headers(member, domain)}\n"
        f"--{boundary}--\n"
    ).encode()


def qmail(member: Member, domain: str, number: int) -> bytes:
    """qmail's plain-text failure notice: no DSN, the address only in the text."""
    verp = f"bounces+{member.token}@{domain}"
    return (
        f"Return-Path: <>\n"
        f"Delivered-To: {verp}\n"
        f"Date: 10 Oct 2023 07:02:{number % 60:02d} -0000\n"
        f"From: MAILER-DAEMON@mail.{member.email.partition('@')[2]}\n"
        f"To: {verp}\n"
        f"Subject: failure notice\n"
        f"Message-ID: <{number:010X}.qmail@mail.{member.email.partition('@')[2]}>\n\n"
        f"Hi. This is the qmail-send program at mail.{member.email.partition('@')[2]}.\n"
        f"I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        f"This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        f"<{member.email}>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
        f"--- Below this line is a copy of the message.\n\n"
        f"{original_headers(member, domain)}\n"
        f"Hello,\n\nThis month: community health workers in Tower Hamlets.\n"
    ).encode()


def original_headers(member: Member, domain: str) -> str:
    return (
        f"Return-Path: <bounces+{member.token}@{domain}>\n"
        f"Received: from news.{domain} (news.{domain} [198.51.100.25])\n"
        f"\tby {RELAY} (Postfix) with ESMTPS; Tue, 10 Oct 2023 08:00:01 +0100 (BST)\n"
        f"From: Health Equity Network <newsletter@{domain}>\n"
        f"To: {member.email}\n"
        f"Subject: Health Equity Network: October 2023\n"
        f"Date: Tue, 10 Oct 2023 08:00:00 +0100\n"
        f"Message-ID: {member.message_id}\n"
        f"List-Unsubscribe: <https://news.{domain}/unsubscribe/{member.token}>\n"
        f"List-Unsubscribe-Post: List-Unsubscribe=One-Click\n"
        f"MIME-Version: 1.0\n"
        f'Content-Type: multipart/alternative; boundary="alt"\n'
    )


def write_maildir(maildir: Path, people: list[Member], domain: str, seed: int) -> Counter[str]:
    """One report a member, of a kind drawn from MIX; returns how many of each."""
    rng = random.Random(seed)
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    kinds, weights = zip(*MIX, strict=True)
    drawn: Counter[str] = Counter()
    for number, member in enumerate(people):
        kind = rng.choices(kinds, weights)[0]
        drawn[kind] += 1
        raw = qmail(member, domain, number) if kind == "qmail" else dsn(member, domain, kind, number)
        (maildir / "new" / f"1696924800.M{number}P1.bench").write_bytes(raw)
    return drawn


def timed(files: list[Path], handle: Callable[[bytes], object]) -> float:
    """Seconds to read every file and hand its bytes to `handle`."""
    started = time.perf_counter()
    for path in files:
        handle(path.read_bytes())
    return time.perf_counter() - started


def check(settings: object, people: list[Member], drawn: Counter[str], tally: object) -> list[str]:
    """What is wrong with the outcome (empty: nothing): all processed, hard ones suppressed, nobody else."""
    from sqlalchemy import func, select

    from newsletter.audience.store import Store
    from newsletter.db.models import Subscriber
    from newsletter.db.rules import mailable

    problems = []
    if getattr(tally, "processed", 0) != len(people):
        problems.append(f"processed {tally} instead of all {len(people):,}")
    store = Store.open(settings)  # type: ignore[arg-type]
    try:
        with store.session() as session:
            mailable_count = session.scalar(select(func.count()).select_from(Subscriber).where(mailable()))
    finally:
        store.close()
    expected = len(people) - drawn["hard"] - drawn["qmail"]
    if mailable_count != expected:
        problems.append(f"{mailable_count:,} members still mailable, expected {expected:,}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=10_000, help="how many reports (one a member)")
    parser.add_argument("--seed", type=int, default=2023)
    args = parser.parse_args(argv)
    if args.reports < 1:
        parser.error("--reports must be at least 1")

    from newsletter.bounces.classify import classify
    from newsletter.bounces.intake import Intake, looks_like_report
    from newsletter.bounces.mailbox import read_maildir
    from newsletter.delivery.message import sender_domain

    with tempfile.TemporaryDirectory(prefix="newsletter-bench-bounces-") as temporary:
        directory = Path(temporary)
        started = time.perf_counter()
        settings, people = prepare(directory, args.reports)
        domain = sender_domain(settings)  # type: ignore[arg-type]
        maildir = directory / "Maildir"
        drawn = write_maildir(maildir, people, domain, args.seed)
        files = sorted((maildir / "new").iterdir())
        size = sum(path.stat().st_size for path in files) / len(files)
        print(f"{len(files):,} reports ({', '.join(f'{k} {v:,}' for k, v in sorted(drawn.items()))}),")
        print(
            f"  {size / 1024:.1f} KB on average, for {len(people):,} members (setup {time.perf_counter() - started:.1f} s)"
        )

        modern = BytesParser(policy=email.policy.default).parsebytes
        reference_before = timed(files, email.message_from_bytes)
        modern_before = timed(files, modern)
        classify_only = timed(files, lambda raw: classify(raw, domain))

        from newsletter.audience.store import Store

        store = Store.open(settings)  # type: ignore[arg-type]
        try:
            intake = Intake(store, settings)  # type: ignore[arg-type]
            started = time.perf_counter()
            tally = read_maildir(
                maildir, intake.process_many, lambda raw: looks_like_report(raw, domain), print
            )
            pipeline = time.perf_counter() - started
        finally:
            store.close()
        moved = sorted(path for path in maildir.rglob("*.bench") if path.is_file())
        reference_after = timed(moved, email.message_from_bytes)
        modern_after = timed(moved, modern)

        reference = (reference_before + reference_after) / 2
        modern_mean = (modern_before + modern_after) / 2
        count = len(files)
        print(f"{'measure':<44}{'msg/s':>10}{'us/msg':>10}")
        for name, seconds in (
            ("email.message_from_bytes (reference, before)", reference_before),
            ("email.message_from_bytes (reference, after)", reference_after),
            ("BytesParser(policy=default) (mean)", modern_mean),
            ("classify alone (no database)", classify_only),
            ("bounces read --maildir (classify, record, move)", pipeline),
        ):
            print(f"{name:<44}{count / seconds:>10,.0f}{seconds / count * 1e6:>10,.0f}")
        ratio = reference / pipeline
        print(f"tally: {tally.summary()}")
        verdict = "met" if ratio >= RATIO_TARGET else "NOT met"
        print(f"ratio intake / email.message_from_bytes: {ratio:.2f} (target >= {RATIO_TARGET}: {verdict})")
        print(f"ratio intake / BytesParser(policy=default): {modern_mean / pipeline:.2f}")
        problems = check(settings, people, drawn, tally)
    for problem in problems:
        print(f"WRONG: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
