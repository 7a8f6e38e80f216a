"""The few emails the subscriber pages send (confirm a sign-up, your preferences link, confirm a new
address, your new links, your link to share your work), through the same SMTP transport as campaigns
but one at a time, from the threads of the pages' `Outbox` (`web/outbox.py`).

Each is a short text part and a plain HTML part from `templates/web/mail/notice.*.j2`; the words of
each kind are below. They are transactional: no List-Unsubscribe, `Auto-Submitted: auto-generated`.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from newsletter.delivery.dkim import signer_for
from newsletter.delivery.message import bounce_address, sender_domain
from newsletter.delivery.transport import Outcome, Reply, SmtpTransport, smtp_form
from newsletter.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    """The words of one kind of email; `{network}` and `{email}` are filled in."""

    subject: str
    before: tuple[str, ...]
    action: str
    after: tuple[str, ...]


NOTICES = {
    "confirm": Notice(
        subject="Please confirm your subscription to the {network} newsletter",
        before=(
            "Someone, hopefully you, asked for {email} to receive the {network}'s emails.",
            "To confirm, open the link below and press the button on the page. The link works for 7 days.",
        ),
        action="Confirm my subscription",
        after=("If this was not you, ignore this email: you will not hear from us again.",),
    ),
    "already": Notice(
        subject="Your {network} subscription",
        before=(
            "Someone, hopefully you, asked for {email} to receive the {network}'s emails. "
            "This address already receives them, so nothing has changed.",
            "To choose what you receive, change your details or unsubscribe, use your preferences page:",
        ),
        action="My preferences",
        after=("If this was not you, you can ignore this email.",),
    ),
    "email": Notice(
        subject="Please confirm your new address for the {network} newsletter",
        before=(
            "Someone, hopefully you, asked for the {network}'s emails to come to {email} from now on.",
            "To confirm, open the link below and press the button on the page. The link works for 2 days.",
        ),
        action="Use this address",
        after=("If this was not you, ignore this email: nothing will change.",),
    ),
    "links": Notice(
        subject="Your new {network} preferences link",
        before=(
            "You asked for new links to your {network} preferences. The links in earlier emails no longer "
            "open your preferences (their unsubscribe links still work).",
        ),
        action="My preferences",
        after=("Keep this email, or use the preferences link in the next newsletter.",),
    ),
    "submission-accepted": Notice(
        subject="Your submission to the {network} newsletter was accepted",
        before=(
            "Thank you for sharing your work with the {network}. The editors have added it to an issue:",
        ),
        action="See your submissions",
        after=("The editors may still shorten or edit it before the issue is sent.",),
    ),
    "submission-question": Notice(
        subject="A question about your submission to the {network} newsletter",
        before=("Thank you for sharing your work with the {network}. An editor has a question about it:",),
        action="See your submissions",
        after=("Reply to this email to answer: it goes to the editors.",),
    ),
    "submission-declined": Notice(
        subject="Your submission to the {network} newsletter",
        before=(
            "Thank you for sharing your work with the {network}. The editors will not include it this time:",
        ),
        action="See your submissions",
        after=("You are welcome to share more of your work at any time.",),
    ),
    "submit": Notice(
        subject="Your link to share your work with the {network}",
        before=(
            "Someone, hopefully you, asked for a link to share work with the {network}'s editors as {email}.",
            "Open the link below to tell them about a publication, news from a place, a collaboration, an "
            "event or a story idea.",
        ),
        action="Share your work",
        after=(
            "Keep this email to share more later, or use the link at the foot of any of our newsletters. "
            "If this was not you, you can ignore it.",
        ),
    ),
    "desk": Notice(
        subject="Your link to sign in to the {network} editor's desk",
        before=(
            "Someone, hopefully you, asked to sign in to the {network}'s editor's desk as {email}.",
            "Open the link below and press the button on the page. The link works once, for 30 minutes.",
        ),
        action="Sign in to the desk",
        after=("If this was not you, ignore this email: nobody can sign in without the link.",),
    ),
}


class Mailer:
    """Builds and sends notices; one `SmtpTransport` shared by the outbox's sender threads (a
    connection each)."""

    def __init__(self, settings: Settings, templates: Path) -> None:
        self.settings = settings
        self.transport = SmtpTransport(settings.smtp_url)
        self.environment = Environment(
            loader=FileSystemLoader(templates),
            autoescape=lambda name: bool(name and name.endswith(".html.j2")),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self.sender = parseaddr(settings.from_address)[1]
        self.domain = sender_domain(settings)
        self.signer = signer_for(settings)  # the campaigns' DKIM keys: a bad one stops `serve` at start

    def build(self, kind: str, to: str, url: str, details: tuple[str, ...] = ()) -> bytes:
        """The message as written (CRLF line endings), DKIM-signed when keys are set. `details` are
        lines of this one email (an editor's note, a title), shown as they are, set apart."""
        notice = NOTICES[kind]
        words = {"network": self.settings.network_name, "email": to}
        values = {
            "subject": notice.subject.format(**words),
            "before": [line.format(**words) for line in notice.before],
            "details": list(details),
            "action": notice.action,
            "url": url,
            "after": [line.format(**words) for line in notice.after],
            "network": self.settings.network_name,
            "postal_address": self.settings.postal_address,
        }
        chosen = policy.SMTPUTF8 if not to.isascii() else policy.SMTP
        message = EmailMessage(policy=chosen)
        message["From"] = self.settings.from_address
        message["To"] = to
        if self.settings.reply_to.strip():
            message["Reply-To"] = self.settings.reply_to
        message["Subject"] = values["subject"]
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid("nl.web", domain=self.domain)
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(self.environment.get_template("mail/notice.txt.j2").render(values))
        message.add_alternative(
            self.environment.get_template("mail/notice.html.j2").render(values), subtype="html"
        )
        data = message.as_bytes()
        return data if self.signer is None else self.signer.sign(data)

    def send(
        self, kind: str, to: str, url: str, bounce: str | None = None, details: tuple[str, ...] = ()
    ) -> Reply:
        """Send one notice; the relay's reply (`Outcome.SENT` when it took it). A stale pooled
        connection is retried once. With `bounce` (a member's VERP token) the envelope sender is
        `bounces+TOKEN@domain`, as a campaign message's is, so a bounce of it reaches the same rules. The pages send through their `Outbox`, never straight from a
        request's thread.

        A refusal or an unreachable relay is logged here, with the relay's reason and the address
        shortened (`j…@example.org`), and never raised: the page says "try again later" in the same
        words whoever the address belongs to, so it cannot reveal who is a member.
        """
        data = self.build(kind, to, url, details)
        sender = bounce_address(bounce, self.settings) if bounce else self.sender
        reply = self.transport.send(sender, to, data)
        if reply.outcome == Outcome.DEFERRED and reply.code == 0:
            reply = self.transport.send(sender, to, data)
        if reply.outcome != Outcome.SENT:
            log.warning(
                "%s email to %s not sent (%s): %s", kind, masked(to), reply.outcome, hidden(str(reply), to)
            )
        return reply

    def close(self) -> None:
        self.transport.close()


def masked(address: str) -> str:
    """`jo.bloggs@example.org` -> `j…@example.org`: enough for the log to tell a domain's trouble,
    not enough to be the address."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}…@{domain}"


def hidden(text: str, address: str) -> str:
    """A relay's reply with the address (which relays often echo) shortened by `masked`."""
    forms = {address}
    with contextlib.suppress(UnicodeError):  # a domain IDNA cannot encode was never sent as ASCII
        forms.add(smtp_form(address))
    short = masked(address)
    for form in sorted(forms, key=len, reverse=True):
        text = re.sub(re.escape(form), lambda _: short, text, flags=re.IGNORECASE)
    return text
