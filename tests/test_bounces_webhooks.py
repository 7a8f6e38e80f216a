"""Provider webhooks on `newsletter serve`: Amazon SES (through SNS), Postmark, Mailgun and SendGrid.

Each provider's real proof is made here with real keys (`cryptography`: a self-signed certificate for
SNS, an ECDSA key for SendGrid, the HMAC for Mailgun, basic auth for Postmark), and the requests go to
the real app over a real database: a valid one suppresses or unsubscribes the member, a forged one
answers 403 and changes nothing.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from cert_support import self_signed
from newsletter.bounces.findings import Finding, Kind
from newsletter.bounces.history import Bounces, Event
from newsletter.bounces.webhooks import (
    BadSignature,
    Incoming,
    Mailgun,
    Postmark,
    SendGrid,
    Ses,
    kind_of,
)
from newsletter.settings import Settings
from newsletter.web import security
from user_support import Background, free_port, init_project, newsletter, uncomment
from web_support import WebSite, open_site

JO = "jo@example.org"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:newsletter-bounces"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"
MAILGUN_KEY = "key-mailgun-signing-0123456789abcdef"
POSTMARK = ("postmark", "a-long-random-postmark-password")


# --- Keys and signed requests, made the way each provider makes them ------------------------------


@dataclasses.dataclass
class SnsSigner:
    """A stand-in for AWS's SNS signing key, with its self-signed certificate on disk."""

    key: rsa.RSAPrivateKey
    cert_file: Path

    @classmethod
    def make(cls, folder: Path) -> SnsSigner:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = self_signed(key, "sns.amazonaws.com", days=30)
        cert_file = folder / "sns.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(key, cert_file)

    def sign(self, message: dict[str, Any], version: str = "2") -> dict[str, Any]:
        """The message as SNS posts it, signed over the canonical string SNS's documentation gives."""
        fields = (
            ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
            if message["Type"] == "Notification"
            else ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
        )
        canonical = "".join(f"{name}\n{message[name]}\n" for name in fields if name in message)
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(canonical.encode(), padding.PKCS1v15(), algorithm)
        return {
            **message,
            "SignatureVersion": version,
            "Signature": base64.b64encode(signature).decode(),
            "SigningCertURL": CERT_URL,
        }


def ses_notification(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(event),
        "Timestamp": "2026-12-06T12:00:00.000Z",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    }


def ses_bounce(
    address: str,
    bounce_type: str = "Permanent",
    status: str = "5.1.1",
    diagnostic: str = "",
    source: str = "",
) -> dict[str, Any]:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": address,
                    "action": "failed",
                    "status": status,
                    "diagnosticCode": diagnostic or f"smtp; 550 {status} user unknown",
                }
            ],
            "timestamp": "2026-12-06T11:59:58.000Z",
        },
        "mail": {
            "source": source or "newsletter@health-equity-network.example.org",
            "destination": [address],
            "commonHeaders": {"messageId": "<nl.3.abcdefghijklmnop.7@health-equity-network.example.org>"},
        },
    }


def mailgun_body(event: dict[str, Any], key: str = MAILGUN_KEY, timestamp: int | None = None) -> bytes:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    token = secrets.token_hex(25)
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps(
        {"signature": {"timestamp": stamp, "token": token, "signature": signature}, "event-data": event}
    ).encode()


def mailgun_failed(
    address: str,
    severity: str = "permanent",
    code: int = 550,
    message: str = "5.1.1 The email account that you tried to reach does not exist",
    sender: str = "newsletter@health-equity-network.example.org",
) -> dict[str, Any]:
    return {
        "event": "failed",
        "severity": severity,
        "reason": "bounce",
        "recipient": address,
        "timestamp": time.time(),
        "envelope": {"sender": sender},
        "message": {"headers": {"message-id": "nl.3.abcdefghijklmnop.7@health-equity-network.example.org"}},
        "delivery-status": {"code": code, "message": message, "description": "", "enhanced-code": ""},
    }


