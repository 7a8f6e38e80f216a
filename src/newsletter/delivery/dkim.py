"""DKIM signatures (RFC 6376) at OpenSSL's speed, so Gmail and Yahoo show the one-click unsubscribe.

Bulk senders must sign with DKIM and the signature must cover `List-Unsubscribe` and
`List-Unsubscribe-Post` (RFC 8058 section 4). dkimpy does the RSA operation in pure Python (about 15 ms
a message); here the private-key operation goes through `cryptography` (OpenSSL, about 0.4 ms for
RSA-2048) and the rest is a few bytes operations:

* relaxed header and body canonicalisation (RFC 6376 sections 3.4.2 and 3.4.4), tested byte for byte
  against dkimpy's;
* the body hash, once per message, shared by both signatures;
* an RSA-SHA256 signature and, when an Ed25519 key is given, a second Ed25519-SHA256 one (RFC 8463
  section 3: "sign with both", so receivers that know Ed25519 can use it and the rest use RSA).

Keys are loaded once (`DkimKey.load`), checked for type and size, and any problem with a key file is a
`UserError` naming the file, before anything is sent.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from newsletter.delivery.message import sender_domain
from newsletter.delivery.transport import written_data
from newsletter.errors import UserError, display_path
from newsletter.settings import Settings

__all__ = [
    "MIN_RSA_BITS",
    "OVERSIGNED_HEADERS",
    "SIGNED_HEADERS",
    "DkimKey",
    "Signer",
    "Template",
    "canonical_body",
    "canonical_header",
]

# The headers each signature covers, in this order where the message has them. From is listed once more
# than it occurs ("oversigning"): the extra entry signs its absence, so a second From added on the way
# breaks the signature instead of being shown to the reader. List-Unsubscribe and List-Unsubscribe-Post
# must be covered for the one-click unsubscribe (RFC 8058 section 4).
SIGNED_HEADERS: tuple[str, ...] = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
)
OVERSIGNED_HEADERS: tuple[str, ...] = ("From",)
MIN_RSA_BITS = 2048  # RFC 8301 section 3.2; what Gmail and Yahoo expect
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"  # one label of a DNS name
_SELECTOR = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
MAX_LINE = 76  # characters of a DKIM-Signature line, under the 78 of RFC 5322 section 2.1.1
MAX_LAYOUTS = 64  # signed-field sequences remembered (a campaign's messages share one or two)

_SIGNED = tuple(name.lower().encode("ascii") for name in SIGNED_HEADERS)
_SIGNED_SET = frozenset(_SIGNED)
_OVERSIGNED = frozenset(name.lower().encode("ascii") for name in OVERSIGNED_HEADERS)
_FIELD_START = re.compile(rb"\r\n(?![ \t])")  # a line break not followed by a continuation line
_WSP_RUN = re.compile(rb"[ \t]+")
_SPACES = re.compile(rb"  +")  # two or more


# ---------------------------------------------------------------------------------------------------------
# Canonicalisation (relaxed/relaxed)
# ---------------------------------------------------------------------------------------------------------


def canonical_header(name: bytes, value: bytes) -> bytes:
    """One header field in relaxed form (RFC 6376 section 3.4.2): what a verifier hashes for it.

    `value` is everything after the colon as written, folding included. Lower-case name, no space around
    the colon, unfolded, runs of spaces and tabs as one space, no space at either end, CRLF.
    """
    unfolded = value.replace(b"\r\n", b"")
    return name.rstrip().lower() + b":" + _WSP_RUN.sub(b" ", unfolded).strip() + b"\r\n"


def canonical_body(body: bytes) -> bytes:
    """The body in relaxed form (RFC 6376 section 3.4.4): what the body hash is taken of.

    No space or tab at the end of a line, other runs of them as one space, no empty lines at the end,
    a final CRLF; an empty body stays empty (errata 3133).
    """
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    body = _canonical_lines(body)
    end = len(body)
    while body.endswith(b"\r\n\r\n", 0, end):
        end -= 2
    return b"" if end == 2 and body.startswith(b"\r\n") else body[:end]


def _canonical_lines(text: bytes) -> bytes:
    """Relaxed body canonicalisation within lines: runs of spaces and tabs as one space, none at a line's end.

    Tabs become spaces, runs of spaces one, then the one space left before a line break goes. Done as
    bytes.replace and a regex that starts with a literal (both scan at memory speed); a regex for every
    space or tab would stop at each of the thousands of single spaces in a body.
    """
    if b"\t" in text:
        text = text.replace(b"\t", b" ")
    if b"  " in text:
        text = _SPACES.sub(b" ", text)
    return text.replace(b" \r\n", b"\r\n")


def _split(message: bytes) -> tuple[list[bytes], bytes]:
    """The header fields (each with its folding, without the final CRLF) and the body of a message."""
    if message.startswith(b"\r\n"):
        return [], message[2:]
    end = message.find(b"\r\n\r\n")
    if end < 0:
        head, body = message.removesuffix(b"\r\n"), b""
    else:
        head, body = message[:end], message[end + 4 :]
    return _FIELD_START.split(head), body


# ---------------------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DkimKey:
    """A private key read once from a PEM file: RSA of 2048 bits or more, or Ed25519."""

    path: Path
    private_key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

    @classmethod
    def load(cls, path: Path | str) -> DkimKey:
        """Read and check the key, turning every problem into one sentence naming the file."""
        path = Path(path)
        shown = display_path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise UserError(f"DKIM key file {shown} does not exist.") from None
        except OSError as error:
            raise UserError(f"DKIM key file {shown} cannot be read: {error.strerror or error}.") from None
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except TypeError:
            raise UserError(
                f"DKIM key file {shown} is protected by a password; the key must be stored without one."
            ) from None
        except (ValueError, UnsupportedAlgorithm):
            raise UserError(f"DKIM key file {shown} does not hold a PEM private key.") from None
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < MIN_RSA_BITS:
                raise UserError(
                    f"DKIM key file {shown} holds a {key.key_size}-bit RSA key; "
                    f"receivers require at least {MIN_RSA_BITS} bits."
                )
        elif not isinstance(key, ed25519.Ed25519PrivateKey):
            raise UserError(
                f"DKIM key file {shown} holds a {type(key).__name__.removeprefix('_')} key; "
                "DKIM signs with RSA (2048 bits or more) or Ed25519."
            )
        return cls(path, key)

    @property
    def key_type(self) -> str:
        """The k= of the DNS record: 'rsa' or 'ed25519'."""
        return "rsa" if isinstance(self.private_key, rsa.RSAPrivateKey) else "ed25519"

    @property
    def algorithm(self) -> bytes:
        """The a= of a signature made with this key."""
        return b"rsa-sha256" if self.key_type == "rsa" else b"ed25519-sha256"

    def public_key_base64(self) -> str:
        """The p= of the DNS record: DER SubjectPublicKeyInfo for RSA, the raw 32 bytes for Ed25519."""
        public = self.private_key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            data = public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        else:
            data = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(data).decode("ascii")

    def dns_record(self) -> str:
        """The TXT record to publish at `selector._domainkey.domain` (RFC 6376 section 3.6.1, RFC 8463)."""
        return f"v=DKIM1; k={self.key_type}; p={self.public_key_base64()}"

    def sign_header_data(self, data: bytes) -> bytes:
        """The signature over the canonical header data: RSA PKCS#1 v1.5 with SHA-256, or Ed25519 of the
        data's SHA-256 hash (RFC 8463 section 3)."""
        key = self.private_key
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return key.sign(hashlib.sha256(data).digest())


