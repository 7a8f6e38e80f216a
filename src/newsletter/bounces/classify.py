"""What a returned message says: which member (the VERP token), which message (its Message-ID), and
what happened (hard, soft, policy, complaint, auto-reply), as `Finding`s.

Read in this order, the first that applies deciding:
1. RFC 3464 delivery status notifications: one finding per failed or delayed recipient, from the
   per-recipient fields (Status, Diagnostic-Code, Action).
2. RFC 5965 ARF feedback reports: a complaint; the member from the original message's VERP
   Return-Path or, failing that, its List-Unsubscribe link.
3. Anything else: flufl.bounce (Mailman's detectors) finds the failed addresses of non-standard
   bounces; what kind of failure it was comes from our own reading of the status code and the text
   (flufl calls a spam-filter rejection permanent, which would suppress a member for our own
   reputation's sake).
4. RFC 3834 auto-replies and out-of-office notes: ignored, but told apart from what we cannot read.
5. Mail to the VERP address that none of these explains: UNKNOWN, kept for review.

The token itself is only read here, never trusted: `intake` checks its signature and the member's key.
"""

from __future__ import annotations

import datetime as dt
import email
import email.utils
import re
from email.message import Message
from email.parser import BytesHeaderParser

from flufl.bounce import all_failures

from newsletter.audience.bouncing import STATUS, status_in
from newsletter.audience.bouncing import kind_of as kind_of
from newsletter.bounces.findings import Finding, Kind

# The local part of our VERP address: `bounces+TOKEN` (tokens are `[A-Za-z0-9._-]`).
_VERP = r"bounces\+([A-Za-z0-9._-]+)@"
_REPLY_CODE = re.compile(r"\b[45]\d\d\b")
# An out-of-office subject, at its start: a bounce's subject often repeats the original's after
# "Undeliverable:", so a word anywhere in it says nothing.
_OUT_OF_OFFICE = re.compile(
    r"\s*(?:re:\s*)?(?:out of (?:the )?office|auto(?:matic)?[- ]?(?:reply|response|antwort)|autoreply|"
    r"abwesenheit|absence|away from|on (?:annual )?leave|on holiday|vacation)",
    re.I,
)
# Where a bounce's text starts quoting the returned message: words after it are the newsletter's own.
_QUOTED_ORIGINAL = re.compile(
    r"^.*(?:below this line is a copy of the message|this is a copy of the message|original message follows|"
    r"-{3,} ?original message ?-{3,}|returned mail follows|message headers follow).*$",
    re.I | re.M,
)
# One header field, with its folded continuation lines (RFC 5322 2.2: a name of printable ASCII but ':').
_HEADER_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.M)
# A message that is itself a report: its Content-Type's report-type.
_TOP_REPORT_TYPE = re.compile(r"\s*multipart/report\s*;.*?\breport-type\s*=\s*\"?([A-Za-z0-9-]+)", re.I)
# A Message-ID header in returned headers, with any folded lines after it.
_HEADER_MESSAGE_ID = re.compile(r"^message-id:[ \t]*((?:[^\r\n]|\r?\n[ \t])*)", re.I | re.M)
_UNSUBSCRIBE_TOKEN = re.compile(r"/unsubscribe/([A-Za-z0-9._-]+)")
_DIAGNOSTIC_CHARS = 1000
_BODY_CHARS = 20_000  # the human-readable part of a non-standard bounce we read for its code and words


def classify(raw: bytes, domain: str, envelope_to: str | None = None) -> list[Finding]:
    """Every finding in one returned message; empty when it is not a report we understand.

    `domain` is ours (the VERP address's); `envelope_to`, when the message came by SMTP or LMTP,
    is the address it was delivered to, which names the member more surely than any header.
    """
    message = email.message_from_bytes(raw)
    parts = _parts(message)
    token = _verp_token(_addressed_to(envelope_to, message), domain)
    received = _date(message.get("Date"))
    report_type = _report_type(parts)
    if report_type == "delivery-status":
        findings = _dsn(parts, token, received)
        if findings:
            return findings
    elif report_type == "feedback-report":
        return [_arf(parts, domain, received)]
    if not _strong_auto_reply(message, token):
        findings = _nonstandard(message, parts, token, received)
        if findings:
            return findings
    if _auto_reply(message, token):
        return [Finding(Kind.AUTO_REPLY, "auto_reply", token=token, received_at=received)]
    if token is not None or report_type:
        subject = " ".join(str(message.get("Subject", "")).split())
        return [Finding(Kind.UNKNOWN, "unknown", token=token, diagnostic=subject[:200], received_at=received)]
    return []