@dataclasses.dataclass
class SendGridSigner:
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def make(cls) -> SendGridSigner:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_key(self) -> str:
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def headers(self, body: bytes) -> dict[str, str]:
        stamp = str(int(time.time()))
        signature = self.key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            SendGrid.SIGNATURE: base64.b64encode(signature).decode(),
            SendGrid.TIMESTAMP: stamp,
        }


def postmark_auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# --- Through the app, over a real database ---------------------------------------------------------


@pytest.fixture(scope="module")
def sendgrid_signer() -> SendGridSigner:
    return SendGridSigner.make()


@pytest.fixture
def sns(tmp_path) -> SnsSigner:
    return SnsSigner.make(tmp_path)


@pytest.fixture
def site(database_url, sns, sendgrid_signer):
    yield from open_site(
        database_url,
        ses_signing_cert=str(sns.cert_file),
        ses_topic_arn=TOPIC,
        postmark_webhook_user=POSTMARK[0],
        postmark_webhook_password=POSTMARK[1],
        mailgun_signing_key=MAILGUN_KEY,
        sendgrid_public_key=sendgrid_signer.public_key,
    )


def post(
    site: WebSite,
    provider: str,
    body: bytes | dict[str, Any] | list[Any],
    headers: dict[str, str] | None = None,
):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return site.client.post(
        f"/webhooks/{provider}", data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )


def verp(site: WebSite, email: str) -> str:
    """The member's envelope sender, as delivery writes it: a provider that reports it names them."""
    member = site.member(email)
    assert member is not None
    return (
        f"bounces+{site.tokens.make('bounce', member.id, member.link_key)}@health-equity-network.example.org"
    )


def status_of(site: WebSite, email: str) -> str:
    member = site.member(email)
    assert member is not None
    return member.status.value


def test_ses_permanent_bounce_suppresses_the_member(site, sns):
    site.active_member(JO)
    event = ses_bounce(JO, source=verp(site, JO))
    response = post(site, "ses", sns.sign(ses_notification(event)))
    assert response.status_code == 200, response.text
    assert status_of(site, JO) == "bounced"


def test_ses_complaint_with_signature_version_1(site, sns):
    site.active_member(JO)
    event = {
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": JO}], "complaintFeedbackType": "abuse"},
        "mail": {"source": "newsletter@health-equity-network.example.org", "destination": [JO]},
    }
    response = post(site, "ses", sns.sign(ses_notification(event), version="1"))
    assert response.status_code == 200, response.text
    assert status_of(site, JO) == "complained"


def test_ses_forged_signature_changes_nothing(site, sns, tmp_path):
    site.active_member(JO)
    before = site.snapshot()
    (tmp_path / "forger").mkdir()
    forger = SnsSigner.make(tmp_path / "forger")
    forged = forger.sign(ses_notification(ses_bounce(JO)))
    assert post(site, "ses", forged).status_code == 403
    tampered = sns.sign(ses_notification(ses_bounce("someone.else@example.org")))
    tampered["Message"] = json.dumps(ses_bounce(JO))
    assert post(site, "ses", tampered).status_code == 403
    elsewhere = {
        **sns.sign(ses_notification(ses_bounce(JO))),
        "SigningCertURL": "https://attacker.example/cert.pem",
    }
    assert post(site, "ses", elsewhere).status_code == 403
    assert site.snapshot() == before
    assert status_of(site, JO) == "active"


def test_ses_notification_from_another_topic_is_refused(site, sns):
    site.active_member(JO)
    before = site.snapshot()
    other = {**ses_notification(ses_bounce(JO)), "TopicArn": "arn:aws:sns:eu-west-1:999999999999:not-ours"}
    assert post(site, "ses", sns.sign(other)).status_code == 403
    assert site.snapshot() == before


