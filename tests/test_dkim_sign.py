"""DKIM signing: what receivers check, with two independent verifiers and real DNS answers on loopback.

Every signature is checked by dkimpy and by Perl's Mail::DKIM, each looking the public key up on a
`LoopbackDNS` server the test starts, never in the real DNS. The canonicalisation written for speed is
compared byte for byte with dkimpy's.
"""

from __future__ import annotations

import base64
import dataclasses
import re

import dns.resolver
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from dkim.canonicalization import Relaxed

from dkim_support import (
    dkimpy_verdicts,
    ed25519_key_file,
    mail_dkim_verdicts,
    perl_has_ed25519,
    rsa_key_file,
    write_key,
)
from newsletter.delivery.dkim import DkimKey, Signer, canonical_body, canonical_header
from newsletter.delivery.message import PreparedMessage, Recipient, message_id_for
from newsletter.delivery.transport import written_data
from newsletter.errors import UserError
from newsletter.testing.dns import LoopbackDNS
from newsletter.testing.ports import LOOPBACK
from newsletter.tokens import Tokens

DOMAIN = "health-equity-network.example.org"
SELECTOR = "nl2024"
DATE = "Fri, 20 Oct 2023 09:00:00 +0000"
MEMBER = Recipient(
    4711, "zoe@example.org", "Zoë Ångström-Müller", text_only=False, link_key="0123456789ABCDEF" * 2
)
LONG_LINE = "A long line " + "without a break " * 70
DOT_LINE = ".A line that starts with a dot, as SMTP would have to stuff."


# ---------------------------------------------------------------------------------------------------------
# Canonicalisation, byte for byte against dkimpy
# ---------------------------------------------------------------------------------------------------------

HEADERS = [
    (b"Subject", b" Hello world\r\n"),
    (b"Subject", b" Folded\r\n  across\r\n\tthree lines\r\n"),
    (b"SUBJECT ", b"\t tabs\t\tand   runs  of spaces \t \r\n"),
    (b"Subject", b"   trailing whitespace   \t\r\n"),
    (b"To", b" =?utf-8?b?Wm/DqyDDhW5nc3Ryw7Zt?=\r\n <zoe@example.org>\r\n"),
    (b"List-Unsubscribe-Post", b" List-Unsubscribe=One-Click\r\n"),
    (b"X-Long", b" " + b"x" * 990 + b"\r\n"),
    (b"X-Empty", b"\r\n"),
    (b"X-Empty-Folded", b" \r\n \r\n"),
]

BODIES = [
    b"Hello\r\n",
    b"",
    b"\r\n",
    b"\r\n\r\n\r\n",
    b"no final line break",
    b"text\r\n\r\n\r\n",
    b"trailing spaces   \r\nand tabs\t\t\r\n \t \r\n",
    b"runs  of\t\tspaces \t and tabs\r\n",
    b"  leading spaces kept as one\r\n",
    b".a dot-leading line\r\n..two dots\r\n.\r\n",
    b"x" * 998 + b"\r\n" + b"y" * 997 + b" \r\n",
    "Zoë, non-ASCII text in UTF-8\r\n".encode(),
    b"=C3=85ngstr=C3=B6m quoted-printable with a soft break=\r\nhere\r\n",
    b"\r\n\r\nempty lines first, kept\r\n\r\n",
    b"lines\r\n\r\nin between\r\n\r\n\r\nkept\r\n",
]


@pytest.mark.parametrize(("name", "value"), HEADERS)
def test_header_canonicalisation_equals_dkimpys(name: bytes, value: bytes) -> None:
    [(their_name, their_value)] = Relaxed.canonicalize_headers([(name, value)])
    assert canonical_header(name, value) == their_name + b":" + their_value


@pytest.mark.parametrize("body", BODIES)
def test_body_canonicalisation_equals_dkimpys(body: bytes) -> None:
    assert canonical_body(body) == Relaxed.canonicalize_body(body)


