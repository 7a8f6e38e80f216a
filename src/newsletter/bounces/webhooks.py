"""Email providers' bounce and complaint webhooks: is this request really from the provider, and what
does it say. No web framework here: `web/webhooks.py` hands over the body and headers.

Each provider proves a request its own way, and each check is the one its documentation gives:
Amazon SES through SNS signs every message with a certificate (configured as a file: the server never
fetches anything, so a forged `SigningCertURL` cannot point it anywhere); Mailgun signs a timestamp and a
token with an HMAC key; SendGrid signs the timestamp and the raw body with ECDSA; Postmark signs nothing,
so its webhook URL carries HTTP basic credentials of our choosing. A request that fails is `BadSignature`
(403, nothing recorded); a body that is not what the provider sends is `BadPayload` (400).

`findings` turns a verified payload into `Finding`s: the provider's own bounce type first, corrected by
the enhanced status code and the server's words (`kind_of`), so a spam-filter rejection a provider calls
"permanent" never counts against the member. The member is named by the VERP token when the provider
reports our envelope sender, else by the address; the campaign row by our Message-ID when it is echoed.
SNS's subscription confirmations become a finding too, kept for review: the list owner must open their
link, and `newsletter bounces --review` is where they look (the server's log is not).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from newsletter.bounces import classify
from newsletter.bounces.findings import Finding, Kind
from newsletter.errors import UserError
from newsletter.settings import Settings

log = logging.getLogger(__name__)

MAX_AGE_SECONDS = 5 * 60  # Mailgun's signed timestamp: older (or further ahead) than this is refused
_TOKEN = re.compile(r"bounces\+([A-Za-z0-9._-]+)@", re.IGNORECASE)
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


class BadSignature(Exception):
    """The request is not provably from the provider: it changes nothing and is answered 403."""


class BadPayload(ValueError):
    """The body is not what the provider sends (not JSON, or the wrong shape): answered 400."""


@dataclass(frozen=True)
class Incoming:
    """One webhook request as the provider sent it: the raw body and the headers."""

    body: bytes
    headers: Mapping[str, str]  # names in lower case

    @classmethod
    def of(cls, body: bytes, headers: Mapping[str, str]) -> Incoming:
        return cls(body, {name.lower(): value for name, value in headers.items()})

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as error:
            raise BadPayload(f"the body is not JSON ({error})") from None


class Provider(ABC):
    """One provider's webhook: `verify` proves a request and returns its payload, `findings` reads it."""

    name = ""

    @abstractmethod
    def verify(self, incoming: Incoming) -> Any:
        """The request's payload, once its signature (or credentials) prove it came from the provider."""

    @abstractmethod
    def findings(self, payload: Any) -> list[Finding]:
        """What a verified payload reports, one finding per recipient event."""


def providers(settings: Settings) -> dict[str, Provider]:
    """The providers this network has configured, by the name in their URL (`/webhooks/<name>`)."""
    found: dict[str, Provider] = {}
    if settings.ses_signing_cert:
        found["ses"] = Ses(Path(settings.ses_signing_cert), _words(settings.ses_topic_arn))
    if settings.postmark_webhook_user and settings.postmark_webhook_password:
        found["postmark"] = Postmark(settings.postmark_webhook_user, settings.postmark_webhook_password)
    if settings.mailgun_signing_key:
        found["mailgun"] = Mailgun(settings.mailgun_signing_key)
    if settings.sendgrid_public_key:
        found["sendgrid"] = SendGrid(settings.sendgrid_public_key)
    return found


def kind_of(stated: Kind, status: str | None, diagnostic: str) -> Kind:
    """The provider's own type (`stated`) judged by the one rule every intake path uses
    (`classify.kind_of`): a spam-filter rejection a provider calls "permanent" is still policy, and a
    "permanent" failure that only says 4.x.x is still temporary. With no code and no words to judge by,
    the provider's type stands (an undetermined one with vague words too); what a provider calls policy,
    a complaint or an auto-reply stays so."""
    if stated not in (Kind.HARD, Kind.SOFT, Kind.UNKNOWN):
        return stated
    if not status and not diagnostic.strip():
        return stated
    judged = classify.kind_of(status, diagnostic, permanent=stated is not Kind.SOFT)
    if stated is Kind.UNKNOWN and not status and judged is Kind.SOFT:
        return Kind.UNKNOWN  # vague words and no code: kept for review rather than guessed at
    return judged