def looks_like_report(raw: bytes, domain: str) -> bool:
    """Whether a message in a shared mailbox is ours to take: addressed to `bounces+*@domain`, or a
    DSN, ARF report or auto-reply by its headers. Only the headers are read (a mailbox may hold
    thousands of messages); anything else is somebody's mail, to be left where it is."""
    headers = HeaderFields.read(raw)
    if _verp_token(_addressed_to(None, headers), domain) is not None:
        return True
    submitted = str(headers.get("Auto-Submitted", "no")).strip().lower()
    report = _TOP_REPORT_TYPE.match(str(headers.get("Content-Type", "")))
    return (
        (report is not None and report.group(1).lower() in ("delivery-status", "feedback-report"))
        or submitted.startswith("auto-replied")
        or _auto_responder(headers)
    )


class HeaderFields:
    """A message's header fields, read from its first bytes without the email parser: a tenth of the
    cost, for `looks_like_report`, which a shared mailbox asks of thousands of messages. Answers `get`
    and `get_all` as `email.message.Message` does (names in any case, folded lines unfolded)."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    @classmethod
    def read(cls, raw: bytes) -> HeaderFields:
        block = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
        fields: dict[str, list[str]] = {}
        for name, value in _HEADER_FIELD.findall(block):
            text = " ".join(value.decode("utf-8", "replace").split())
            fields.setdefault(name.decode("ascii").lower(), []).append(text)
        return cls(fields)

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.fields.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str, default: list[str]) -> list[str]:
        return self.fields.get(name.lower(), default)


def _addressed_to(envelope_to: str | None, message: Message | HeaderFields) -> list[str]:
    """Where a report was sent: the envelope recipient first, when there is one, then its headers."""
    candidates = [envelope_to] if envelope_to else []
    for header in ("Delivered-To", "X-Original-To", "To"):
        candidates.extend(str(value) for value in message.get_all(header, []))
    return candidates


def _verp_token(candidates: list[str], domain: str) -> str | None:
    """The token of the first `bounces+TOKEN@domain` among `candidates`."""
    pattern = re.compile(_VERP + re.escape(domain) + r"\b", re.I)
    for candidate in candidates:
        found = pattern.search(candidate)
        if found:
            return found.group(1)
    return None


# Every part of a message with its content type, in `walk` order: found once, asked of many times.
Parts = list[tuple[str, Message]]


def _parts(message: Message) -> Parts:
    return [(part.get_content_type(), part) for part in message.walk()]


def _report_type(parts: Parts) -> str:
    """The report-type of the outermost multipart/report: the message itself, or a part of it (some
    content filters wrap the report in a multipart/mixed, some gateways forward it as an attached
    message)."""
    for kind, part in parts:
        if kind == "multipart/report":
            return str(part.get_param("report-type", "") or "").lower()
    return ""


def _dsn(parts: Parts, token: str | None, received: dt.datetime | None) -> list[Finding]:
    """One finding per recipient whose Action is failed or delayed (RFC 3464 section 2.3)."""
    message_id = _original_message_id(parts)
    findings = []
    for kind, part in parts:
        if kind not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        blocks = _status_blocks(part)
        if not blocks:
            continue
        per_message, recipients = blocks[0], blocks[1:]
        arrived = _date(per_message.get("Arrival-Date")) or received
        for fields in recipients:
            action = str(fields.get("Action", "")).strip().lower()
            delayed = action.startswith("delayed")
            if not (delayed or action.startswith(("fail", "error"))):  # opensmtpd writes "error"
                continue
            status = status_in(str(fields.get("Status", "")))
            diagnostic = _one_line(_after_type(fields.get("Diagnostic-Code", "")))
            kind = kind_of(status, diagnostic)
            if delayed and kind != Kind.POLICY:
                kind = Kind.SOFT  # still being tried: nothing is known yet about the address
            findings.append(
                Finding(
                    kind,
                    "dsn",
                    token=token,
                    address=_recipient(fields),
                    message_id=message_id,
                    status=status,
                    diagnostic=diagnostic[:_DIAGNOSTIC_CHARS],
                    received_at=_date(fields.get("Last-Attempt-Date")) or arrived,
                )
            )
    return findings


def _recipient(fields: Message) -> str | None:
    """The address we sent to (Original-Recipient, as we wrote it) before the one the receiving
    side ended with (Final-Recipient, perhaps after its own aliases), without angle brackets."""
    for header in ("Original-Recipient", "Final-Recipient"):
        address = _after_type(fields.get(header, "")).strip("<> ")
        if address:
            return address
    return None


def _status_blocks(part: Message) -> list[Message]:
    """The field blocks of a delivery-status part (the parser makes each a Message; a part it left
    as text, for an odd content transfer encoding, is parsed here)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    text = part.get_payload(decode=True) or b""
    return [email.message_from_bytes(block) for block in re.split(rb"\r?\n\r?\n", text.strip()) if block]