# ---------------------------------------------------------------------------------------------------------
# Signed messages, as the pipeline builds them
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signer(tmp_path_factory) -> Signer:
    folder = tmp_path_factory.mktemp("keys")
    rsa_key = DkimKey.load(rsa_key_file(folder / "rsa.pem"))
    ed25519_key = DkimKey.load(ed25519_key_file(folder / "ed25519.pem"))
    return Signer(DOMAIN, SELECTOR, rsa_key, ed25519_key)


@pytest.fixture(scope="module")
def dns_server(signer):
    with LoopbackDNS(signer.dns_records()) as server:
        yield server


@pytest.fixture(scope="module")
def message(sample, settings) -> bytes:
    """The sample issue as one member gets it: RFC 2047 To, the List-* headers, QP text and HTML parts,
    plus a long line and a dot-leading line in the text."""
    edition = dataclasses.replace(sample.edition, text=f"{sample.edition.text}\n{LONG_LINE}\n{DOT_LINE}\n")
    prepared = PreparedMessage.build(edition, settings, text_only=False)
    return prepared.render(MEMBER, message_id_for(9, MEMBER.subscriber_id, DOMAIN), Tokens("k" * 32), DATE)


@pytest.fixture(scope="module")
def signed(signer, message) -> bytes:
    return signer.sign(message)


def passes(verdicts) -> list[tuple[str, bool]]:
    return [(verdict.algorithm, verdict.passed) for verdict in verdicts]


def signature_fields(signed: bytes) -> list[bytes]:
    head = signed.split(b"\r\n\r\n", 1)[0]
    return re.findall(rb"^DKIM-Signature:.*?(?=\r\n(?![ \t]))", head, re.MULTILINE | re.DOTALL)