def status_in(*texts: object) -> str | None:
    """The enhanced status code (`5.1.1`) in what a provider reports, if any: the first specific one,
    since a provider's own field often says only 5.0.0 where the server's words say 5.1.1."""
    codes = [code for text in texts for code in _STATUS.findall(str(text or ""))]
    return next((code for code in codes if not code.endswith(".0.0")), codes[0] if codes else None)


def token_in(sender: object) -> str | None:
    """The VERP token of our envelope sender `bounces+TOKEN@domain`, when the provider reports it."""
    found = _TOKEN.search(str(sender or ""))
    return found.group(1) if found else None


def our_message_id(value: object) -> str | None:
    """A Message-ID in the `<...>` form the ledger holds (Mailgun drops the brackets)."""
    text = str(value or "").strip()
    if not text:
        return None
    return text if text.startswith("<") else f"<{text}>"


def _when(value: object) -> dt.datetime | None:
    """An ISO 8601 time or Unix seconds as UTC; None (the intake then takes now) when unreadable."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(value, dt.UTC)
        if isinstance(value, str) and value:
            text = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
            moment = dt.datetime.fromisoformat(text)
            return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _address(value: object) -> str | None:
    """An address as the provider wrote it (the intake normalises it), or None."""
    return value.strip() or None if isinstance(value, str) else None


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadPayload(f"{what} is not a JSON object")
    return value


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    """An optional object of a payload: {} when absent or of the wrong shape."""
    return value if isinstance(value, dict) else {}


def _words(text: str) -> frozenset[str]:
    return frozenset(word for word in re.split(r"[\s,]+", text) if word)


# --- Amazon SES through SNS -------------------------------------------------------------------------

# The fields SNS signs, in order, per message type (docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html).
_SNS_CONFIRMATION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
_SNS_SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _SNS_CONFIRMATION,
    "UnsubscribeConfirmation": _SNS_CONFIRMATION,
}
_SNS_CONFIRMATIONS = ("SubscriptionConfirmation", "UnsubscribeConfirmation")
_SNS_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
_SES_BOUNCES = {"Permanent": Kind.HARD, "Transient": Kind.SOFT, "Undetermined": Kind.UNKNOWN}
# Transient bounces that are about the message, not the mailbox.
_SES_POLICY_SUBTYPES = {"MessageTooLarge", "ContentRejected", "AttachmentRejected"}


class Ses(Provider):
    """Amazon SES bounce and complaint notifications, delivered by SNS (leave raw delivery off)."""

    name = "ses"

    def __init__(self, certificate_file: Path, topics: frozenset[str]) -> None:
        try:
            self.certificates = x509.load_pem_x509_certificates(certificate_file.read_bytes())
        except (OSError, ValueError) as error:
            raise UserError(
                f"setting 'ses_signing_cert': cannot read an SNS signing certificate (PEM) from "
                f"{certificate_file}: {error}"
            ) from None
        self.topics = topics  # the SNS topics whose notifications count; none set: none count

    def verify(self, incoming: Incoming) -> dict[str, Any]:
        message = _object(incoming.json(), "the SNS message")
        kind = message.get("Type")
        if kind not in _SNS_SIGNED:
            raise BadPayload(f"not an SNS message type we take: {kind!r}")
        url = urlsplit(str(message.get("SigningCertURL", "")))
        host = (url.hostname or "").lower()
        if url.scheme != "https" or not host.endswith((".amazonaws.com", ".amazonaws.com.cn")):
            raise BadSignature(f"SigningCertURL is not an https amazonaws.com address: {url.geturl()!r}")
        algorithm = _SNS_HASHES.get(str(message.get("SignatureVersion")))
        if algorithm is None:
            raise BadSignature(f"unknown SNS SignatureVersion {message.get('SignatureVersion')!r}")
        try:
            signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        except binascii.Error:
            raise BadSignature("the SNS Signature is not base64") from None
        if not any(
            self._signed_by(cert, signature, sns_canonical(message), algorithm())
            for cert in self.certificates
        ):
            raise BadSignature(
                f"the SNS signature does not match the configured certificate (the message names "
                f"{url.geturl()}: if AWS changed its certificate, download that one into ses_signing_cert)"
            )
        if kind == "Notification" and message.get("TopicArn") not in self.topics:
            raise BadSignature(
                f"notification from SNS topic {message.get('TopicArn')!r}, which is not in setting 'ses_topic_arn'"
            )
        return message

    @staticmethod
    def _signed_by(
        certificate: x509.Certificate, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm
    ) -> bool:
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            return False
        now = dt.datetime.now(dt.UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            return False
        try:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        except InvalidSignature:
            return False
        return True

    def findings(self, payload: Any) -> list[Finding]:
        if payload.get("Type") in _SNS_CONFIRMATIONS:
            return [self._confirmation(payload)]
        if payload.get("Type") != "Notification":
            return []
        try:
            event = _object(json.loads(str(payload.get("Message", ""))), "the SES notification")
        except ValueError:
            raise BadPayload("the SNS Message is not a JSON SES notification") from None
        mail = _dict(event.get("mail"))
        headers = {
            str(h.get("name", "")).lower(): h.get("value")
            for h in _list(mail.get("headers"))
            if isinstance(h, dict)
        }
        common = _dict(mail.get("commonHeaders"))
        message_id = our_message_id(common.get("messageId") or headers.get("message-id"))
        token = token_in(mail.get("source")) or token_in(headers.get("return-path"))
        kind = event.get("notificationType") or event.get("eventType")
        if kind == "Bounce":
            return self._bounced(_object(event.get("bounce"), "bounce"), token, message_id)
        if kind == "Complaint":
            return self._complained(_object(event.get("complaint"), "complaint"), token, message_id)
        return []  # deliveries, opens and the rest: nothing to do

    def _confirmation(self, payload: dict[str, Any]) -> Finding:
        """A (un)subscription confirmation, verified, for the list owner: only they can open its link
        (this server never fetches anything), so it is kept for review, where `newsletter bounces
        --review` shows it, and logged. The URL comes first, so that the diagnostic's length limit
        (1000 characters; a SubscribeURL is 300-650) can only cut the words after it."""
        url = payload.get("SubscribeURL") or "(no SubscribeURL given)"
        topic = payload.get("TopicArn")
        if payload.get("Type") == "SubscriptionConfirmation":
            listed = (
                "it is in setting 'ses_topic_arn'"
                if topic in self.topics
                else "if that topic is yours, also add it to setting 'ses_topic_arn'"
            )
            words = (
                f"Open {url} in a browser to confirm that Amazon SNS topic {topic} may send SES bounces "
                f"and complaints to this server ({listed}); this server never opens the link itself"
            )
        else:
            words = (
                f"Open {url} in a browser only to subscribe again: Amazon SNS topic {topic} has stopped "
                f"sending SES bounces and complaints to this server (unsubscribed); this server never "
                f"opens the link itself"
            )
        log.warning("webhook ses: %s (kept for review: newsletter bounces --review)", words)
        return Finding(
            kind=Kind.UNKNOWN, source=self.name, diagnostic=words, received_at=_when(payload.get("Timestamp"))
        )

    def _bounced(self, bounce: dict[str, Any], token: str | None, message_id: str | None) -> list[Finding]:
        stated = _SES_BOUNCES.get(str(bounce.get("bounceType")), Kind.UNKNOWN)
        if bounce.get("bounceSubType") in _SES_POLICY_SUBTYPES:
            stated = Kind.POLICY
        recipients = [r for r in _list(bounce.get("bouncedRecipients")) if isinstance(r, dict)]
        one = token if len(recipients) == 1 else None  # our messages have one recipient each
        found = []
        for recipient in recipients:
            diagnostic = str(recipient.get("diagnosticCode") or "")
            status = status_in(recipient.get("status"), diagnostic)
            found.append(
                Finding(
                    kind=kind_of(stated, status, diagnostic),
                    source=self.name,
                    token=one,
                    address=_address(recipient.get("emailAddress")),
                    message_id=message_id,
                    status=status,
                    diagnostic=diagnostic or str(bounce.get("bounceSubType") or ""),
                    received_at=_when(bounce.get("timestamp")),
                )
            )
        return found

    def _complained(
        self, complaint: dict[str, Any], token: str | None, message_id: str | None
    ) -> list[Finding]:
        recipients = [r for r in _list(complaint.get("complainedRecipients")) if isinstance(r, dict)]
        one = token if len(recipients) == 1 else None
        feedback = complaint.get("complaintFeedbackType") or complaint.get("complaintSubType") or ""
        return [
            Finding(
                kind=Kind.COMPLAINT,
                source=self.name,
                token=one,
                address=_address(recipient.get("emailAddress")),
                message_id=message_id,
                diagnostic=str(feedback),
                received_at=_when(complaint.get("timestamp")),
            )
            for recipient in recipients
        ]


def sns_canonical(message: Mapping[str, Any]) -> bytes:
    """The string SNS signs: each signed field present as `Name\\nValue\\n`, in the documented order."""
    names = _SNS_SIGNED.get(str(message.get("Type")), ())
    return "".join(f"{name}\n{message[name]}\n" for name in names if message.get(name) is not None).encode()


# --- Postmark -----------------------------------------------------------------------------------------

_POSTMARK_TYPES = {
    "HardBounce": Kind.HARD,
    "BadEmailAddress": Kind.HARD,
    "ManuallyDeactivated": Kind.UNKNOWN,
    "SoftBounce": Kind.SOFT,
    "Transient": Kind.SOFT,
    "DnsError": Kind.SOFT,
    "SpamNotification": Kind.POLICY,
    "Blocked": Kind.POLICY,
    "VirusNotification": Kind.POLICY,
    "DMARCPolicy": Kind.POLICY,
    "SpamComplaint": Kind.COMPLAINT,
    "AutoResponder": Kind.AUTO_REPLY,
}


class Postmark(Provider):
    """Postmark's Bounce and SpamComplaint webhooks. Postmark signs nothing, so the webhook URL is
    given as https://USER:PASSWORD@host/webhooks/postmark, and those credentials are the proof."""

    name = "postmark"

    def __init__(self, user: str, password: str) -> None:
        self.expected = b"Basic " + base64.b64encode(f"{user}:{password}".encode())

    def verify(self, incoming: Incoming) -> dict[str, Any]:
        if not hmac.compare_digest(incoming.header("Authorization").encode(), self.expected):
            raise BadSignature("the Postmark request lacks the configured basic-auth credentials")
        return _object(incoming.json(), "the Postmark record")

    def findings(self, payload: Any) -> list[Finding]:
        record = payload.get("RecordType")
        if record not in ("Bounce", "SpamComplaint"):
            return []
        stated = (
            Kind.COMPLAINT
            if record == "SpamComplaint"
            else _POSTMARK_TYPES.get(str(payload.get("Type")), Kind.UNKNOWN)
        )
        details = str(payload.get("Details") or payload.get("Description") or "")
        status = status_in(payload.get("Details"))
        return [
            Finding(
                kind=kind_of(stated, status, details),
                source=self.name,
                address=_address(payload.get("Email")),
                status=status,
                diagnostic=details,
                received_at=_when(payload.get("BouncedAt")),
            )
        ]


