"""One reader's copy of an issue as files: what `newsletter render` writes.

`email.eml` is the message that reader's mail server would receive, built by
the worker's own `PreparedMessage` (headers, their To address, quoted-printable
bodies, their links); `email.html` and `email.txt` are its two parts read back
out of it, so opening them shows what the reader sees and never a raw
`%%unsubscribe_url%%`. The placeholders live only in the prepared form delivery
fills for each recipient.

The reader is a member (`--as EMAIL`: their topics, region, format, name and
address), or by default a sample member who chose no topics and no region,
and so gets the whole issue in HTML and text, as most members do. Either way
the links name nobody (as `send --test` copies' do): rendered files are
opened, shared and left in folders, and a member's own links would let
whoever holds them change that member's subscription.
"""

from __future__ import annotations

import email
import email.policy
import secrets
from dataclasses import dataclass
from pathlib import Path

from newsletter.audience import members
from newsletter.audience.store import Store
from newsletter.content import images
from newsletter.db.models import new_link_key
from newsletter.delivery.lookahead import Foreseen, Profile, describe, foresee, member_profile
from newsletter.delivery.message import PreparedMessage, Recipient, message_id_for
from newsletter.editor import EMAIL_FILES, CheckedIssue, Editor
from newsletter.render.edition import Edition
from newsletter.settings import Settings
from newsletter.tokens import Tokens

SAMPLE_ADDRESS = "member@example.org"  # RFC 2606: a domain that never receives mail
RENDER_MARK = "render"  # a copy's Message-ID names it as a render, never a campaign's or a test's


@dataclass(frozen=True)
class Reader:
    """Whose copy: the choices personalisation looks at, and how the message addresses them."""

    profile: Profile
    recipient: Recipient
    sample: bool = False


@dataclass(frozen=True)
class RenderedCopy:
    """What `render` wrote (the email, the web version, the picture files), for the command to print."""

    checked: CheckedIssue
    view: Foreseen
    files: list[Path]
    sample: bool

    def describe(self, regions: dict[str, str] | None = None) -> str:
        """Whose copy this is, in one line (as `preview --as` names it)."""
        if self.sample:
            return (
                f"as a sample member ({SAMPLE_ADDRESS}, no topics or region chosen: the whole issue, "
                "HTML and text; its links act on nobody)"
            )
        return describe(self.view, regions) + "; its links act on nobody"


def sample_reader() -> Reader:
    """A made-up member: no topics, no region, HTML and text."""
    profile = Profile(SAMPLE_ADDRESS, (), None, False)
    return Reader(profile, nobody(SAMPLE_ADDRESS, "", text_only=False), sample=True)


def nobody(address: str, name: str, *, text_only: bool) -> Recipient:
    """How a rendered copy addresses its reader: links for subscriber 0 with a fresh key no member
    holds, so the pages they open act on nobody."""
    return Recipient(0, address, name, text_only, new_link_key())


def member_reader(store: Store, address: str) -> Reader:
    """A member's choices and the way their message names them; a clear error for a non-member."""
    store.ready()
    with store.session() as session:
        member = members.require(session, address)
        profile = member_profile(session, address)
        recipient = nobody(member.email, member.name or "", text_only=profile.text_only)
    return Reader(profile, recipient)


def render_copy(
    editor: Editor, slug: str, out_dir: Path, reader: Reader | None = None, force: bool = False
) -> RenderedCopy:
    """Check the issue and write `reader`'s copy (a sample member's when None) into `out_dir`: `email.eml`,
    `email.html` (unless they read plain text), `email.txt`, `web.html` and the issue's picture files."""
    reader = reader or sample_reader()
    views: list[Foreseen] = []

    def email_files(checked: CheckedIssue) -> dict[str, bytes]:
        (view,) = foresee(checked.issue, [reader.profile])
        views.append(view)
        edition = editor.renderer.render(view.issue, with_html=not view.text_only)
        return message_files(edition, editor.settings, reader.recipient, text_only=view.text_only)

    checked = editor.render_to(slug, out_dir, force=force, email_files=email_files)
    written = [out_dir / name for name in (*EMAIL_FILES, "web.html") if (out_dir / name).exists()]
    written += [out_dir / image.src for image in images.local_pictures(checked.issue)]
    return RenderedCopy(checked, views[0], written, reader.sample)


def message_files(
    edition: Edition, settings: Settings, recipient: Recipient, *, text_only: bool
) -> dict[str, bytes]:
    """`email.eml` as delivery would send it to `recipient`, and its parts as `email.html` and
    `email.txt` (what a mail client shows of them)."""
    prepared = PreparedMessage.build(edition, settings, text_only=text_only)
    message_id = message_id_for(RENDER_MARK, recipient.subscriber_id, prepared.domain, secrets.token_hex(5))
    raw = prepared.render(recipient, message_id, Tokens(settings.secret_key))
    files = {"email.eml": raw}
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    for part in parsed.walk():
        name = {"text/html": "email.html", "text/plain": "email.txt"}.get(part.get_content_type())
        if name:
            files[name] = part.get_content().replace("\r\n", "\n").encode("utf-8")
    return files