def sns_confirmation(kind: str = "SubscriptionConfirmation", topic: str = TOPIC) -> dict[str, Any]:
    """An SNS (un)subscription confirmation as SNS writes it: its link names the topic and a token."""
    token = hashlib.sha256(topic.encode()).hexdigest() * 4  # SNS's tokens are 256 hex digits
    action = "ConfirmSubscription" if kind == "SubscriptionConfirmation" else "Subscribe"
    return {
        "Type": kind,
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": token,
        "TopicArn": topic,
        "Message": f"You have chosen to subscribe to the topic {topic}. To confirm, visit the SubscribeURL.",
        "SubscribeURL": f"https://sns.eu-west-1.amazonaws.com/?Action={action}&TopicArn={topic}&Token={token}",
        "Timestamp": "2026-12-06T12:00:00.000Z",
    }


def for_review(site: WebSite) -> list[Event]:
    """What `newsletter bounces --review` lists."""
    return Bounces(site.store).recent(review=True)


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("SubscriptionConfirmation", "to confirm that Amazon SNS topic"),
        ("UnsubscribeConfirmation", "has stopped sending"),
    ],
)
def test_ses_confirmation_is_kept_for_review_with_its_link(site, sns, caplog, kind, says):
    site.active_member(JO)
    members = site.snapshot()["subscribers"]
    confirmation = sns_confirmation(kind)
    with caplog.at_level(logging.INFO):
        response = post(site, "ses", sns.sign(confirmation))
    assert response.status_code == 200, response.text
    (item,) = for_review(site)
    assert (item.kind, item.source) == ("unknown", "ses")
    assert item.diagnostic.startswith(f"Open {confirmation['SubscribeURL']} in a browser")
    assert says in item.diagnostic and TOPIC in item.diagnostic
    assert confirmation["SubscribeURL"] in caplog.text  # the server's log says it too
    assert Bounces(site.store).recent() == []  # not a bounce, and nobody's standing changed
    assert site.snapshot()["subscribers"] == members


def test_ses_confirmation_link_survives_the_diagnostic_limit(site, sns):
    topic = "arn:aws:sns:eu-west-1:123456789012:" + "n" * 256  # SNS's longest topic name
    confirmation = sns_confirmation(topic=topic)
    assert len(confirmation["SubscribeURL"]) > 600
    assert post(site, "ses", sns.sign(confirmation)).status_code == 200
    (item,) = for_review(site)
    assert confirmation["SubscribeURL"] in item.diagnostic


def test_ses_forged_confirmation_is_refused_and_records_nothing(site, sns, tmp_path):
    before = site.snapshot()
    (tmp_path / "forger").mkdir()
    forger = SnsSigner.make(tmp_path / "forger")
    assert post(site, "ses", forger.sign(sns_confirmation())).status_code == 403
    swapped = {**sns.sign(sns_confirmation()), "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?x"}
    assert post(site, "ses", swapped).status_code == 403
    unsubscribed = {**sns.sign(sns_confirmation("UnsubscribeConfirmation")), "TopicArn": "arn:x"}
    assert post(site, "ses", unsubscribed).status_code == 403
    assert for_review(site) == []
    assert site.snapshot() == before


def test_postmark_hard_bounce_with_basic_auth(site):
    site.active_member(JO)
    record = {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "TypeCode": 1,
        "Email": JO,
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist",
        "BouncedAt": "2026-12-06T16:33:54.9070259Z",
    }
    before = site.snapshot()
    assert post(site, "postmark", record, postmark_auth(POSTMARK[0], "wrong")).status_code == 403
    assert post(site, "postmark", record).status_code == 403
    assert site.snapshot() == before
    response = post(site, "postmark", record, postmark_auth(*POSTMARK))
    assert response.status_code == 200, response.text
    assert status_of(site, JO) == "bounced"


