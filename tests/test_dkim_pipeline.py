"""Every email a network sends is DKIM-signed once keys are set: test copies and members' messages
through the installed command, and the subscriber pages' notices; each verified by dkimpy and by Perl's
Mail::DKIM against a loopback DNS server, and a key that is missing or too weak stops before sending."""

from __future__ import annotations

import email
import shutil
from email.utils import parseaddr
from pathlib import Path

import pytest

from dkim_support import dkimpy_verdicts, ed25519_key_file, mail_dkim_verdicts, perl_has_ed25519, rsa_key_file
from newsletter.delivery.dkim import DkimKey, signer_for
from newsletter.delivery.outbound import signed_data
from newsletter.delivery.transport import wire_data
from newsletter.settings import Settings
from newsletter.testing.dns import LoopbackDNS
from newsletter.web.mail import Mailer
from user_support import Background, free_port, init_project, newsletter, uncomment

ROOT = Path(__file__).resolve().parents[1]
SLUG = "2023-10"
MEMBERS = (
    "email,name,lists\n"
    "ana@example.org,Ana Łukasiewicz-Ó Súilleabháin,newsletter\n"
    "bea@example.net,Bea Jones,newsletter\n"
)


def _records(domain: str, keys: dict[str, Path]) -> dict[str, list[str]]:
    return {
        f"{selector}._domainkey.{domain}": [DkimKey.load(path).dns_record()]
        for selector, path in keys.items()
    }


def _signed_headers(raw: bytes) -> list[str]:
    """The h= tag of each DKIM-Signature, lower-cased names."""
    message = email.message_from_bytes(raw)
    tags = []
    for value in message.get_all("DKIM-Signature", []):
        fields = dict(
            part.strip().split("=", 1) for part in "".join(str(value).split()).split(";") if "=" in part
        )
        tags.append(fields["h"].lower().split(":"))
    return tags


@pytest.mark.slow
def test_a_network_with_keys_signs_its_test_copy_and_every_members_message(tmp_path):
    folder = init_project(tmp_path)
    (folder / "dkim").mkdir()
    rsa_key_file(folder / "dkim" / "nl2026.private.pem")
    ed25519_key_file(folder / "dkim" / "nl2026-ed25519.private.pem")
    port = free_port()
    uncomment(
        folder / "newsletter.toml",
        smtp_url=f"smtp://127.0.0.1:{port}",
        dkim_selector="nl2026",
        dkim_private_key="dkim/nl2026.private.pem",
        dkim_ed25519_key="dkim/nl2026-ed25519.private.pem",
    )
    shutil.copytree(ROOT / "issues" / SLUG, folder / "issues" / SLUG)
    (folder / "subscribers" / "members.csv").write_text(MEMBERS, encoding="utf-8")
    newsletter(folder, "subscribers", "import", "subscribers/members.csv", "--list", "newsletter")

    sink = Background(folder, "sink", "--port", str(port), port=port)
    try:
        newsletter(folder, "send", SLUG, "--test", "editor@example.org")
        newsletter(folder, "send", SLUG, "--to", "everyone", "--yes")
        newsletter(folder, "worker", "--once")
    finally:
        sink.stop()

    messages = [path.read_bytes() for path in sorted((folder / "sink").rglob("*")) if path.is_file()]
    assert len(messages) == 3  # the test copy and both members
    domain = parseaddr(email.message_from_bytes(messages[0])["From"])[1].rpartition("@")[2]
    keys = {
        "nl2026": folder / "dkim" / "nl2026.private.pem",
        "nl2026-ed25519": folder / "dkim" / "nl2026-ed25519.private.pem",
    }
    with LoopbackDNS(_records(domain, keys)) as dns:
        for raw in messages:
            assert [(v.algorithm, v.passed) for v in dkimpy_verdicts(raw, dns)] == [
                ("rsa-sha256", True),
                ("ed25519-sha256", True),
            ]
            perl = mail_dkim_verdicts(raw, dns)
            assert perl[0].passed, perl[0].detail
            if perl_has_ed25519():
                assert perl[1].passed, perl[1].detail
            for signed in _signed_headers(raw):
                assert {"list-unsubscribe", "list-unsubscribe-post", "from", "to", "subject"} <= set(signed)
                assert signed.count("from") == 2  # a second From added later breaks it
            # A changed one-click header fails both verifiers.
            tampered = raw.replace(
                b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: No"
            )
            assert tampered != raw
            assert not any(v.passed for v in dkimpy_verdicts(tampered, dns))
            assert not mail_dkim_verdicts(tampered, dns)[0].passed


def test_a_weak_or_missing_key_stops_sending_with_one_clear_message(tmp_path):
    folder = init_project(tmp_path)
    (folder / "dkim").mkdir()
    rsa_key_file(folder / "dkim" / "old.pem", bits=1024)
    uncomment(folder / "newsletter.toml", dkim_selector="old", dkim_private_key="dkim/old.pem")
    shutil.copytree(ROOT / "issues" / SLUG, folder / "issues" / SLUG)

    weak = newsletter(folder, "send", SLUG, "--test", "editor@example.org", ok=False)
    assert weak.returncode != 0
    assert "dkim/old.pem" in weak.stderr and "1024-bit" in weak.stderr

    (folder / "dkim" / "old.pem").unlink()
    missing = newsletter(folder, "worker", "--once", ok=False)
    assert missing.returncode != 0
    assert "dkim/old.pem" in missing.stderr


def test_the_pages_notices_are_signed_too(tmp_path):
    key = rsa_key_file(tmp_path / "nl.pem")
    settings = Settings(dkim_selector="nl", dkim_private_key=str(key))
    mailer = Mailer(settings, ROOT / "templates" / "web")
    try:
        raw = mailer.build("confirm", "jo@example.org", "https://news.example.org/confirm/abc")
    finally:
        mailer.close()
    domain = parseaddr(settings.from_address)[1].rpartition("@")[2]
    with LoopbackDNS(_records(domain, {"nl": key})) as dns:
        assert [(v.algorithm, v.passed) for v in dkimpy_verdicts(raw, dns)] == [("rsa-sha256", True)]
        assert mail_dkim_verdicts(raw, dns)[0].passed


def test_a_message_with_dot_leading_lines_is_signed_as_the_receiver_reads_it(tmp_path):
    """SMTP doubles a line's leading dot on the way and the receiver takes it off again: the signature
    is made over the message as written, so it verifies after the round trip."""
    key = rsa_key_file(tmp_path / "nl.pem")
    signer = signer_for(Settings(dkim_selector="nl", dkim_private_key=str(key)))
    assert signer is not None
    message = (
        b"From: News <news@example.org>\r\nTo: jo@example.org\r\nSubject: Dots\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\n"
        b".a line that starts with a dot\r\n..and two\r\nplain\r\n.\r\n"
    )
    data = signed_data(signer, wire_data(message))
    received = data[: -len(b".\r\n")].replace(b"\r\n..", b"\r\n.")  # what the receiving server stores
    assert received.endswith(message)
    with LoopbackDNS(_records(signer.domain, {"nl": key})) as dns:
        assert [(v.algorithm, v.passed) for v in dkimpy_verdicts(received, dns)] == [("rsa-sha256", True)]
        assert mail_dkim_verdicts(received, dns)[0].passed