# --- Mailgun ------------------------------------------------------------------------------------------


class Mailgun(Provider):
    """Mailgun's `failed` and `complained` events, signed with the webhook signing key (HMAC-SHA256 of
    timestamp + token); stale timestamps and tokens seen in the last minutes are refused."""

    name = "mailgun"

    def __init__(self, signing_key: str, clock: Callable[[], float] = time.time) -> None:
        self.key = signing_key.encode()
        self.clock = clock
        self.seen: dict[str, float] = {}  # token -> when it may be forgotten (replays in this process)
        self.lock = threading.Lock()

    def verify(self, incoming: Incoming) -> dict[str, Any]:
        payload = _object(incoming.json(), "the Mailgun event")
        signed = payload.get("signature")
        if not isinstance(signed, dict):
            raise BadSignature("the Mailgun event carries no signature")
        timestamp, token = str(signed.get("timestamp", "")), str(signed.get("token", ""))
        expected = hmac.new(self.key, (timestamp + token).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), str(signed.get("signature", "")).encode()):
            raise BadSignature("the Mailgun signature does not match setting 'mailgun_signing_key'")
        now = self.clock()
        try:
            fresh = abs(now - float(timestamp)) <= MAX_AGE_SECONDS
        except ValueError:
            fresh = False
        if not fresh:
            raise BadSignature(f"the Mailgun timestamp {timestamp!r} is more than five minutes away")
        with self.lock:
            self.seen = {seen: until for seen, until in self.seen.items() if until > now}
            if token in self.seen:
                raise BadSignature("this Mailgun token was used a moment ago: a replay")
            self.seen[token] = now + 2 * MAX_AGE_SECONDS
        return payload

    def findings(self, payload: Any) -> list[Finding]:
        event = payload.get("event-data")
        if not isinstance(event, dict) or event.get("event") not in ("failed", "complained"):
            return []
        message = _dict(event.get("message"))
        headers = _dict(message.get("headers"))
        envelope = _dict(event.get("envelope"))
        common = {
            "source": self.name,
            "token": token_in(envelope.get("sender")),
            "address": _address(event.get("recipient")),
            "message_id": our_message_id(headers.get("message-id")),
            "received_at": _when(event.get("timestamp")),
        }
        if event.get("event") == "complained":
            return [Finding(kind=Kind.COMPLAINT, **common)]
        delivery = _dict(event.get("delivery-status"))
        words = " ".join(str(delivery.get(k) or "") for k in ("message", "description")).strip()
        status = status_in(delivery.get("enhanced-code"), delivery.get("bounce-code"), words)
        stated = {"permanent": Kind.HARD, "temporary": Kind.SOFT}.get(
            str(event.get("severity")), Kind.UNKNOWN
        )
        if event.get("reason") == "espblock":
            stated = Kind.POLICY
        code = delivery.get("code")
        diagnostic = f"{code} {words}".strip() if code else words
        return [Finding(kind=kind_of(stated, status, words), status=status, diagnostic=diagnostic, **common)]


