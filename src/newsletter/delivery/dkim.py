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
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from newsletter.delivery.message import sender_domain
from newsletter.errors import UserError, display_path
from newsletter.settings import Settings

__all__ = [
    "MIN_RSA_BITS",
    "OVERSIGNED_HEADERS",
    "SIGNED_HEADERS",
    "DkimKey",
    "Signer",
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
    # Tabs become spaces, runs of spaces one, then the one space left before a line break goes. Done as
    # bytes.replace and a regex that starts with a literal (both scan at memory speed); a regex for
    # every space or tab would stop at each of the thousands of single spaces in a body.
    if b"\t" in body:
        body = body.replace(b"\t", b" ")
    if b"  " in body:
        body = _SPACES.sub(b" ", body)
    body = body.replace(b" \r\n", b"\r\n")
    end = len(body)
    while body.endswith(b"\r\n\r\n", 0, end):
        end -= 2
    return b"" if end == 2 and body.startswith(b"\r\n") else body[:end]


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
        # The tags before t= never change: prepared once per key.
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
        body_hash = base64.b64encode(hashlib.sha256(canonical_body(body)).digest())
        # The signed fields' canonical forms, each name's instances in message order.
        by_name: dict[bytes, list[bytes]] = {}
        for field in fields:
            name, _, value = field.partition(b":")
            key = name.rstrip().lower()
            if key in _SIGNED_SET:
                by_name.setdefault(key, []).append(canonical_header(name, value))
        names: list[bytes] = []
        header_data: list[bytes] = []
        for signed in _SIGNED:
            instances = by_name.get(signed, [])
            # Verifiers pick instances from the bottom up (RFC 6376 section 5.4.2).
            header_data += reversed(instances)
            names += [signed] * (len(instances) + (signed in _OVERSIGNED))
        signed_data = b"".join(header_data)
        when = str(int(time.time()) if timestamp is None else timestamp).encode("ascii")
        headers = [
            self._signature_header([*fixed, b"t=" + when], names, body_hash, key, signed_data)
            for fixed, key in self._fixed_tags
        ]
        return b"".join(headers)

    @staticmethod
    def _signature_header(
        tags: list[bytes], names: list[bytes], body_hash: bytes, key: DkimKey, signed_data: bytes
    ) -> bytes:
        """One folded DKIM-Signature header: its form with an empty b= is hashed with the signed
        headers, then the signature is written into b=."""
        fold = _Folder(b"DKIM-Signature:")
        for tag in tags:
            fold.word(tag + b";")
        names_text = b":".join(names) + b";"
        pieces = names_text.split(b":")
        fold.word(b"h=" + pieces[0] + (b":" if len(pieces) > 1 else b""))
        for index, piece in enumerate(pieces[1:], start=2):
            fold.word(piece + (b":" if index < len(pieces) else b""), glue=b"")
        fold.word(b"bh=")
        fold.breakable(body_hash + b";")
        fold.new_line(b"b=")
        unsigned = fold.text()
        _, _, value = unsigned.partition(b":")
        signature = key.sign_header_data(signed_data + canonical_header(b"DKIM-Signature", value)[:-2])
        fold.breakable(base64.b64encode(signature))
        return fold.text() + b"\r\n"


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

    def new_line(self, word: bytes) -> None:
        """Start a continuation line with `word`."""
        self._lines.append(self._line)
        self._line = b" " + word

    def breakable(self, value: bytes) -> None:
        """Add base64 text right after the current line's `tag=`, continuing on new lines as needed."""
        while value:
            room = MAX_LINE - len(self._line)
            if room <= 0:
                self._lines.append(self._line)
                self._line = b" "
                room = MAX_LINE - 1
            self._line += value[:room]
            value = value[room:]

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