def generate_key(path: Path | str, kind: str = "rsa") -> DkimKey:
    """Write a new private key (RSA-2048, or Ed25519 with kind="ed25519") as a PEM file of mode 0600.

    The file is created with that mode, so the key is never readable by others even for a moment, and
    never replaces an existing file (a key in use would be lost, and every record published for it)."""
    path = Path(path)
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)
    else:
        raise ValueError(f"unknown key kind {kind!r}")
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    shown = display_path(path)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UserError(
            f"{shown} already exists; a key is never overwritten (its record may be published). "
            "Choose another selector or --out FILE."
        ) from None
    except OSError as error:
        raise UserError(f"DKIM key file {shown} cannot be written: {error.strerror or error}.") from None
    try:
        os.fchmod(descriptor, 0o600)  # whatever the umask
        with os.fdopen(descriptor, "wb") as out:
            out.write(pem)
    except OSError as error:
        path.unlink(missing_ok=True)
        raise UserError(f"DKIM key file {shown} cannot be written: {error.strerror or error}.") from None
    return DkimKey(path, key)


# ---------------------------------------------------------------------------------------------------------
# Signing
# ---------------------------------------------------------------------------------------------------------


class Signer:
    """Signs whole messages for one domain: RSA-SHA256 first, then Ed25519-SHA256 when given a key.

    Each key needs its own selector, since a DNS name publishes one key: the Ed25519 one defaults to
    `<selector>-ed25519`.
    """

    def __init__(
        self,
        domain: str,
        selector: str,
        rsa_key: DkimKey,
        ed25519_key: DkimKey | None = None,
        *,
        ed25519_selector: str | None = None,
    ) -> None:
        if rsa_key.key_type != "rsa":
            raise UserError(f"DKIM key file {display_path(rsa_key.path)} must hold an RSA key.")
        if ed25519_key is not None and ed25519_key.key_type != "ed25519":
            raise UserError(f"DKIM key file {display_path(ed25519_key.path)} must hold an Ed25519 key.")
        self.domain = domain
        self.selector = selector
        self.ed25519_selector = ed25519_selector or f"{selector}-ed25519"
        self.keys: list[tuple[str, DkimKey]] = [(selector, rsa_key)]
        if ed25519_key is not None:
            self.keys.append((self.ed25519_selector, ed25519_key))
        self._layouts: dict[tuple[bytes, ...], _Layout] = {}
        # The tags before h= never change: prepared once per key.
        self._fixed_tags = [
            (
                [
                    b"v=1",
                    b"a=" + key.algorithm,
                    b"c=relaxed/relaxed",
                    b"d=" + domain.encode("ascii"),
                    b"s=" + key_selector.encode("ascii"),
                ],
                key,
            )
            for key_selector, key in self.keys
        ]

    def dns_records(self) -> dict[str, list[str]]:
        """The TXT records to publish for this signer's keys, by DNS name."""
        return {f"{selector}._domainkey.{self.domain}": [key.dns_record()] for selector, key in self.keys}

    def sign(self, message: bytes, timestamp: int | None = None) -> bytes:
        """The message (CRLF lines) with its DKIM-Signature header(s) put in front.

        `timestamp` is the t= tag (seconds since the epoch), now when not given.
        """
        return self.headers(message, timestamp) + message

    def headers(self, message: bytes, timestamp: int | None = None) -> bytes:
        """The DKIM-Signature header(s) for the message, to put in front of it (what `sign` adds)."""
        fields, body = _split(message)
        return self._headers_for(fields, hashlib.sha256(canonical_body(body)), timestamp)

    def template(self, parts: Sequence[bytes], personal: Collection[int]) -> Template | None:
        """What signing many messages cut from one template can do once (see `Template`); None when the
        template's layout does not allow it (then sign each whole message with `headers`)."""
        return Template.prepare(self, parts, frozenset(personal))

    def _headers_for(
        self,
        fields: list[bytes],
        body_hash: Any,
        timestamp: int | None,
        known: dict[bytes, tuple[bytes, bytes] | None] | None = None,
    ) -> bytes:
        """The DKIM-Signature header(s) for these header fields and the body's SHA-256 (fed, not finished).

        `known` holds fields whose signed form is already known (a template's static ones)."""
        bh = base64.b64encode(body_hash.digest())
        names: list[bytes] = []
        canonical: list[bytes] = []
        for field in fields:
            signed = known.get(field, _UNKNOWN) if known is not None else _UNKNOWN
            if signed is _UNKNOWN:
                signed = _signed_field(field)
            if signed is not None:
                names.append(signed[0])
                canonical.append(signed[1])
        layout = self._layouts.get(tuple(names))
        if layout is None:
            layout = self._layout(tuple(names))
        header_data = b"".join([canonical[index] for index in layout.order])
        when = str(int(time.time()) if timestamp is None else timestamp).encode("ascii")
        tail = b" t=" + when + b"; bh=" + bh + b";"  # one line, 63 characters
        headers = []
        for folded, canonical_start, key in layout.starts:
            signature = key.sign_header_data(header_data + canonical_start + tail + b" b=")
            headers.append(folded + b"\r\n" + tail + b"\r\n b=" + _folded_base64(signature, MAX_LINE - 3))
        return b"".join(headers)

    def _layout(self, names: tuple[bytes, ...]) -> _Layout:
        """How messages with these signed fields (in this order) are signed, worked out once."""
        order: list[int] = []
        listed: list[bytes] = []
        for signed in _SIGNED:
            positions = [index for index, name in enumerate(names) if name == signed]
            # Verifiers pick instances from the bottom up (RFC 6376 section 5.4.2).
            order += reversed(positions)
            listed += [signed] * (len(positions) + (signed in _OVERSIGNED))
        starts = []
        for fixed, key in self._fixed_tags:
            fold = _Folder(b"DKIM-Signature:")
            for tag in fixed:
                fold.word(tag + b";")
            pieces = (b":".join(listed) + b";").split(b":")
            fold.word(b"h=" + pieces[0] + (b":" if len(pieces) > 1 else b""))
            for index, piece in enumerate(pieces[1:], start=2):
                fold.word(piece + (b":" if index < len(pieces) else b""), glue=b"")
            folded = fold.text()
            # The relaxed form of the header up to h=, which the rest follows after one space.
            starts.append((folded, canonical_header(*folded.split(b":", 1))[:-2], key))
        if len(self._layouts) >= MAX_LAYOUTS:
            self._layouts.clear()
        layout = self._layouts[names] = _Layout(tuple(order), tuple(starts))
        return layout


