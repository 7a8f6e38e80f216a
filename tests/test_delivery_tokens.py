"""Signed subscriber tokens: they read back, and refuse every other purpose, key, age and shape."""

from __future__ import annotations

import re
import time

import pytest
from itsdangerous import Signer, TimestampSigner

from newsletter.delivery.tokens import PURPOSES, BadToken, Tokens

SECRET = "a-secret-key-for-the-token-tests"
LOCAL_PART_SAFE = re.compile(r"[A-Za-z0-9._-]+")


@pytest.fixture(scope="module")
def tokens() -> Tokens:
    return Tokens(SECRET)


def reason(tokens: Tokens, purpose: str, token: object, **kwargs) -> str:
    with pytest.raises(BadToken) as caught:
        tokens.read(purpose, token, **kwargs)  # type: ignore[arg-type]
    assert caught.value.reason in str(caught.value)
    return caught.value.reason


@pytest.mark.parametrize("purpose", PURPOSES)
@pytest.mark.parametrize("subscriber_id", [0, 1, 35, 36, 123_456, 2**40])
def test_round_trip(tokens, purpose, subscriber_id):
    assert tokens.read(purpose, tokens.make(purpose, subscriber_id)) == subscriber_id


@pytest.mark.parametrize("purpose", PURPOSES)
def test_token_fits_a_url_path_and_an_email_local_part(tokens, purpose):
    token = tokens.make(purpose, 987_654_321)
    assert LOCAL_PART_SAFE.fullmatch(token)
    assert "@" not in token and "=" not in token and ".." not in token
    assert not token.startswith(".") and not token.endswith(".")
    assert len(token) <= 45


def test_token_holds_the_id_and_nothing_else(tokens):
    token = tokens.make("unsubscribe", 123_456)
    payload = token.split(".")[0]
    assert int(payload, 36) == 123_456
    assert len(token.split(".")) == 3  # id, timestamp, signature


def test_tokens_are_plain_itsdangerous_salted_by_purpose(tokens):
    """What the web pages could check with itsdangerous alone."""
    timed = tokens.make("preferences", 42)
    assert TimestampSigner(SECRET, salt="preferences").unsign(timed) == b"16"
    bounce = tokens.make("bounce", 42)
    assert Signer(SECRET, salt="bounce").unsign(bounce) == b"16"


def test_bounce_tokens_are_the_same_every_time(tokens):
    """So every retry of a message has the same envelope sender (MAIL FROM), and a late bounce names its member."""
    assert tokens.make("bounce", 7) == tokens.make("bounce", 7)
    assert len(tokens.make("bounce", 7).split(".")) == 2


@pytest.mark.parametrize("made_for", PURPOSES)
@pytest.mark.parametrize("read_as", PURPOSES)
def test_wrong_purpose(tokens, made_for, read_as):
    if made_for == read_as:
        return
    assert reason(tokens, read_as, tokens.make(made_for, 42)) == "wrong purpose"


def test_a_purpose_of_our_own_is_salted_too(tokens):
    token = tokens.make("confirm", 5)
    assert tokens.read("confirm", token) == 5
    assert reason(tokens, "unsubscribe", token) == "wrong purpose"


def test_tampered_signature(tokens):
    # Change the signature's first character: every bit of it counts (the last base64 character
    # carries padding bits, so changing it can leave the signature the same).
    *head, signature = tokens.make("unsubscribe", 42).split(".")
    changed = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert reason(tokens, "unsubscribe", ".".join([*head, changed])) == "tampered"


def test_tampered_id(tokens):
    """Another member's id under a valid signature: the signature covers the id."""
    token = tokens.make("unsubscribe", 42)
    assert reason(tokens, "unsubscribe", "17" + token[2:]) == "tampered"


def test_tampered_timestamp(tokens):
    identifier, stamp, signature = tokens.make("unsubscribe", 42).split(".")
    other = "A" + stamp[1:] if stamp[0] != "A" else "B" + stamp[1:]
    assert reason(tokens, "unsubscribe", f"{identifier}.{other}.{signature}") == "tampered"


@pytest.mark.parametrize("keep", [1, 2, 5, 8, 12, 20, -1])
def test_truncated(tokens, keep):
    token = tokens.make("preferences", 123_456)
    assert reason(tokens, "preferences", token[:keep]) in {"tampered", "malformed"}


def test_other_secret_is_refused_both_ways(tokens):
    other = Tokens("a-different-secret-key")
    for purpose in PURPOSES:
        assert reason(other, purpose, tokens.make(purpose, 42)) == "tampered"
        assert reason(tokens, purpose, other.make(purpose, 42)) == "tampered"


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "garbage",
        ".",
        "...",
        "a.b",
        "16..sig",
        "16.awMd7g.sig.extra",
        "16.awMd7g.sig=",
        "16.awMd7g.sig with space",
        "16.awMd7g.sïg",
        "16\r\n.awMd7g.sig",
        "x" * 1000,
        "1." + "a" * 1000,
        None,
        42,
    ],
)
def test_garbage(tokens, garbage):
    assert reason(tokens, "unsubscribe", garbage) in {"malformed", "tampered"}


def test_signed_but_not_an_id_we_write(tokens):
    """Leading zeros or upper case would give two tokens one id; only the canonical form is read."""
    forged = TimestampSigner(SECRET, salt="view").sign("016").decode()
    assert reason(tokens, "view", forged) == "malformed"


def test_max_age(tokens, monkeypatch):
    hour_ago = int(time.time()) - 3600
    with monkeypatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda self: hour_ago)
        old = tokens.make("preferences", 42)
    assert reason(tokens, "preferences", old, max_age=60) == "expired"
    assert tokens.read("preferences", old, max_age=7200) == 42
    assert tokens.read("preferences", old) == 42  # no max_age: no expiry
    fresh = tokens.make("preferences", 42)
    assert tokens.read("preferences", fresh, max_age=60) == 42


def test_expired_but_tampered_is_tampered(tokens, monkeypatch):
    """An old token with a broken signature must not be reported as merely old."""
    with monkeypatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 3600)
        old = tokens.make("preferences", 42)
    *head, signature = old.split(".")
    broken = ".".join([*head, ("A" if signature[0] != "A" else "B") + signature[1:]])
    assert reason(tokens, "preferences", broken, max_age=60) == "tampered"


def test_bounce_tokens_cannot_be_asked_to_expire(tokens):
    with pytest.raises(ValueError, match="no timestamp"):
        tokens.read("bounce", tokens.make("bounce", 1), max_age=60)


def test_programming_errors_are_not_bad_tokens(tokens):
    with pytest.raises(ValueError):
        tokens.make("unsubscribe", -1)
    for purpose in ["", "Unsubscribe", "un subscribe", "bounce@"]:
        with pytest.raises(ValueError, match="purpose"):
            tokens.make(purpose, 1)
    with pytest.raises(ValueError):
        Tokens("")
    assert issubclass(BadToken, ValueError)
