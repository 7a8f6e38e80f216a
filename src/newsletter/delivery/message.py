"""One variant's MIME message built once; each recipient's copy is a join of prepared bytes.

`PreparedMessage.build` encodes the headers and bodies of a variant (CRLF line
endings, quoted-printable UTF-8 bodies, RFC 2047 headers) and cuts the result
into static bytes and slots: the To, Date and Message-ID headers, the
List-Unsubscribe token, and the unsubscribe, preferences and submit links in
the bodies. `render` fills the slots and joins, so a recipient costs four tokens
and one `b"".join`, not a MIME build (three when the theme has no submit link).

The VERP bounce address (`bounces+TOKEN@domain`) travels only in the SMTP
envelope, as MAIL FROM (`wire`). The message itself has no `Return-Path`:
RFC 5321 section 4.4 leaves that header to the final delivery server, which
writes it from the envelope (a copy arriving with one already may keep the
wrong one, or be marked as suspicious).

A link marker could be cut in two by a quoted-printable soft line break, so
the bodies are encoded in segments between markers and each link sits on
lines of its own between soft breaks (`=` CRLF); the URL put there is plain
ASCII without `=` (tokens never hold one), wrapped at 75 characters, so the
part stays valid quoted-printable with no line over 76 characters.

The "view in browser" link is the same for everyone (the archive page holds
no personal data), so it is filled in by `build`.

Whatever a member typed as their name goes into the To header with control
characters turned into spaces, quoted or RFC 2047-encoded as needed, so a
name can never start a header of its own.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import html
import re
import secrets
import time
from dataclasses import dataclass
from email.headerregistry import HeaderRegistry
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from functools import lru_cache

import idna

from newsletter.delivery.transport import written_data
from newsletter.errors import UserError
from newsletter.render.edition import Edition
from newsletter.render.placeholders import PREFERENCES_URL, SUBMIT_URL, UNSUBSCRIBE_URL, VIEW_URL
from newsletter.settings import Settings
from newsletter.tokens import Tokens

MAX_NAME = 200  # characters of a display name kept: keeps the To line far below 998 octets
QP_WIDTH = 75  # characters of a link per line, before the `=` of a soft line break

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$()*+,;%]+")
_ATOMS = r"[^\x00-\x20\x7f-\x9f<>()\[\]\\,;:@\"]+"
_ADDRESS = re.compile(rf"({_ATOMS})@({_ATOMS})")
_MESSAGE_ID_FORM = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')
_ESCAPES = re.compile(r'[\\"]')
_HEADERS = HeaderRegistry()

# Slots: what render() fills in for each recipient.
_TO, _DATE, _MESSAGE_ID, _UNSUBSCRIBE_TOKEN, _UNSUBSCRIBE_LINK, _PREFERENCES_LINK, _SUBMIT_LINK = range(7)
_LINK_SLOTS = {
    UNSUBSCRIBE_URL: _UNSUBSCRIBE_LINK,
    PREFERENCES_URL: _PREFERENCES_LINK,
    SUBMIT_URL: _SUBMIT_LINK,
}
_MARKERS = re.compile("(" + "|".join(re.escape(marker) for marker in _LINK_SLOTS) + ")")


@dataclass(frozen=True, slots=True)
class Recipient:
    """One member as a message needs them; `text_only` is their choice of plain text."""

    subscriber_id: int
    email: str
    name: str
    text_only: bool
    link_key: str  # the member's random key, part of every link and bounce token made for them


def campaign_tag(campaign_id: int, created_at: dt.datetime) -> str:
    """A random-looking part of one campaign's Message-IDs, the same whenever it is worked out.

    Derived from the campaign's id and the moment it was created (to the microsecond), so a
    database built afresh, whose campaigns and members count from 1 again, does not repeat the
    Message-IDs of the old one (providers drop a message whose Message-ID they have seen), while a
    campaign's own re-sends keep theirs.
    """
    seed = f"{campaign_id}:{created_at.isoformat(timespec='microseconds')}".encode("ascii")
    digest = hashlib.blake2b(seed, digest_size=10, person=b"nl.message-id").digest()
    return base64.b32encode(digest).decode("ascii").lower()


def message_id_for(campaign_id: int | str, subscriber_id: int, domain: str, tag: str = "") -> str:
    """The same Message-ID every time, so a retried send is recognisably the same message.

    The ledger writes this form (with the campaign's `campaign_tag`) when a campaign's recipients
    are fixed, and every send of the message uses the one it holds.
    """
    return f"<nl.{campaign_id}.{tag + '.' if tag else ''}{subscriber_id}@{domain}>"


def bounce_address(token: str, settings: Settings) -> str:
    """The VERP envelope sender: a bounce to it names the member by its token."""
    return f"bounces+{token}@{sender_domain(settings)}"


def sender_domain(settings: Settings) -> str:
    """The From address's domain (in ASCII), where bounces and Message-IDs belong."""
    return _domain_of(settings.from_address)


@lru_cache(maxsize=16)
def _domain_of(from_address: str) -> str:
    """`sender_domain`'s work, done once per address rather than once per variant."""
    address = parseaddr(_one_line(from_address))[1]
    local, at, domain = address.rpartition("@")
    if not (local and at and domain):
        raise UserError(f"setting 'from_address' must hold an email address, not {from_address!r}")
    return _ascii_domain(domain)


class PreparedMessage:
    """A variant's message as static bytes and per-recipient slots; `render` fills and joins them."""

    def __init__(
        self, parts: list[bytes], slots: list[tuple[int, int]], *, text_only: bool, domain: str, base_url: str
    ) -> None:
        self._parts = parts
        self._slots = slots
        self._personal = frozenset(index for index, _ in slots)
        self.text_only = text_only
        self.domain = domain
        self._unsubscribe_prefix = f"{base_url}/unsubscribe/"
        self._preferences_prefix = f"{base_url}/preferences/"
        self._submit_prefix = f"{base_url}/submit/"
        self._submit_link = any(slot == _SUBMIT_LINK for _, slot in slots)  # a theme may leave it out

    @classmethod
    def build(
        cls, edition: Edition, settings: Settings, *, text_only: bool, subject_prefix: str = ""
    ) -> PreparedMessage:
        """Encode the edition once: headers, and a text part or a text-then-HTML alternative."""
        base_url = settings.base_url.rstrip("/")
        if not _PLAIN_URL.fullmatch(base_url):
            raise UserError(
                f"setting 'base_url' must be a plain http(s) address "
                f"(ASCII, without spaces, quotes, '&' or '='), not {settings.base_url!r}"
            )
        domain = sender_domain(settings)
        view_url = f"{base_url}/archive/{edition.issue.slug}/"
        out = _Template()
        out.add(_address_header("From", settings.from_address))
        out.add(b"To: ")
        out.slot(_TO)
        out.add(b"\r\n")
        if settings.reply_to.strip():
            out.add(_address_header("Reply-To", settings.reply_to))
        out.add(_text_header("Subject", subject_prefix + edition.subject))
        out.add(b"Date: ")
        out.slot(_DATE)
        out.add(b"\r\nMessage-ID: ")
        out.slot(_MESSAGE_ID)
        out.add(b"\r\n")
        if settings.list_id.strip():
            out.add(_text_header("List-Id", settings.list_id))
        out.add(f"List-Unsubscribe: <{base_url}/unsubscribe/".encode("ascii"))
        out.slot(_UNSUBSCRIBE_TOKEN)
        out.add(b">\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nMIME-Version: 1.0\r\n")
        text = edition.text.replace(VIEW_URL, view_url)
        if text_only:
            out.add(_PART_HEADERS % b"plain")
            out.body(text)
        else:
            # '=_' never occurs in quoted-printable, so no body line can look like the boundary.
            boundary = f"=_nl_{secrets.token_hex(12)}".encode("ascii")
            out.add(b'Content-Type: multipart/alternative; boundary="%s"\r\n\r\n' % boundary)
            out.add(b"--%s\r\n" % boundary + _PART_HEADERS % b"plain")
            out.body(text)
            out.add(b"\r\n--%s\r\n" % boundary + _PART_HEADERS % b"html")
            out.body(edition.html.replace(VIEW_URL, html.escape(view_url)))
            out.add(b"\r\n--%s--\r\n" % boundary)
        # Kept as SMTP DATA: each static piece dot-stuffed once here, the end-of-data line added. No slot
        # starts a line with a dot or ends one, so stuffing the pieces apart equals stuffing the whole.
        parts = [part.replace(b"\r\n.", b"\r\n..") for part in out.parts]
        parts[-1] += b".\r\n"
        return cls(parts, out.slots, text_only=text_only, domain=domain, base_url=base_url)

    def render(self, recipient: Recipient, message_id: str, tokens: Tokens, date: str | None = None) -> bytes:
        """The recipient's message as written (CRLF lines): their address and links."""
        return written_data(self.wire(recipient, message_id, tokens, date)[1])

    def wire(
        self, recipient: Recipient, message_id: str, tokens: Tokens, date: str | None = None
    ) -> tuple[str, bytes]:
        """MAIL FROM (the VERP bounce address) and the message as SMTP DATA (see `transport.wire_data`)
        for one recipient: what `SmtpTransport.send_wire` takes."""
        sender, pieces = self.pieces(recipient, message_id, tokens, date)
        return sender, b"".join(pieces)

    @property
    def template(self) -> tuple[list[bytes], frozenset[int]]:
        """The message as SMTP DATA in pieces, and which of them differ by recipient (what `pieces`
        fills in): a DKIM signer prepares the rest once (`dkim.Template`)."""
        return self._parts, self._personal

    def pieces(
        self, recipient: Recipient, message_id: str, tokens: Tokens, date: str | None = None
    ) -> tuple[str, list[bytes]]:
        """MAIL FROM and the recipient's SMTP DATA in the template's pieces (`wire` joins them)."""
        if recipient.text_only and not self.text_only:
            raise ValueError(
                f"subscriber {recipient.subscriber_id} chose plain text, this is the HTML variant"
            )
        if not _MESSAGE_ID_FORM.fullmatch(message_id):
            raise ValueError(f"not a Message-ID: {message_id!r}")
        subscriber = recipient.subscriber_id
        unsubscribe = tokens.make("unsubscribe", subscriber, recipient.link_key)
        values = {
            _TO: _to_header(recipient.name, recipient.email),
            _DATE: (_now() if date is None else _one_line(date)).encode("ascii"),
            _MESSAGE_ID: message_id.encode("ascii"),
            _UNSUBSCRIBE_TOKEN: unsubscribe.encode("ascii"),
            _UNSUBSCRIBE_LINK: _qp_link(self._unsubscribe_prefix + unsubscribe),
            _PREFERENCES_LINK: _qp_link(
                self._preferences_prefix + tokens.make("preferences", subscriber, recipient.link_key)
            ),
        }
        if self._submit_link:
            submit = tokens.make("submit", subscriber, recipient.link_key)
            values[_SUBMIT_LINK] = _qp_link(self._submit_prefix + submit)
        parts = self._parts.copy()
        for index, slot in self._slots:
            parts[index] = values[slot]
        return self.envelope_sender(recipient, tokens), parts

    def envelope_sender(self, recipient: Recipient, tokens: Tokens) -> str:
        """MAIL FROM for this recipient: a VERP address whose token names them, so a bounce does too."""
        return f"bounces+{tokens.make('bounce', recipient.subscriber_id, recipient.link_key)}@{self.domain}"


_PART_HEADERS = (
    b'Content-Type: text/%s; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
)


class _Template:
    """Static bytes with numbered gaps, collected while the message is built."""

    def __init__(self) -> None:
        self.parts: list[bytes] = [b""]
        self.slots: list[tuple[int, int]] = []

    def add(self, data: bytes) -> None:
        self.parts[-1] += data

    def slot(self, slot: int) -> None:
        self.slots.append((len(self.parts), slot))
        self.parts += [b"", b""]

    def body(self, text: str) -> None:
        """Quoted-printable, CRLF, with every link marker on lines of its own between soft breaks."""
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        for number, piece in enumerate(_MARKERS.split(text)):
            if number % 2:
                if self.parts[-1] and not self.parts[-1].endswith(b"\r\n"):
                    self.add(b"=\r\n")
                self.slot(_LINK_SLOTS[piece])
                self.add(b"=\r\n")
            elif piece:
                *lines, last = piece.split("\n")
                self.add(b"".join([_qp_line(line) for line in lines]))
                if last:
                    # The stand-in "x" keeps the last line to 75 characters, leaving room for a soft break.
                    encoded = binascii.b2a_qp(last.encode("utf-8") + b"x", istext=True)[:-1]
                    self.add(encoded.replace(b"\n", b"\r\n"))


@lru_cache(maxsize=8192)
def _qp_line(line: str) -> bytes:
    """One line (without its line break) as quoted-printable, ending in CRLF.

    Quoted-printable works line by line, so a body is encoded a line at a time and each line kept:
    an issue's variants share most of their lines, and encoding is most of building a variant."""
    return binascii.b2a_qp(line.encode("utf-8") + b"\n", istext=True).replace(b"\n", b"\r\n")


def _qp_link(url: str) -> bytes:
    """A URL of plain ASCII without `=` as quoted-printable: itself, cut by soft breaks (and dot-stuffed,
    as a line cut from it may start with a dot)."""
    data = url.encode("ascii")
    if len(data) <= QP_WIDTH:
        return data
    lines = (data[start : start + QP_WIDTH] for start in range(0, len(data), QP_WIDTH))
    return b"=\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)


@lru_cache(maxsize=64)
def _address_header(name: str, value: str) -> bytes:
    """An address header (From, Reply-To) as the standard library parses, encodes and folds it."""
    return _HEADERS(name, _one_line(value)).fold(policy=SMTP).encode("ascii")


def _text_header(name: str, value: str) -> bytes:
    """An unstructured header (Subject, List-Id): ASCII words as written, the rest RFC 2047-encoded.

    Not the standard library's folder: it moves a value that fits a line of its
    own onto a continuation line (read back with a leading space) and can drop
    the space between two encoded words. Here every word from the first
    non-ASCII one on goes into base64 encoded words, spaces included, so
    nothing depends on the whitespace between them; then lines fold at spaces.
    """
    words = " ".join(_one_line(value).split()).split(" ")
    tokens = [f"{name}:"]
    for number, word in enumerate(words):
        # "=?" would be decoded by mail clients; a word longer than a line could pass 998 octets.
        if not word.isascii() or "=?" in word or len(word) > 76:
            tokens += _encoded_words(" ".join(words[number:]))
            break
        tokens.append(word)
    lines = []
    line = tokens[0]
    for token in tokens[1:]:
        if len(line) + 1 + len(token) > SMTP.max_line_length and line != tokens[0]:
            lines.append(line)
            line = " " + token
        else:
            line += " " + token
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _to_header(name: str, email: str) -> bytes:
    """`Name <address>`, quoted or encoded so that nothing in the name can leave the header."""
    match = _ADDRESS.fullmatch(email)
    if not match:
        raise ValueError(f"not a deliverable email address: {email!r}")
    local, domain = match.groups()
    # An internationalised local part stays UTF-8 (RFC 6532): only SMTPUTF8 can deliver it anyway.
    address = (email if email.isascii() else f"{local}@{_ascii_domain(domain)}").encode("utf-8")
    if name:
        name = " ".join(_CONTROL.sub(" ", name).split())[:MAX_NAME]
    if not name:
        return address
    if not name.isascii():
        words = _encoded_words(name)
        space = " " if len(words[-1]) + len(address) < 70 else "\r\n "
        return ("\r\n ".join(words) + space + "<").encode("ascii") + address + b">"
    if _SPECIALS.search(name):  # as email.utils.formataddr quotes
        name = '"' + _ESCAPES.sub(r"\\\g<0>", name) + '"'
    return name.encode("ascii") + b" <" + address + b">"


def _encoded_words(text: str) -> list[str]:
    """RFC 2047 base64 words of 68 characters at most, never splitting a character."""
    chunks = []
    chunk = b""
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > 42:  # 42 bytes -> 56 base64 characters -> a 68-character word
            chunks.append(chunk)
            chunk = b""
        chunk += data
    chunks.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?=" for chunk in chunks]


@lru_cache(maxsize=4096)
def _ascii_domain(domain: str) -> str:
    """An internationalised domain in its ASCII (punycode) form, for headers that must be ASCII."""
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise ValueError(f"not a valid domain: {domain!r} ({error})") from None


def _one_line(value: str) -> str:
    """Control characters, CR and LF above all, become spaces: a value cannot start a header."""
    return _CONTROL.sub(" ", value).strip()


_date_cache: tuple[int, str] = (0, "")


def _now() -> str:
    """RFC 5322 date of this second, in UTC; formatted once a second, not once a message."""
    global _date_cache
    second = int(time.time())
    cached = _date_cache
    if cached[0] != second:
        cached = (second, format_datetime(dt.datetime.fromtimestamp(second, dt.UTC)))
        _date_cache = cached
    return cached[1]