@dataclass(frozen=True)
class _Layout:
    """For messages with one sequence of signed fields: the order their relaxed forms are hashed in, and
    each key's DKIM-Signature up to h= (folded, and in relaxed form), the same for every such message."""

    order: tuple[int, ...]
    starts: tuple[tuple[bytes, bytes, DkimKey], ...]


_UNKNOWN = (b"", b"")  # a field whose signed form is not known yet


def _signed_field(field: bytes) -> tuple[bytes, bytes] | None:
    """A header field's lower-case name and relaxed form when the signatures cover it, else None."""
    name, _, value = field.partition(b":")
    key = name.rstrip().lower()
    return (key, canonical_header(name, value)) if key in _SIGNED_SET else None


def _folded_base64(data: bytes, room: int) -> bytes:
    """A signature in base64 after `b=`: `room` characters on that line, then lines of MAX_LINE - 1."""
    text = base64.b64encode(data)
    lines = [text[:room]]
    for start in range(room, len(text), MAX_LINE - 1):
        lines.append(text[start : start + MAX_LINE - 1])
    return b"\r\n ".join(lines) + b"\r\n"


class Template:
    """Signing for the messages cut from one template, with its canonical body prepared once.

    A variant's messages differ only in a few personal pieces: the To, Date and Message-ID headers, the
    unsubscribe token and the links in each body part. Relaxed canonicalisation works within a line and
    within a run of spaces and tabs, so the canonical body of a message is the join of its pieces'
    canonical forms as long as no such run crosses from one piece into the next. So each static piece
    is canonicalised once here, and everything before the first personal piece of the body is hashed
    once; a member's message then costs hashing the rest of the body, its few header fields and the
    signature itself.

    The parts (and the pieces `headers` is given) are SMTP DATA, as `PreparedMessage` keeps them: each
    piece dot-stuffed on its own, the last ending with the `.` CRLF line. A personal piece this cannot
    prove safe (a space or tab, a line starting with a dot) makes that message signed the whole way,
    by `Signer.headers`: slower, never wrong.
    """

    def __init__(
        self,
        signer: Signer,
        header_pieces: int,
        head: bytes,
        prefix: Any,
        rest: list[bytes | int],
        known: dict[bytes, tuple[bytes, bytes] | None],
    ) -> None:
        self.signer = signer
        self._known = known  # the static header fields' signed forms
        self._header_pieces = header_pieces  # pieces wholly in the header, then `head` (static)
        self._head = head
        self._prefix = prefix  # SHA-256 fed with the canonical body up to the first personal piece
        self._rest = rest  # the rest of the body: canonical static bytes, or a personal piece's index

    @classmethod
    def prepare(cls, signer: Signer, parts: Sequence[bytes], personal: frozenset[int]) -> Template | None:
        """The template of `parts` (DATA form; those at `personal` differ by message), or None when its
        layout keeps a piece from being canonicalised alone: the header and body are not split by a
        static piece, a static piece meets a personal one with a space, tab or dot, the body ends with
        a personal piece or with no text after it."""
        last = len(parts) - 1
        if not parts or last in personal or not parts[last].endswith(b".\r\n"):
            return None
        for index, part in enumerate(parts):
            if index in personal:
                continue
            separator = part.find(b"\r\n\r\n")
            if separator >= 0:
                break
        else:
            return None
        head = part[:separator]
        body_parts = [part[separator + 4 :], *parts[index + 1 :]]
        body_parts[-1] = body_parts[-1][: -len(b".\r\n")]
        # The body starts a line: a stuffed dot there is taken off with the rest of the stuffing.
        body_parts[0] = _unstuffed(b"\r\n" + body_parts[0])[2:]
        pieces: list[bytes | int] = []
        for number, piece in enumerate(body_parts):
            position = index + number
            if number and position in personal:
                pieces.append(position)
                continue
            after_personal = number > 0 and position - 1 in personal
            before_personal = position + 1 in personal
            if (after_personal and piece[:1] in (b" ", b"\t", b".")) or (
                before_personal and piece[-1:] in (b" ", b"\t")
            ):
                return None
            canonical = _canonical_lines(_unstuffed(piece) if number else piece)
            if number == len(body_parts) - 1:
                canonical = canonical_body(canonical)
                if not canonical.strip(b"\r\n"):  # trailing empty lines could reach into a personal piece
                    return None
            if pieces and isinstance(pieces[-1], bytes):
                pieces[-1] += canonical
            else:
                pieces.append(canonical)
        prefix = hashlib.sha256()
        while pieces and isinstance(pieces[0], bytes):
            prefix.update(pieces.pop(0))
        # The header fields written wholly in static pieces, their signed forms worked out now. (The
        # fragments next to personal pieces are never a whole field of a message, so never looked up.)
        static_header = [part for number, part in enumerate(parts[:index]) if number not in personal]
        known = {
            field: _signed_field(_unstuffed(field))
            for part in [*static_header, head]
            for field in _FIELD_START.split(part)
        }
        return cls(signer, index, head, prefix, pieces, known)

    def headers(self, pieces: Sequence[bytes], timestamp: int | None = None) -> bytes:
        """The DKIM-Signature header(s) for the message these pieces (the template's, filled) make."""
        header = b"".join(pieces[: self._header_pieces]) + self._head
        if b"\r\n\r\n" in header or header.endswith(b"\r\n") or header.startswith(b"."):
            return self._whole(pieces, timestamp)  # a personal piece moved the end of the header
        if b"\r\n.." in header:
            header = _unstuffed(header)
        body_hash = self._prefix.copy()
        for item in self._rest:
            if item.__class__ is int:
                value = pieces[cast(int, item)]
                if b" " in value or b"\t" in value or b"\r\n." in value or value[:1] == b".":
                    return self._whole(pieces, timestamp)
                body_hash.update(value)
            else:
                body_hash.update(cast(bytes, item))
        return self.signer._headers_for(_FIELD_START.split(header), body_hash, timestamp, self._known)

    def _whole(self, pieces: Sequence[bytes], timestamp: int | None) -> bytes:
        return self.signer.headers(written_data(b"".join(pieces)), timestamp)