def test_the_message_is_realistic(message) -> None:
    head, _, body = message.partition(b"\r\n\r\n")
    for header in (b"From:", b"To: =?utf-8?b?", b"Subject:", b"Date:", b"Message-ID:", b"Reply-To:"):
        assert header in head
    for header in (b"List-Id:", b"List-Unsubscribe: <", b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"):
        assert header in head
    assert b"multipart/alternative" in head
    assert b"\r\n.A line that starts with a dot" in body
    assert b"text/html" in body and b"quoted-printable" in body
    assert len(message) > 10_000


def test_both_verifiers_accept_both_signatures(signed, dns_server) -> None:
    assert passes(dkimpy_verdicts(signed, dns_server)) == [("rsa-sha256", True), ("ed25519-sha256", True)]
    perl = mail_dkim_verdicts(signed, dns_server)
    assert [verdict.algorithm for verdict in perl] == ["rsa-sha256", "ed25519-sha256"]
    assert perl[0].passed, perl[0].detail
    if perl_has_ed25519():
        assert perl[1].passed, perl[1].detail
    else:  # this Mail::DKIM has no Ed25519 (Debian 12's has none); dkimpy checked it above
        assert "unsupported algorithm" in perl[1].detail


def test_signatures_cover_the_unsubscribe_headers_and_from_twice(signed) -> None:
    fields = signature_fields(signed)
    assert len(fields) == 2
    for field in fields:
        tags = dict(
            tag.split("=", 1) for tag in re.sub(r"\s+", "", field.decode().split(":", 1)[1]).split(";") if tag
        )
        assert tags["c"] == "relaxed/relaxed" and tags["d"] == DOMAIN and int(tags["t"]) > 0
        assert tags["h"].split(":") == [
            "from", "from", "to", "subject", "date", "message-id", "reply-to", "list-id",
            "list-unsubscribe", "list-unsubscribe-post", "mime-version", "content-type",
        ]  # fmt: skip
    assert b"a=rsa-sha256;" in fields[0] and b"a=ed25519-sha256;" in fields[1]
    assert b"s=nl2024-ed25519;" in fields[1]


def test_signature_lines_stay_under_78_characters(signed) -> None:
    for field in signature_fields(signed):
        assert max(len(line) for line in field.split(b"\r\n")) < 78


def _replace_header(message: bytes, name: bytes, new_line: bytes) -> bytes:
    changed, count = re.subn(rb"^" + name + rb":[^\r]*\r\n", new_line + b"\r\n", message, count=1, flags=re.M)
    assert count == 1
    return changed


TAMPERING = {
    "List-Unsubscribe-Post removed": lambda m: _replace_header(
        m, b"List-Unsubscribe-Post", b"X-Removed: yes"
    ),
    "List-Unsubscribe-Post changed": lambda m: _replace_header(
        m, b"List-Unsubscribe-Post", b"List-Unsubscribe-Post: List-Unsubscribe=Two-Click"
    ),
    "List-Unsubscribe changed": lambda m: _replace_header(
        m, b"List-Unsubscribe", b"List-Unsubscribe: <https://evil.example/unsubscribe/x>"
    ),
    "body changed": lambda m: m.replace(b"\r\n.A line that starts", b"\r\n.B line that starts", 1),
    # At the top, where a verifier without the oversigned From would still find the signed one last.
    "second From added": lambda m: b"From: Mallory <mallory@evil.example>\r\n" + m,
}


@pytest.mark.parametrize("tamper", TAMPERING.values(), ids=TAMPERING.keys())
def test_a_changed_message_fails_in_both_verifiers(signed, dns_server, tamper) -> None:
    changed = tamper(signed)
    assert changed != signed
    assert passes(dkimpy_verdicts(changed, dns_server)) == [("rsa-sha256", False), ("ed25519-sha256", False)]
    perl = mail_dkim_verdicts(changed, dns_server)
    assert [verdict.algorithm for verdict in perl] == ["rsa-sha256", "ed25519-sha256"]
    assert [verdict.passed for verdict in perl] == [False, False]
    assert perl[0].detail.startswith("fail"), perl[0].detail


def test_messages_with_awkward_headers_and_bodies_verify(signer, dns_server) -> None:
    awkward = (
        b"From: =?utf-8?b?WsO2ZQ==?= <news@health-equity-network.example.org>\r\n"
        b"To:   \t Someone\r\n   <someone@example.org>   \r\n"
        b"Subject: Runs   of\t\tspaces and a fold\r\n\tright here \r\n"
        b"List-Unsubscribe: <https://news.example/u/1>\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        b"\r\n"
        b"trailing spaces   \r\n.dot\r\n" + b"z" * 998 + b"\r\n\r\n\r\n"
    )
    for message in (awkward, awkward.split(b"\r\n\r\n")[0] + b"\r\n\r\n"):  # and with an empty body
        signed = signer.sign(message)
        assert signed.endswith(message)
        assert passes(dkimpy_verdicts(signed, dns_server)) == [("rsa-sha256", True), ("ed25519-sha256", True)]
        assert mail_dkim_verdicts(signed, dns_server)[0].passed


def test_an_rsa_only_signer_signs_once(tmp_path, dns_server, message) -> None:
    signer = Signer(DOMAIN, "rsaonly", DkimKey.load(rsa_key_file(tmp_path / "rsa.pem")))
    dns_server.records.update(signer.dns_records())
    signed = signer.sign(message)
    assert passes(dkimpy_verdicts(signed, dns_server)) == [("rsa-sha256", True)]
    assert passes(mail_dkim_verdicts(signed, dns_server)) == [("rsa-sha256", True)]


# ---------------------------------------------------------------------------------------------------------
# Templates: a variant's static parts canonicalised once, the same signature as signing the whole message
# ---------------------------------------------------------------------------------------------------------

AWKWARD_MEMBERS = [
    MEMBER,
    Recipient(1, "plain@example.org", "", text_only=False, link_key="A" * 32),
    Recipient(
        2, "o.brien@example.org", 'Dr. Siobhán "Shiv" O\'Brien, MBE', text_only=False, link_key="B" * 32
    ),
    Recipient(3, "tabs@example.org", "  Spaced\t\tout   name  ", text_only=False, link_key="C" * 32),
    Recipient(4, "zoe@bücher.example", "Zoë " + "Longname " * 30, text_only=False, link_key="D" * 32),
    Recipient(5, "dots@example.org", "...leading dots.", text_only=False, link_key="E" * 32),
]


@pytest.fixture(scope="module")
def prepared(sample, settings) -> PreparedMessage:
    edition = dataclasses.replace(sample.edition, text=f"{sample.edition.text}\n{LONG_LINE}\n{DOT_LINE}\n")
    return PreparedMessage.build(edition, settings, text_only=False)


def _whole_message_not_signed(signer: Signer, monkeypatch) -> None:
    """From here on, signing the whole message (the template's fallback) fails the test."""

    def whole(*args):
        raise AssertionError("signed the whole message, not from the template")

    monkeypatch.setattr(signer, "headers", whole)


def test_a_template_signs_each_member_as_the_whole_message_would(
    signer, prepared, dns_server, monkeypatch
) -> None:
    template = signer.template(*prepared.template)
    assert template is not None  # the pipeline's variants always allow it
    tokens = Tokens("k" * 32)
    messages = []
    for member in AWKWARD_MEMBERS:
        message_id = message_id_for(9, member.subscriber_id, DOMAIN)
        written = prepared.render(member, message_id, tokens, DATE)
        messages.append((prepared.pieces(member, message_id, tokens, DATE)[1], written, member))
    expected = [signer.headers(written, 1_700_000_000) for _, written, _ in messages]
    _whole_message_not_signed(signer, monkeypatch)
    for (pieces, _, member), whole in zip(messages, expected, strict=True):
        assert template.headers(pieces, 1_700_000_000) == whole, member
    signed = template.headers(pieces) + written
    monkeypatch.undo()
    assert passes(dkimpy_verdicts(signed, dns_server)) == [("rsa-sha256", True), ("ed25519-sha256", True)]
    assert mail_dkim_verdicts(signed, dns_server)[0].passed  # Debian 12's Mail::DKIM knows no Ed25519


HAND_MADE = [
    b"From: news@health-equity-network.example.org\r\nTo: ",
    b"",
    b"\r\nSubject: Hello\r\n\r\nBody  with   runs\r\n..dot line\r\nLink:=\r\n",
    b"",
    b"=\r\nend\r\n\r\n\r\n.\r\n",
]


@pytest.mark.parametrize(
    ("values", "from_template"),
    [
        ({1: b"a@example.org", 3: b"https://x.example/u/1"}, True),
        ({1: b"Name\r\n <a@example.org>", 3: b"https://x.example/u/1"}, True),
        ({1: b"a@example.org", 3: b"https://x.example/u/a b"}, False),  # a space
        ({1: b"a@example.org", 3: b"https://x.example/=\r\n..dotted"}, False),  # a stuffed dot
        ({1: b"a@example.org\r\n\r\nX: moved", 3: b"https://x.example/u/1"}, False),  # the header's end
    ],
)
def test_a_template_signs_the_whole_message_where_a_piece_is_not_safe_alone(
    signer, values, from_template, monkeypatch
) -> None:
    template = signer.template(HAND_MADE, values.keys())
    assert template is not None
    pieces = [values.get(index, part) for index, part in enumerate(HAND_MADE)]
    whole = signer.headers(written_data(b"".join(pieces)), 1_700_000_000)
    if from_template:
        _whole_message_not_signed(signer, monkeypatch)
    assert template.headers(pieces, 1_700_000_000) == whole


@pytest.mark.parametrize(
    "parts",
    [
        [b"From: a@b\r\n\r\nHello ", b"", b"world\r\n.\r\n"],  # a space before a personal piece
        [b"From: a@b\r\n\r\nHello", b"", b"\t world\r\n.\r\n"],  # a tab after one
        [b"From: a@b\r\n\r\nHello\r\n", b"", b"\r\n\r\n.\r\n"],  # ends in empty lines after one
        [b"From: a@b\r\n\r\nHello\r\n", b""],  # ends with a personal piece
        [b"From: a@b\r\nTo: ", b"", b"\r\n.\r\n"],  # no static header/body separator
    ],
)
def test_a_template_is_refused_where_its_layout_does_not_allow_one(signer, parts) -> None:
    personal = [index for index, part in enumerate(parts) if not part]
    assert signer.template(parts, personal) is None


# ---------------------------------------------------------------------------------------------------------
# DNS records and the loopback server
# ---------------------------------------------------------------------------------------------------------


def test_dns_records_publish_the_keys(signer) -> None:
    records = signer.dns_records()
    rsa_record, ed25519_record = (
        records[f"{SELECTOR}._domainkey.{DOMAIN}"],
        records[f"{SELECTOR}-ed25519._domainkey.{DOMAIN}"],
    )
    assert rsa_record[0].startswith("v=DKIM1; k=rsa; p=MII")
    assert ed25519_record[0].startswith("v=DKIM1; k=ed25519; p=")
    assert len(base64.b64decode(ed25519_record[0].split("p=")[1])) == 32  # the raw key (RFC 8463)


def test_the_loopback_server_splits_long_records_into_255_byte_strings(dns_server, signer) -> None:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [LOOPBACK]
    resolver.port = dns_server.port
    name = f"{SELECTOR}._domainkey.{DOMAIN}"
    for tcp in (False, True):
        strings = resolver.resolve(name, "TXT", tcp=tcp, lifetime=5)[0].strings
        assert len(strings) > 1 and all(len(string) <= 255 for string in strings)
        assert b"".join(strings).decode() == signer.dns_records()[name][0]
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve(f"other._domainkey.{DOMAIN}", "TXT", lifetime=5)


# ---------------------------------------------------------------------------------------------------------
# Key files: one clear error naming the file
# ---------------------------------------------------------------------------------------------------------


def _key_error(path) -> str:
    with pytest.raises(UserError) as caught:
        DkimKey.load(path)
    message = str(caught.value)
    assert str(path) in message or path.name in message
    assert "\n" not in message
    return message


def test_an_rsa_key_under_2048_bits_is_refused(tmp_path) -> None:
    assert "1024-bit RSA key" in _key_error(rsa_key_file(tmp_path / "small.pem", bits=1024))


def test_a_missing_key_file_is_named(tmp_path) -> None:
    assert "does not exist" in _key_error(tmp_path / "missing.pem")


def test_a_file_that_is_not_a_key_is_named(tmp_path) -> None:
    path = tmp_path / "notakey.pem"
    path.write_text("v=DKIM1; k=rsa; p=MIIBIjAN\n")
    assert "does not hold a PEM private key" in _key_error(path)


def test_a_key_of_another_type_is_named(tmp_path) -> None:
    path = write_key(tmp_path / "ec.pem", ec.generate_private_key(ec.SECP256R1()))  # type: ignore[arg-type]
    assert "RSA (2048 bits or more) or Ed25519" in _key_error(path)


def test_keys_in_the_wrong_place_are_named(tmp_path) -> None:
    rsa_key = DkimKey.load(rsa_key_file(tmp_path / "rsa.pem"))
    ed25519_key = DkimKey.load(ed25519_key_file(tmp_path / "ed.pem"))
    with pytest.raises(UserError, match=r"ed\.pem must hold an RSA key"):
        Signer(DOMAIN, SELECTOR, ed25519_key)
    with pytest.raises(UserError, match=r"rsa\.pem must hold an Ed25519 key"):
        Signer(DOMAIN, SELECTOR, rsa_key, rsa_key)
