"""Signed tokens that name a subscriber for one purpose: unsubscribe, preferences, view, bounce, submit
(the form where a member shares their work), and the subscriber pages' own (confirm a sign-up, confirm a
new address, my data).

A token is `ID.TAG.TIMESTAMP.SIGNATURE`: the subscriber id in base36, a tag of the member's own key
(`subscribers.link_key`), the time it was made and an itsdangerous HMAC-SHA1 signature salted with the
purpose, so a token made for "unsubscribe" is refused by the preferences page. It holds no address: a
forwarded email must not hand one out.

The tag ties a token to one member's row, not just to an id. Reading a token needs the member's current
key (`key_of`, a look-up by id) and refuses a token whose member is gone (erased) or whose key differs (a
row that got an old id back, by a restore or an explicit insert): such a token names somebody who is no
longer held, and must never act on whoever holds the id now. Every member gets a random key when their
row is written (16 bytes, 32 upper-case hex digits) and keeps it; erasure deletes it with the row. The tag is the
key's first 16 hex digits (64 bits): the signature already makes tokens unforgeable, so the tag only has
to tell apart two rows that share an id, and a short tag keeps a bounce address within the 64 characters
a local part may have.

Every character is in `[A-Za-z0-9._-]`, so one token fits a URL path, the local part of a VERP bounce
address (`bounces+TOKEN@domain`) and a quoted-printable body (no `=`) without escaping.

Bounce tokens are `ID.TAG.SIGNATURE`, with no timestamp: the same member always gets the same envelope
sender (SMTP MAIL FROM; the message carries no Return-Path of its own, the receiving server writes that),
so every retry of a message goes out from the same address, and a bounce that arrives weeks late still
names its member.

Delivery makes four tokens a recipient (unsubscribe, preferences, submit, bounce), so each purpose's
signer is built once per `Tokens`, and signing copies a keyed HMAC instead of deriving the key and
keying a new HMAC every time (~1.5 µs a token rather than ~3.5 µs). The tokens are exactly what a plain
`TimestampSigner(secret, salt=purpose)` makes of `ID.TAG`.

Tokens made before member keys existed (schema 0005) are `ID.TIMESTAMP.SIGNATURE` (`ID.SIGNATURE` for
bounces). `read` refuses them (`KEYLESS`, once their signature checks out); `read_keyless` reads one for
a caller that has its own rule for them (the subscriber pages keep old issues' unsubscribe and
preferences links working for the members who were there when they were sent).

The subscriber pages revoke links by time: a member who asks for new links gets a cut-off time, and
`read_timed` returns when a token was made (whole seconds) so that older ones can be refused.
`make(..., issued_at=)` dates a token at a given moment (tests make old tokens with it).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable

from itsdangerous import BadSignature, SignatureExpired, Signer, TimestampSigner
from itsdangerous.encoding import base64_encode, int_to_bytes, want_bytes

# confirm: a sign-up; email: a new address; data: the my-data page (the subscriber pages make these).
# submit: the form where a member shares their work (in every issue's footer, like preferences).
PURPOSES = ("unsubscribe", "preferences", "view", "bounce", "confirm", "email", "data", "submit")
UNTIMED = frozenset({"bounce", "click"})
KEY_DIGITS = 32  # a member's key: 16 random bytes as upper-case hex (`subscribers.link_key`)
TAG_DIGITS = 16  # how much of it a token carries

# A counted link (`count_clicks`) names a link of an issue, never a member: `LINKID.SIGNATURE`, with no
# time in it, because a link in an email must go on working for as long as the email is kept.
CLICK = "click"

TAMPERED = "tampered"
EXPIRED = "expired"
WRONG_PURPOSE = "wrong purpose"
MALFORMED = "malformed"
GONE = "gone"
KEYLESS = "keyless"

_EXPLANATIONS = {
    TAMPERED: "its signature does not match (altered, cut short, or made with another secret key)",
    EXPIRED: "it is too old",
    WRONG_PURPOSE: "it was made for something else",
    MALFORMED: "it is not a token at all",
    GONE: "the member it was made for is no longer held (erased, or their id now names another row)",
    KEYLESS: "it was made before links carried the member's key",
}
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_ID = re.compile(r"0|[1-9a-z][0-9a-z]*")
_KEY = re.compile(rf"[0-9A-F]{{{KEY_DIGITS}}}")
# ID.TAG then TIMESTAMP.SIGNATURE or SIGNATURE; before keys: ID then TIMESTAMP.SIGNATURE or SIGNATURE.
_KEYED = re.compile(rf"[0-9a-z]+\.[0-9A-F]{{{TAG_DIGITS}}}(?:\.[A-Za-z0-9_-]+){{1,2}}")
_KEYLESS = re.compile(r"[0-9a-z]+(?:\.[A-Za-z0-9_-]+){1,2}")
_PURPOSE = re.compile(r"[a-z][a-z0-9_-]*")
_CLICK = re.compile(r"[0-9a-z]+\.[A-Za-z0-9_-]+")
_MAX_TOKEN = 200

KeyOf = Callable[[int], str | None]


class BadToken(ValueError):
    """A token that does not name a subscriber for this purpose; `reason` is one of six words."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"bad token ({reason}): {_EXPLANATIONS[reason]}")
        self.reason = reason