def _unstuffed(data: bytes) -> bytes:
    """DATA's dot-stuffing taken off the lines inside `data` (RFC 5321 section 4.5.2)."""
    return data.replace(b"\r\n..", b"\r\n.") if b"\r\n.." in data else data


class _Folder:
    """Writes header words on lines of at most MAX_LINE characters, breaking only where FWS may go."""

    def __init__(self, start: bytes) -> None:
        self._lines: list[bytes] = []
        self._line = start

    def word(self, word: bytes, glue: bytes = b" ") -> None:
        """Add a word after `glue` (a space between tags), or on a new continuation line if it does not fit."""
        if len(self._line) + len(glue) + len(word) > MAX_LINE:
            self._lines.append(self._line)
            self._line = b" " + word
        else:
            self._line += glue + word

    def text(self) -> bytes:
        return b"\r\n".join([*self._lines, self._line])


# ---------------------------------------------------------------------------------------------------------
# From the settings
# ---------------------------------------------------------------------------------------------------------


def valid_selector(selector: str) -> str:
    """The selector if it can be a DNS name's labels (it is also a file name), else a UserError."""
    if not _SELECTOR.fullmatch(selector) or len(selector) > 63 * 4:
        raise UserError(
            f"DKIM selector {selector!r} must be letters, digits and hyphens (dots between parts), "
            "for example nl2026."
        )
    return selector


