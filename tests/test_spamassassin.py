"""What a spam filter makes of the sample issue as a member's mailbox receives it.

The sample goes through the whole pipeline (campaign, ledger, worker, SMTP) to `MaildirSink`, which stores it
as a final delivery server would (adding Return-Path and Delivered-To), and Debian's SpamAssassin reads the
stored file with its local rules only (`-L`: no DNS or network tests). scripts/test installs SpamAssassin.
"""

from __future__ import annotations

import email
import email.policy
import html
import os
import re
import subprocess
from pathlib import Path

import pytest

from delivery_support import SAMPLE_SLUG, delivery_settings, member_row, open_sending, write_members
from newsletter.sink import MaildirSink

SPAMASSASSIN = Path("/usr/bin/spamassassin")
MEMBER = "ann.example@example.org"


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample issue sent to one member who gets everything, as stored in the sink's Maildir."""
    folder = tmp_path_factory.mktemp("spamassassin")
    members = write_members(folder / "members.csv", [member_row(MEMBER, name="Ann Example")])
    with MaildirSink(folder / "maildir", port=0) as sink:
        settings = delivery_settings(f"sqlite:///{folder / 'newsletter.sqlite3'}", sink.port)
        with open_sending(settings, members) as sending:
            _, size = sending.send(SAMPLE_SLUG, ["everyone"])
            assert size == 1
            stats = sending.work(once=True, lease_seconds=30, retry_base_seconds=30)
            assert stats.sent == 1, stats
    [stored] = (folder / "maildir" / "new").iterdir()  # the file as the sink wrote it, not re-serialised
    return stored


def spamassassin(message: Path, home: Path) -> tuple[float, list[str], str]:
    """SpamAssassin's local tests on `message`: the score, the rules that fired, and its report.

    HOME points into the test's folder, and -x keeps it from writing user preferences there.
    """
    assert SPAMASSASSIN.exists(), "SpamAssassin is not installed: run scripts/test, which installs it"
    result = subprocess.run(
        [str(SPAMASSASSIN), "--local", "--test-mode", "--nocreate-prefs"],
        input=message.read_bytes(),
        capture_output=True,
        env={**os.environ, "HOME": str(home)},
        timeout=120,
        check=True,
    )
    checked = email.message_from_bytes(result.stdout, policy=email.policy.default)
    status = " ".join(str(checked["X-Spam-Status"]).split())
    found = re.search(r"\bscore=(-?\d+(?:\.\d+)?)\b.*?\btests=(\S*)", status)
    assert found, f"no score in SpamAssassin's answer: {status!r}\n{result.stderr.decode(errors='replace')}"
    report = result.stdout.decode(errors="replace")
    table = report[report.find("Content analysis details") :].split("\n\n")[0]
    return float(found.group(1)), [rule for rule in found.group(2).split(",") if rule], table


def test_the_delivered_sample_scores_nothing_on_spamassassins_local_rules(delivered, tmp_path):
    score, rules, table = spamassassin(delivered, tmp_path)
    assert score <= 0.0, f"SpamAssassin scored the sample {score}: {', '.join(rules)}\n{table}"
    assert "HTML_FONT_LOW_CONTRAST" not in rules
    assert not [rule for rule in rules if rule.startswith("FONT_INVIS")], rules


def test_the_preheader_is_still_the_first_text_of_the_delivered_html(delivered, sample):
    """Inboxes show the body's first text after the subject: that must still be the preheader."""
    message = email.message_from_bytes(delivered.read_bytes(), policy=email.policy.default)
    part = message.get_body(("html",))
    assert part is not None
    body = part.get_content().split("<body", 1)[1].split(">", 1)[1]
    first_text = re.sub(r"<!--.*?-->|<[^>]+>", "\n", body, flags=re.DOTALL).strip().split("\n")[0]
    assert html.unescape(first_text) == sample.issue.preheader