# --- SendGrid -----------------------------------------------------------------------------------------

_SENDGRID_DROPPED = {
    "Bounced Address": Kind.HARD,
    "Invalid": Kind.HARD,
    "Spam Reporting Address": Kind.COMPLAINT,
    "Spam Content": Kind.POLICY,
}


class SendGrid(Provider):
    """SendGrid's Signed Event Webhook: ECDSA (P-256, SHA-256) over the timestamp header and the raw
    body, checked with the verification key SendGrid shows (base64 DER)."""

    name = "sendgrid"
    SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
    TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"

    def __init__(self, public_key: str) -> None:
        try:
            key = load_der_public_key(base64.b64decode(public_key, validate=True))
        except (ValueError, binascii.Error) as error:
            raise UserError(
                f"setting 'sendgrid_public_key' must be SendGrid's base64 verification key ({error})"
            ) from None
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise UserError("setting 'sendgrid_public_key' is not an elliptic-curve (ECDSA) public key")
        self.key = key

    def verify(self, incoming: Incoming) -> list[Any]:
        try:
            signature = base64.b64decode(incoming.header(self.SIGNATURE), validate=True)
            signed = incoming.header(self.TIMESTAMP).encode() + incoming.body
            self.key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
        except (binascii.Error, InvalidSignature, ValueError):
            raise BadSignature(
                "the SendGrid event signature does not match setting 'sendgrid_public_key'"
            ) from None
        events = incoming.json()
        if not isinstance(events, list):
            raise BadPayload("the SendGrid body is not a list of events")
        return events

    def findings(self, payload: Any) -> list[Finding]:
        return [found for event in payload if isinstance(event, dict) for found in self._event(event)]

    def _event(self, event: dict[str, Any]) -> list[Finding]:
        kind = event.get("event")
        reason = str(event.get("reason") or "")
        if kind == "bounce":
            stated = Kind.POLICY if event.get("type") == "blocked" else Kind.HARD
        elif kind == "dropped":
            stated = next(
                (k for words, k in _SENDGRID_DROPPED.items() if reason.startswith(words)), Kind.UNKNOWN
            )
        elif kind == "spamreport":
            stated = Kind.COMPLAINT
        else:
            return []
        status = status_in(event.get("status"), reason)
        return [
            Finding(
                kind=kind_of(stated, status, reason) if kind == "bounce" else stated,
                source=self.name,
                address=_address(event.get("email")),
                message_id=our_message_id(event.get("smtp-id")),
                status=status,
                diagnostic=reason,
                received_at=_when(event.get("timestamp")),
            )
        ]