def test_mailgun_failed_permanent_suppresses_and_forged_changes_nothing(site):
    site.active_member(JO)
    before = site.snapshot()
    assert post(site, "mailgun", mailgun_body(mailgun_failed(JO), key="not-the-key")).status_code == 403
    stale = mailgun_body(mailgun_failed(JO), timestamp=int(time.time()) - 3600)
    assert post(site, "mailgun", stale).status_code == 403
    assert site.snapshot() == before
    body = mailgun_body(mailgun_failed(JO, sender=verp(site, JO)))
    assert post(site, "mailgun", body).status_code == 200
    assert status_of(site, JO) == "bounced"
    assert post(site, "mailgun", body).status_code == 403  # the same token again: a replay


def test_sendgrid_spamreport_unsubscribes_and_forged_changes_nothing(site, sendgrid_signer):
    site.active_member(JO)
    events = [{"email": JO, "timestamp": int(time.time()), "event": "spamreport", "sg_event_id": "x1"}]
    body = json.dumps(events).encode()
    before = site.snapshot()
    forged = SendGridSigner.make().headers(body)
    assert post(site, "sendgrid", body, forged).status_code == 403
    tampered = sendgrid_signer.headers(body)
    assert post(site, "sendgrid", body.replace(b"spamreport", b"spamreporT"), tampered).status_code == 403
    assert post(site, "sendgrid", body).status_code == 403  # no signature at all
    assert site.snapshot() == before
    response = post(site, "sendgrid", body, sendgrid_signer.headers(body))
    assert response.status_code == 200, response.text
    assert status_of(site, JO) == "complained"


def test_unconfigured_provider_is_404_and_malformed_json_400(database_url, sendgrid_signer):
    for site in open_site(database_url, mailgun_signing_key=MAILGUN_KEY):
        assert post(site, "ses", b"{}").status_code == 404
        assert post(site, "postmark", b"{}").status_code == 404
        assert post(site, "nobody", b"{}").status_code == 404
        assert post(site, "mailgun", b"{not json").status_code == 400
        assert site.client.get("/webhooks/mailgun").status_code == 405
        assert post(site, "mailgun", b"x" * (200 * 1024)).status_code == 400  # past the forms' 64 KiB: read
        assert post(site, "mailgun", b"x" * (2 * 1024 * 1024)).status_code == 413


def test_webhooks_are_the_only_csrf_exemption():
    assert frozenset({"webhooks"}) == security.CSRF_EXEMPT_BLUEPRINTS


def test_webhook_secrets_are_never_printed():
    settings = Settings(mailgun_signing_key="mg-secret-value", postmark_webhook_password="pm-secret-value")
    assert "mg-secret-value" not in repr(settings) and "pm-secret-value" not in repr(settings)


# --- What each provider's events mean (no server needed) -------------------------------------------


def test_ses_bounce_types_status_and_diagnostic_decide_the_kind(sns):
    ses = Ses(sns.cert_file, frozenset({TOPIC}))

    def kinds(event: dict[str, Any]) -> list[Finding]:
        return ses.findings(
            ses.verify(Incoming.of(json.dumps(sns.sign(ses_notification(event))).encode(), {}))
        )

    (hard,) = kinds(ses_bounce(JO, source="bounces+7.ABCDEF.sig@health-equity-network.example.org"))
    assert hard == Finding(
        kind=Kind.HARD,
        source="ses",
        token="7.ABCDEF.sig",
        address=JO,
        message_id="<nl.3.abcdefghijklmnop.7@health-equity-network.example.org>",
        status="5.1.1",
        diagnostic="smtp; 550 5.1.1 user unknown",
        received_at=dt.datetime(2026, 12, 6, 11, 59, 58, tzinfo=dt.UTC),
    )
    assert kinds(ses_bounce(JO, "Transient", "4.2.2", "smtp; 452 4.2.2 mailbox full"))[0].kind is Kind.SOFT
    spam = "smtp; 550 5.7.1 Message rejected as spam by Content Filtering"
    assert kinds(ses_bounce(JO, "Permanent", "5.7.1", spam))[0].kind is Kind.POLICY
    blocked = "smtp; 554 Service unavailable; Client host blocked using zen.spamhaus.org"
    assert kinds(ses_bounce(JO, "Permanent", "5.0.0", blocked))[0].kind is Kind.POLICY
    assert kinds(ses_bounce(JO, "Undetermined", "", "smtp; unknown"))[0].kind is Kind.UNKNOWN
    assert kinds({"notificationType": "Delivery", "mail": {}}) == []