class _KeyedHmac:
    """itsdangerous signing with the purpose's HMAC keyed once and copied for each token."""

    _mac: hmac.HMAC

    def _prime(self) -> None:
        self._mac = hmac.new(self.derive_key(), digestmod=self.digest_method)  # type: ignore[attr-defined]

    def get_signature(self, value: str | bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(want_bytes(value))
        return base64_encode(mac.digest())


class _TimedSigner(_KeyedHmac, TimestampSigner):
    """TimestampSigner.sign, keeping the timestamp's encoding for the second it names (delivery
    signs thousands of tokens a second, all with the same timestamp)."""

    _stamp: tuple[int, bytes] = (-1, b"")

    def sign(self, value: str | bytes) -> bytes:
        now = self.get_timestamp()
        second, stamp = self._stamp
        if second != now:
            stamp = base64_encode(int_to_bytes(now))
            self._stamp = (now, stamp)
        separator = want_bytes(self.sep)
        signed = want_bytes(value) + separator + stamp
        return signed + separator + self.get_signature(signed)


class _PlainSigner(_KeyedHmac, Signer):
    pass


class Tokens:
    """Makes and reads every purpose's tokens with one secret key; build once, share freely."""

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("tokens need a secret key")
        self._secret_key = secret_key
        self._checked_key: str | None = None
        self._signers: dict[str, Signer] = {}
        for purpose in PURPOSES:
            self._signer(purpose)

    def make(self, purpose: str, subscriber_id: int, key: str, issued_at: int | None = None) -> str:
        """A token naming `subscriber_id`, whose key is `key` (`Subscriber.link_key`), for `purpose`,
        to go in a link or a bounce address.

        `issued_at` (Unix seconds) dates a timed token at that moment instead of now.
        """
        if subscriber_id < 0:
            raise ValueError(f"subscriber ids are not negative: {subscriber_id}")
        if key is not self._checked_key:  # a message's tokens share one key: check it once
            if not isinstance(key, str) or not _KEY.fullmatch(key):
                raise ValueError(f"not a member's key (32 upper-case hex digits): {key!r}")
            self._checked_key = key
        signer = self._signers.get(purpose) or self._signer(purpose)
        value = f"{_base36(subscriber_id)}.{key[:TAG_DIGITS]}"
        if issued_at is None:
            return signer.sign(value).decode("ascii")
        if not isinstance(signer, TimestampSigner):
            raise ValueError(f"'{purpose}' tokens carry no timestamp")
        stamp = base64_encode(int_to_bytes(issued_at)).decode("ascii")
        return Signer.sign(signer, f"{value}.{stamp}").decode("ascii")

    def read(self, purpose: str, token: str, key_of: KeyOf, max_age: int | None = None) -> int:
        """The subscriber id in `token`, or `BadToken`.

        `key_of(id)` gives that member's current key, or None when no member has the id; a token whose
        member is gone or has another key is refused (`GONE`). `max_age` (seconds) refuses older tokens.
        """
        return self._read(purpose, token, key_of, max_age)[0]

    def read_timed(
        self, purpose: str, token: str, key_of: KeyOf, max_age: int | None = None
    ) -> tuple[int, int]:
        """The subscriber id and when the token was made (Unix seconds), or `BadToken`; as `read`.

        For timed purposes only: the subscriber pages refuse tokens made before a revocation.
        """
        if purpose in UNTIMED:
            raise ValueError(f"'{purpose}' tokens carry no timestamp")
        subscriber_id, issued_at = self._read(purpose, token, key_of, max_age)
        assert issued_at is not None
        return subscriber_id, issued_at

    def read_keyless(self, purpose: str, token: str, max_age: int | None = None) -> tuple[int, int | None]:
        """The subscriber id in a token made before member keys, and when it was made (None for an
        untimed purpose), or `BadToken`. Such a token says nothing of which member's row it was made
        for: the caller decides whether the member now holding the id may be the one."""
        issued_at, value = self._verify(purpose, token, max_age, _KEYLESS)
        if not _ID.fullmatch(value):  # signed with our key, yet not an id this class writes
            raise BadToken(MALFORMED)
        return int(value, 36), issued_at

    def make_click(self, link_id: int) -> str:
        """The token of a counted link: the link's id (`campaign_links.id`), signed for clicks only."""
        if link_id < 0:
            raise ValueError(f"link ids are not negative: {link_id}")
        return self._signer(CLICK).sign(_base36(link_id)).decode("ascii")

    def read_click(self, token: str) -> int:
        """The link id in a counted link's token, or `BadToken` (one changed by a character, or made for
        anything else, is refused)."""
        _issued_at, value = self._verify(CLICK, token, None, _CLICK)
        if not _ID.fullmatch(value):
            raise BadToken(MALFORMED)
        return int(value, 36)

    def _read(self, purpose: str, token: str, key_of: KeyOf, max_age: int | None) -> tuple[int, int | None]:
        if (
            isinstance(token, str)
            and len(token) <= _MAX_TOKEN
            and not _KEYED.fullmatch(token)
            and _KEYLESS.fullmatch(token)
        ):
            self._verify(purpose, token, max_age, _KEYLESS)  # a real token of ours, just from before keys
            raise BadToken(KEYLESS)
        issued_at, value = self._verify(purpose, token, max_age, _KEYED)
        text, _, tag = value.partition(".")
        if not _ID.fullmatch(text) or len(tag) != TAG_DIGITS:
            raise BadToken(MALFORMED)
        subscriber_id = int(text, 36)
        key = key_of(subscriber_id)
        if key is None or not hmac.compare_digest(tag, key[:TAG_DIGITS]):
            raise BadToken(GONE)
        return subscriber_id, issued_at

    def _verify(
        self, purpose: str, token: str, max_age: int | None, shape: re.Pattern[str]
    ) -> tuple[int | None, str]:
        """The token's time and its signed value (text), once the signature checks out."""
        signer = self._signers.get(purpose) or self._signer(purpose)
        if max_age is not None and purpose in UNTIMED:
            raise ValueError(f"'{purpose}' tokens carry no timestamp, so they cannot expire")
        if not isinstance(token, str) or len(token) > _MAX_TOKEN or not shape.fullmatch(token):
            raise BadToken(MALFORMED)
        issued_at: int | None = None
        try:
            if isinstance(signer, TimestampSigner):
                value, stamp = signer.unsign(token, max_age=max_age, return_timestamp=True)
                issued_at = int(stamp.timestamp())
            else:
                value = signer.unsign(token)
        except SignatureExpired:  # raised only once the signature itself has checked out
            raise BadToken(EXPIRED) from None
        except BadSignature:
            others = (other for name, other in self._signers.items() if name != purpose)
            raise BadToken(WRONG_PURPOSE if any(s.validate(token) for s in others) else TAMPERED) from None
        return issued_at, value.decode("ascii")

    def _signer(self, purpose: str) -> Signer:
        if not isinstance(purpose, str) or not _PURPOSE.fullmatch(purpose):
            raise ValueError(f"not a token purpose: {purpose!r}")
        kind = _PlainSigner if purpose in UNTIMED else _TimedSigner
        signer = kind(self._secret_key, salt=purpose, digest_method=hashlib.sha1)
        signer._prime()
        self._signers[purpose] = signer
        return signer


def _base36(number: int) -> str:
    if number < 36:
        return _DIGITS[number]
    digits = []
    while number:
        number, digit = divmod(number, 36)
        digits.append(_DIGITS[digit])
    return "".join(reversed(digits))