def _arf(parts: Parts, domain: str, received: dt.datetime | None) -> Finding:
    """A complaint (RFC 5965): who, from the original message the report returns."""
    report = next((part for kind, part in parts if kind == "message/feedback-report"), None)
    blocks = _status_blocks(report) if report is not None else []
    fields = blocks[0] if blocks else Message()
    original = _original(parts)
    token = None
    message_id = None
    if original is not None:
        token = _verp_token([str(original.get("Return-Path", ""))], domain)
        if token is None:
            found = _UNSUBSCRIBE_TOKEN.search(str(original.get("List-Unsubscribe", "")))
            token = found.group(1) if found else None
        message_id = _message_id(original)
    address = _after_type(fields.get("Original-Rcpt-To", "")) or None
    kind = (
        Kind.UNKNOWN if str(fields.get("Feedback-Type", "")).strip().lower() == "not-spam" else Kind.COMPLAINT
    )
    return Finding(
        kind,
        "arf",
        token=token,
        address=address,
        message_id=message_id,
        diagnostic=_one_line(str(fields.get("Feedback-Type", "abuse")))[:_DIAGNOSTIC_CHARS],
        received_at=_date(fields.get("Arrival-Date") or fields.get("Received-Date")) or received,
    )


def _nonstandard(
    message: Message, parts: Parts, token: str | None, received: dt.datetime | None
) -> list[Finding]:
    """flufl.bounce for the addresses of a bounce in no standard form; our rules for what it means."""
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a detector tripping over a malformed message: not a bounce we can read
        return []
    if not temporary and not permanent:
        return []
    text = _readable_text(message)
    status = status_in(text)
    diagnostic = _diagnostic_line(text)
    message_id = _original_message_id(parts)
    findings = []
    for raw_address, is_permanent in [(a, False) for a in sorted(temporary)] + [
        (a, True) for a in sorted(permanent)
    ]:
        address = (
            raw_address.decode("utf-8", "replace") if isinstance(raw_address, bytes) else str(raw_address)
        )
        kind = kind_of(status, text, permanent=is_permanent)
        findings.append(
            Finding(
                kind,
                "flufl",
                token=token,
                address=address,
                message_id=message_id,
                status=status,
                diagnostic=diagnostic,
                received_at=received,
            )
        )
    return findings


def _auto_responder(message: Message | HeaderFields) -> bool:
    """The headers only auto-responders write (not RFC 3834's, which bounces carry too)."""
    return (
        message.get("X-Autoreply") is not None
        or message.get("X-Autorespond") is not None
        or str(message.get("Precedence", "")).strip().lower() == "auto_reply"
    )


def _strong_auto_reply(message: Message, token: str | None) -> bool:
    """An auto-responder's headers, or an out-of-office subject on mail to the bounce address (only
    a machine writes there; a person's "Vacation plans" to the list's address is not a reply): such a
    message is never run through flufl's heuristics, which can take an out-of-office note for a bounce."""
    return _auto_responder(message) or (
        token is not None and bool(_OUT_OF_OFFICE.match(str(message.get("Subject", ""))))
    )