def test_postmark_types():
    postmark = Postmark(*POSTMARK)
    incoming = Incoming.of(b"{}", postmark_auth(*POSTMARK))
    assert postmark.verify(incoming) == {}

    def kind(**record: Any) -> Kind:
        (found,) = postmark.findings({"RecordType": "Bounce", "Email": JO, **record})
        return found.kind

    assert kind(Type="HardBounce") is Kind.HARD
    assert kind(Type="SoftBounce", Details="mailbox full") is Kind.SOFT
    assert kind(Type="SpamNotification") is Kind.POLICY
    assert kind(Type="HardBounce", Details="550 5.7.1 blocked by policy") is Kind.POLICY
    assert kind(Type="AutoResponder") is Kind.AUTO_REPLY
    (complaint,) = postmark.findings({"RecordType": "SpamComplaint", "Type": "SpamComplaint", "Email": JO})
    assert complaint.kind is Kind.COMPLAINT and complaint.address == JO
    assert postmark.findings({"RecordType": "Delivery", "Email": JO}) == []


def test_mailgun_severity_and_delivery_status():
    mailgun = Mailgun(MAILGUN_KEY)
    sender = "bounces+1.ABCDEF0123456789.sig@health-equity-network.example.org"
    payload = mailgun.verify(Incoming.of(mailgun_body(mailgun_failed(JO, sender=sender)), {}))
    (hard,) = mailgun.findings(payload)
    assert (hard.kind, hard.status, hard.token, hard.message_id) == (
        Kind.HARD,
        "5.1.1",
        "1.ABCDEF0123456789.sig",
        "<nl.3.abcdefghijklmnop.7@health-equity-network.example.org>",
    )
    assert hard.diagnostic.startswith("550 5.1.1")
    soft = mailgun.findings(
        {"event-data": mailgun_failed(JO, "temporary", 452, "4.2.2 The email account is over quota")}
    )
    assert soft[0].kind is Kind.SOFT
    spam = mailgun.findings(
        {"event-data": mailgun_failed(JO, "permanent", 554, "5.7.1 rejected: spam content")}
    )
    assert spam[0].kind is Kind.POLICY
    (complaint,) = mailgun.findings({"event-data": {"event": "complained", "recipient": JO}})
    assert complaint.kind is Kind.COMPLAINT
    assert mailgun.findings({"event-data": {"event": "delivered", "recipient": JO}}) == []
    with pytest.raises(BadSignature):
        mailgun.verify(Incoming.of(json.dumps({"event-data": {}}).encode(), {}))


def test_sendgrid_event_types(sendgrid_signer):
    sendgrid = SendGrid(sendgrid_signer.public_key)
    events = [
        {
            "email": JO,
            "event": "bounce",
            "type": "bounce",
            "status": "5.1.1",
            "reason": "550 5.1.1 no such user",
            "smtp-id": "<nl.3.x.7@example.org>",
        },
        {
            "email": JO,
            "event": "bounce",
            "type": "blocked",
            "status": "4.0.0",
            "reason": "421 try again later, IP listed",
        },
        {"email": JO, "event": "dropped", "reason": "Bounced Address"},
        {"email": JO, "event": "dropped", "reason": "Spam Reporting Address"},
        {"email": JO, "event": "spamreport"},
        {"email": JO, "event": "open"},
    ]
    body = json.dumps(events).encode()
    found = sendgrid.findings(sendgrid.verify(Incoming.of(body, sendgrid_signer.headers(body))))
    assert [f.kind for f in found] == [Kind.HARD, Kind.POLICY, Kind.HARD, Kind.COMPLAINT, Kind.COMPLAINT]
    assert found[0].message_id == "<nl.3.x.7@example.org>" and found[0].status == "5.1.1"


