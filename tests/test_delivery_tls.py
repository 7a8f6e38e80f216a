"""Sending through a relay that speaks TLS, as hosted relays require: STARTTLS (`smtp://`, the relay
insists on it) and TLS from the first byte (`smtps://`). The worker drives its connections without
threads, so its reads and writes on a TLS socket that is not blocking are what is tested here; the
relay's certificate is checked against a certificate authority the test makes (`SSL_CERT_FILE`)."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cert_support import self_signed
from delivery_support import SAMPLE_SLUG, assert_each_once, audience_emails, delivery_settings, open_sending
from newsletter.testing.smtp import RecordingSMTPServer


def relay_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the CA file the client trusts) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed(
        key,
        "newsletter test relay",
        days=1,
        extensions=(
            (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False),
            (x509.BasicConstraints(ca=True, path_length=None), True),
        ),
    )
    cert_path, key_path = folder / "relay.pem", folder / "relay.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize("scheme", ["smtp", "smtps"])
def test_the_worker_sends_each_member_once_through_a_tls_relay(database_url, tmp_path, monkeypatch, scheme):
    cert_path, key_path = relay_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))  # the client trusts the test's relay, and only it
    with RecordingSMTPServer(tls=context, implicit_tls=scheme == "smtps") as server:
        settings = delivery_settings(database_url, f"{scheme}://127.0.0.1:{server.port}", concurrency=3)
        with open_sending(settings) as sending:
            campaign, size = sending.send(SAMPLE_SLUG, ["housing"])
            stats = sending.work(once=True, lease_seconds=30, retry_base_seconds=0.5)
            assert stats.sent == size and not stats.relay_unavailable
            assert_each_once(server.messages, audience_emails(sending, ["housing"]))
            assert sending.status(campaign.id).counts == {"sent": size}


def test_a_relay_whose_certificate_is_not_trusted_is_the_relays_trouble(database_url, tmp_path):
    """Without the test's CA, the certificate check fails: nobody is charged an attempt."""
    cert_path, key_path = relay_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    with RecordingSMTPServer(tls=context) as server:
        settings = delivery_settings(database_url, server.port)
        with open_sending(settings) as sending:
            campaign, size = sending.send(SAMPLE_SLUG, ["housing"])
            stats = sending.work(once=True, lease_seconds=30, retry_base_seconds=0.5, once_wait_seconds=0.5)
            assert stats.sent == 0 and stats.relay_unavailable >= size
            assert not server.messages
            assert {row for row in sending.status(campaign.id).counts} <= {"queued"}
