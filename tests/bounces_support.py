"""Returned mail built the way mail servers write it: RFC 3464 DSNs, RFC 5965 ARF reports, RFC 3834
auto-replies and a qmail bounce in no standard form, for the classifier and the rules' tests."""

from __future__ import annotations

DOMAIN = "health-equity-network.example.org"


def original_headers(message_id: str, token: str | None = None, unsubscribe: str | None = None) -> str:
    """The headers of one of our messages as a receiving server returns them."""
    lines = [
        f"Return-Path: <bounces+{token}@{DOMAIN}>" if token else "",
        f"From: Health Equity Network <newsletter@{DOMAIN}>",
        "To: jo@example.org",
        "Subject: Health Equity News, May",
        f"Message-ID: {message_id}",
        f"List-Unsubscribe: <https://news.example.org/unsubscribe/{unsubscribe}>" if unsubscribe else "",
    ]
    return "\r\n".join(line for line in lines if line) + "\r\n"


def dsn(
    token: str | None,
    recipients: list[tuple[str, str, str, str]],
    message_id: str = "<nl.1.abc.1@health-equity-network.example.org>",
    returned: str = "text/rfc822-headers",
    to: str | None = None,
) -> bytes:
    """A delivery status notification; `recipients` are (address, action, status, diagnostic)."""
    per_recipient = "".join(
        f"\r\nFinal-Recipient: rfc822; {address}\r\nOriginal-Recipient: rfc822;{address}\r\n"
        f"Action: {action}\r\nStatus: {status}\r\nRemote-MTA: dns; mx.example.org\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\nLast-Attempt-Date: Tue, 7 May 2024 10:00:00 +0100\r\n"
        for address, action, status, diagnostic in recipients
    )
    to = to or (f"bounces+{token}@{DOMAIN}" if token else f"newsletter@{DOMAIN}")
    return (
        "Return-Path: <>\r\n"
        "From: MAILER-DAEMON@relay.example.net (Mail Delivery System)\r\n"
        f"To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Date: Tue, 7 May 2024 10:00:05 +0100\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n--B\r\nContent-Type: text/plain\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; relay.example.net\r\nArrival-Date: Tue, 7 May 2024 09:59:00 +0100\r\n"
        f"{per_recipient}"
        f"\r\n--B\r\nContent-Type: {returned}\r\n\r\n"
        f"{original_headers(message_id, token)}"
        "\r\n--B--\r\n"
    ).encode()


def arf(
    token: str | None = None, unsubscribe: str | None = None, message_id: str = "<nl.1.abc.1@x>"
) -> bytes:
    """A complaint as a mailbox provider's feedback loop sends it (RFC 5965)."""
    return (
        "From: feedback@fbl.example.net\r\n"
        f"To: abuse@{DOMAIN}\r\n"
        "Subject: FW: Health Equity News, May\r\n"
        "Date: Wed, 8 May 2024 08:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="F"\r\n'
        "\r\n--F\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n"
        "\r\n--F\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: SomeFBL/1.0\r\nVersion: 1\r\n"
        "Original-Rcpt-To: jo@example.org\r\nArrival-Date: Wed, 8 May 2024 07:55:00 +0000\r\n"
        "\r\n--F\r\nContent-Type: message/rfc822\r\n\r\n"
        f"{original_headers(message_id, token, unsubscribe)}\r\nHello, this is the newsletter.\r\n"
        "\r\n--F--\r\n"
    ).encode()


def auto_reply(token: str, subject: str = "Out of Office: Health Equity News, May", **headers: str) -> bytes:
    extra = "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in headers.items())
    return (
        "From: Jo <jo@example.org>\r\n"
        f"To: bounces+{token}@{DOMAIN}\r\n"
        f"Subject: {subject}\r\n"
        f"{extra}"
        "Date: Tue, 7 May 2024 10:00:05 +0100\r\n"
        "\r\nI am away until Monday with no access to email.\r\n"
    ).encode()


def qmail(token: str, address: str, reply: str) -> bytes:
    """A qmail bounce: no DSN, only words, which flufl.bounce reads."""
    return (
        "From: MAILER-DAEMON@mx.example.net\r\n"
        f"To: bounces+{token}@{DOMAIN}\r\n"
        "Subject: failure notice\r\n"
        "Date: Tue, 7 May 2024 10:00:05 +0100\r\n"
        "\r\n"
        "Hi. This is the qmail-send program at mx.example.net.\r\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\r\n"
        "\r\n"
        f"<{address}>:\r\n"
        f"192.0.2.1 does not like recipient.\r\nRemote host said: {reply}\r\nGiving up on 192.0.2.1.\r\n"
        "\r\n"
        "--- Below this line is a copy of the message.\r\n"
        "\r\n"
        f"{original_headers('<nl.1.abc.1@x>', token)}\r\nNo spam here, we promise: block this paragraph.\r\n"
    ).encode()