def dkim_domain(settings: Settings) -> str:
    """The d= of the signatures: `dkim_domain`, else the From address's domain, in ASCII."""
    if not settings.dkim_domain:
        return sender_domain(settings)
    try:
        return settings.dkim_domain.strip().rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UserError(f"setting 'dkim_domain' is not a domain name: {settings.dkim_domain!r}") from None


def signer_for(settings: Settings) -> Signer | None:
    """The signer the settings ask for, its keys read and checked now (so a missing or weak key is one
    clear error before anything is sent); None when neither DKIM setting is set. Every way mail leaves
    (the worker, test sends, the pages' notices) and `newsletter dns` take it from here."""
    if not settings.dkim_selector and not settings.dkim_private_key:
        return None
    if not (settings.dkim_selector and settings.dkim_private_key):
        missing = "dkim_selector" if not settings.dkim_selector else "dkim_private_key"
        raise UserError(
            f"DKIM needs both dkim_selector and dkim_private_key; {missing} is not set "
            "(`newsletter dkim keygen --selector NAME` makes a key and prints both settings)."
        )
    ed25519 = DkimKey.load(Path(settings.dkim_ed25519_key)) if settings.dkim_ed25519_key else None
    return Signer(
        dkim_domain(settings),
        valid_selector(settings.dkim_selector),
        DkimKey.load(Path(settings.dkim_private_key)),
        ed25519,
        ed25519_selector=valid_selector(settings.dkim_ed25519_selector)
        if settings.dkim_ed25519_selector
        else None,
    )