def _auto_reply(message: Message, token: str | None) -> bool:
    """RFC 3834 and the common unofficial marks. Bounces often say `Auto-Submitted: auto-replied`
    too, so this is asked only of what was not read as a report or a bounce."""
    submitted = str(message.get("Auto-Submitted", "no")).strip().lower()
    return submitted.startswith("auto-replied") or _strong_auto_reply(message, token)


def _original(parts: Parts) -> Message | None:
    """The returned original: a message/rfc822 part, or its headers (text/rfc822-headers)."""
    for kind, part in parts:
        if kind in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                return payload[0]
        elif kind in ("text/rfc822-headers", "message/global-headers"):
            return BytesHeaderParser().parsebytes(part.get_payload(decode=True) or b"")
    return None


def _original_message_id(parts: Parts) -> str | None:
    """The returned original's Message-ID. Returned headers alone (text/rfc822-headers, what Postfix and
    most MTAs send back) are searched for it rather than parsed: parsing them would cost a third as
    much again as parsing the whole report, for one header. A plain-text bounce (qmail's, and many
    older servers') quotes the original after a line saying so: its Message-ID is searched for there."""
    for kind, part in parts:
        if kind in ("text/rfc822-headers", "message/global-headers"):
            return _header_message_id(_text(part))
        if kind in ("message/rfc822", "message/global"):
            original = _original(parts)
            return _message_id(original) if original is not None else None
    (kind, message), *rest = parts
    if rest or not kind.startswith("text/"):
        return None
    text = _text(message)
    quoted = _QUOTED_ORIGINAL.search(text)
    return _header_message_id(text[quoted.end() :].lstrip("\r\n")) if quoted else None


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    return (
        payload.decode(part.get_content_charset() or "utf-8", "replace") if isinstance(payload, bytes) else ""
    )


def _header_message_id(headers: str) -> str | None:
    """The Message-ID in a block of header lines (up to the first blank line)."""
    found = _HEADER_MESSAGE_ID.search(re.split(r"\r?\n\r?\n", headers, maxsplit=1)[0])
    return (_one_line(found.group(1))[:200] or None) if found else None


def _message_id(message: Message) -> str | None:
    value = " ".join(str(message.get("Message-ID", "")).split())
    return value[:200] or None


def _readable_text(message: Message) -> str:
    """The bounce's own words: its text parts, leaving out any returned original."""
    pieces: list[str] = []
    stack = [message]
    while stack:
        part = stack.pop(0)
        kind = part.get_content_type()
        if part.is_multipart():
            stack.extend(p for p in part.get_payload() if isinstance(p, Message))
        elif kind.startswith("message/") or kind == "text/rfc822-headers":
            continue
        elif part.get_content_maintype() == "text":
            data = part.get_payload(decode=True) or b""
            pieces.append(data.decode(part.get_content_charset() or "utf-8", "replace"))
        if sum(len(p) for p in pieces) > _BODY_CHARS:
            break
    text = "\n".join(pieces)[:_BODY_CHARS]
    quoted = _QUOTED_ORIGINAL.search(text)
    if quoted:
        text = text[: quoted.start()]
    return re.sub(r"<[^>]{0,500}>", " ", text) if "<html" in text.lower() else text


def _diagnostic_line(text: str) -> str:
    """The line that gives the server's reply (a status code or an SMTP code), else the first words."""
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    for line in lines:
        if STATUS.search(line) or _REPLY_CODE.search(line):
            return line[:_DIAGNOSTIC_CHARS]
    return (lines[0] if lines else "")[:_DIAGNOSTIC_CHARS]


def _after_type(value: object) -> str:
    """`rfc822; jo@example.org` -> `jo@example.org`; `smtp; 550 ...` -> `550 ...`."""
    text = _one_line(str(value or ""))
    kind, semicolon, rest = text.partition(";")
    return rest.strip() if semicolon and " " not in kind.strip() else text


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _date(value: object) -> dt.datetime | None:
    """A header's date in UTC, or None when it has none or none that parses."""
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)