def test_kind_of_lets_the_status_and_words_correct_the_provider():
    assert kind_of(Kind.HARD, "5.7.1", "") is Kind.POLICY
    assert kind_of(Kind.HARD, "4.4.7", "") is Kind.SOFT  # "permanent" after retries of a 4xx: still temporary
    assert kind_of(Kind.SOFT, "5.1.1", "") is Kind.HARD
    assert kind_of(Kind.UNKNOWN, "5.0.0", "550 user unknown") is Kind.HARD
    assert kind_of(Kind.UNKNOWN, None, "smtp; unknown") is Kind.UNKNOWN
    assert (
        kind_of(Kind.HARD, "5.1.1", "rejected by our spam policy") is Kind.POLICY
    )  # never the member's fault
    assert kind_of(Kind.HARD, None, "") is Kind.HARD  # nothing to judge by: the provider's word
    assert kind_of(Kind.POLICY, "5.1.1", "") is Kind.POLICY


# --- The installed command --------------------------------------------------------------------------


@pytest.mark.slow
def test_installed_serve_takes_a_signed_mailgun_bounce(tmp_path):
    folder = init_project(tmp_path)
    uncomment(folder / "newsletter.toml", mailgun_signing_key=MAILGUN_KEY)
    (folder / "subscribers" / "members.csv").write_text(
        "email,name,organisation,sector,region,place,topics,lists\n"
        f"{JO},Jo Bloggs,Acme Trust,nhs,wales,Cardiff,housing,\n",
        encoding="utf-8",
    )
    newsletter(folder, "subscribers", "import", "subscribers/members.csv", "--list", "newsletter")
    port = free_port()
    serve = Background(folder, "serve", "--port", str(port), port=port)
    try:
        url = f"http://127.0.0.1:{port}/webhooks/mailgun"

        def send(body: bytes) -> int:
            request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return int(response.status)
            except urllib.error.HTTPError as error:
                return error.code

        assert send(mailgun_body(mailgun_failed(JO), key="forged")) == 403
        assert re.search(r"^status\s+active$", newsletter(folder, "subscribers", "show", JO).stdout, re.M)
        assert send(mailgun_body(mailgun_failed(JO))) == 200
    finally:
        log = serve.stop()
    assert "Traceback" not in log, log
    assert "mailgun refused (403)" in log
    shown = newsletter(folder, "subscribers", "show", JO).stdout
    assert re.search(r"^status\s+bounced$", shown, re.M), shown


@pytest.mark.slow
def test_installed_serve_shows_the_sns_confirmation_link_in_bounces_review(tmp_path):
    folder = init_project(tmp_path)
    signer = SnsSigner.make(folder)
    uncomment(folder / "newsletter.toml", ses_signing_cert=signer.cert_file.name, ses_topic_arn=TOPIC)
    (tmp_path / "forger").mkdir()
    forger = SnsSigner.make(tmp_path / "forger")
    confirmation = sns_confirmation()
    port = free_port()
    serve = Background(folder, "serve", "--port", str(port), port=port)
    try:

        def send(message: dict[str, Any]) -> int:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/webhooks/ses",
                data=json.dumps(message).encode(),
                headers={"Content-Type": "text/plain; charset=UTF-8"},  # as SNS sends it
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return int(response.status)
            except urllib.error.HTTPError as error:
                return error.code

        assert send(forger.sign(confirmation)) == 403
        review = newsletter(folder, "bounces", "--review").stdout
        assert review.startswith("No reports that could not be classified"), review
        assert send(signer.sign(confirmation)) == 200
    finally:
        log = serve.stop()
    assert "Traceback" not in log, log
    review = newsletter(folder, "bounces", "--review").stdout
    assert f"said: Open {confirmation['SubscribeURL']} in a browser" in review, review
    assert TOPIC in review and "via ses" in review
    assert confirmation["SubscribeURL"] in log
