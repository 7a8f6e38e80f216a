"""Signed subscriber tokens: they read back, and refuse every other purpose, secret, member key, age and
shape; tokens from before member keys are told apart and read only on request."""

from __future__ import annotations

import re
import time

import pytest
from itsdangerous import Signer, TimestampSigner

from newsletter.db.models import new_link_key
from newsletter.tokens import PURPOSES, BadToken, Tokens

SECRET = "a-secret-key-for-the-token-tests"
LOCAL_PART_SAFE = re.compile(r"[A-Za-z0-9._-]+")
KEY = "0123456789ABCDEF" * 2  # a member's key (`Subscriber.link_key`)
TAG = KEY[:16]


def key_of(subscriber_id: int) -> str:
    """Every member in these tests has the same key."""
    return KEY


@pytest.fixture(scope="module")
def tokens() -> Tokens:
    return Tokens(SECRET)


def reason(tokens: Tokens, purpose: str, token: object, **kwargs) -> str:
    with pytest.raises(BadToken) as caught:
        tokens.read(purpose, token, kwargs.pop("key_of", key_of), **kwargs)  # type: ignore[arg-type]
    assert caught.value.reason in str(caught.value)
    return caught.value.reason


@pytest.mark.parametrize("purpose", PURPOSES)
@pytest.mark.parametrize("subscriber_id", [0, 1, 35, 36, 123_456, 2**40])
def test_round_trip(tokens, purpose, subscriber_id):
    assert tokens.read(purpose, tokens.make(purpose, subscriber_id, KEY), key_of) == subscriber_id


@pytest.mark.parametrize("purpose", PURPOSES)
def test_token_fits_a_url_path_and_an_email_local_part(tokens, purpose):
    token = tokens.make(purpose, 987_654_321, KEY)
    assert LOCAL_PART_SAFE.fullmatch(token)
    assert "@" not in token and "=" not in token and ".." not in token
    assert not token.startswith(".") and not token.endswith(".")
    assert len(token) <= 62


def test_a_bounce_address_stays_within_the_64_characters_of_a_local_part(tokens):
    assert len(f"bounces+{tokens.make('bounce', 36**5 - 1, KEY)}") <= 64


def test_token_holds_the_id_and_a_tag_of_the_key_and_nothing_else(tokens):
    token = tokens.make("unsubscribe", 123_456, KEY)
    identifier, tag, *_ = token.split(".")
    assert int(identifier, 36) == 123_456
    assert tag == TAG and KEY not in token
    assert len(token.split(".")) == 4  # id, tag, timestamp, signature


def test_tokens_are_plain_itsdangerous_salted_by_purpose(tokens):
    """What the web pages could check with itsdangerous alone."""
    timed = tokens.make("preferences", 42, KEY)
    assert TimestampSigner(SECRET, salt="preferences").unsign(timed) == f"16.{TAG}".encode()
    bounce = tokens.make("bounce", 42, KEY)
    assert Signer(SECRET, salt="bounce").unsign(bounce) == f"16.{TAG}".encode()


def test_bounce_tokens_are_the_same_every_time(tokens):
    """So every retry of a message has the same envelope sender (MAIL FROM), and a late bounce names its member."""
    assert tokens.make("bounce", 7, KEY) == tokens.make("bounce", 7, KEY)
    assert len(tokens.make("bounce", 7, KEY).split(".")) == 3


@pytest.mark.parametrize("purpose", PURPOSES)
def test_a_token_names_one_members_row_not_just_an_id(tokens, purpose):
    """The member was erased (no key), or the id now names another row (another key): gone."""
    token = tokens.make(purpose, 42, KEY)
    assert reason(tokens, purpose, token, key_of=lambda _: None) == "gone"
    assert reason(tokens, purpose, token, key_of=lambda _: new_link_key()) == "gone"
    asked = []
    tokens.read(purpose, token, lambda found: asked.append(found) or KEY)
    assert asked == [42]


def test_the_key_is_looked_up_only_once_the_signature_checks_out(tokens):
    *head, signature = tokens.make("unsubscribe", 42, KEY).split(".")
    broken = ".".join([*head, ("A" if signature[0] != "A" else "B") + signature[1:]])
    assert reason(tokens, "unsubscribe", broken, key_of=lambda _: pytest.fail("looked up")) == "tampered"


@pytest.mark.parametrize("key", ["0123456789abcdef" * 2, KEY[:-1], KEY + "0", "", None, 42, "G" * 32])
def test_make_needs_a_members_key(tokens, key):
    with pytest.raises(ValueError, match="key"):
        tokens.make("unsubscribe", 42, key)


@pytest.mark.parametrize("purpose", PURPOSES)
def test_tokens_made_before_member_keys_are_told_apart(tokens, purpose):
    """`ID.TIMESTAMP.SIGNATURE` (`ID.SIGNATURE` for bounces), as plain itsdangerous made them before:
    `read` refuses them as keyless; `read_keyless` reads them for a caller with a rule of its own."""
    signer = (Signer if purpose == "bounce" else TimestampSigner)(SECRET, salt=purpose)
    old = signer.sign("16").decode()
    assert reason(tokens, purpose, old, key_of=lambda _: pytest.fail("looked up")) == "keyless"
    subscriber_id, issued_at = tokens.read_keyless(purpose, old)
    assert subscriber_id == 42
    assert (issued_at is None) == (purpose == "bounce")
    # Tampered or for another purpose, they are refused as any other token is.
    changed = old[:-3] + ("AAA" if not old.endswith("AAA") else "BBB")
    assert reason(tokens, purpose, changed) == "tampered"
    with pytest.raises(BadToken) as caught:
        tokens.read_keyless(purpose, changed)
    assert caught.value.reason == "tampered"
    with pytest.raises(BadToken) as caught:  # a keyed token is not a keyless one
        tokens.read_keyless(purpose, tokens.make(purpose, 42, KEY))
    assert caught.value.reason in {"malformed", "tampered"}


@pytest.mark.parametrize("made_for", PURPOSES)
@pytest.mark.parametrize("read_as", PURPOSES)
def test_wrong_purpose(tokens, made_for, read_as):
    if made_for == read_as:
        return
    assert reason(tokens, read_as, tokens.make(made_for, 42, KEY)) == "wrong purpose"


def test_a_purpose_of_our_own_is_salted_too(tokens):
    token = tokens.make("confirm", 5, KEY)
    assert tokens.read("confirm", token, key_of) == 5
    assert reason(tokens, "unsubscribe", token) == "wrong purpose"


def test_tampered_signature(tokens):
    # Change the signature's first character: every bit of it counts (the last base64 character
    # carries padding bits, so changing it can leave the signature the same).
    *head, signature = tokens.make("unsubscribe", 42, KEY).split(".")
    changed = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert reason(tokens, "unsubscribe", ".".join([*head, changed])) == "tampered"


def test_tampered_id(tokens):
    """Another member's id under a valid signature: the signature covers the id."""
    token = tokens.make("unsubscribe", 42, KEY)
    assert reason(tokens, "unsubscribe", "17" + token[2:]) == "tampered"


def test_tampered_tag(tokens):
    """Another key's tag under a valid signature: the signature covers the tag."""
    identifier, tag, stamp, signature = tokens.make("unsubscribe", 42, KEY).split(".")
    other = ("F" if tag[0] != "F" else "E") + tag[1:]
    assert reason(tokens, "unsubscribe", f"{identifier}.{other}.{stamp}.{signature}") == "tampered"


def test_tampered_timestamp(tokens):
    identifier, tag, stamp, signature = tokens.make("unsubscribe", 42, KEY).split(".")
    other = "A" + stamp[1:] if stamp[0] != "A" else "B" + stamp[1:]
    assert reason(tokens, "unsubscribe", f"{identifier}.{tag}.{other}.{signature}") == "tampered"


@pytest.mark.parametrize("keep", [1, 2, 5, 8, 12, 20, 25, 30, -1])
def test_truncated(tokens, keep):
    token = tokens.make("preferences", 123_456, KEY)
    assert reason(tokens, "preferences", token[:keep]) in {"tampered", "malformed"}


def test_other_secret_is_refused_both_ways(tokens):
    other = Tokens("a-different-secret-key")
    for purpose in PURPOSES:
        assert reason(other, purpose, tokens.make(purpose, 42, KEY)) == "tampered"
        assert reason(tokens, purpose, other.make(purpose, 42, KEY)) == "tampered"


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
    for value in (f"016.{TAG}", f"1G.{TAG}"):
        forged = TimestampSigner(SECRET, salt="view").sign(value).decode()
        assert reason(tokens, "view", forged) == "malformed"
    forged = TimestampSigner(SECRET, salt="view").sign("016").decode()  # from before member keys
    with pytest.raises(BadToken) as caught:
        tokens.read_keyless("view", forged)
    assert caught.value.reason == "malformed"


def test_max_age(tokens, monkeypatch):
    hour_ago = int(time.time()) - 3600
    with monkeypatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda self: hour_ago)
        old = tokens.make("preferences", 42, KEY)
    assert reason(tokens, "preferences", old, max_age=60) == "expired"
    assert tokens.read("preferences", old, key_of, max_age=7200) == 42
    assert tokens.read("preferences", old, key_of) == 42  # no max_age: no expiry
    fresh = tokens.make("preferences", 42, KEY)
    assert tokens.read("preferences", fresh, key_of, max_age=60) == 42


def test_expired_but_tampered_is_tampered(tokens, monkeypatch):
    """An old token with a broken signature must not be reported as merely old."""
    with monkeypatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 3600)
        old = tokens.make("preferences", 42, KEY)
    *head, signature = old.split(".")
    broken = ".".join([*head, ("A" if signature[0] != "A" else "B") + signature[1:]])
    assert reason(tokens, "preferences", broken, max_age=60) == "tampered"


def test_bounce_tokens_cannot_be_asked_to_expire(tokens):
    with pytest.raises(ValueError, match="no timestamp"):
        tokens.read("bounce", tokens.make("bounce", 1, KEY), key_of, max_age=60)


def test_programming_errors_are_not_bad_tokens(tokens):
    with pytest.raises(ValueError):
        tokens.make("unsubscribe", -1, KEY)
    for purpose in ["", "Unsubscribe", "un subscribe", "bounce@"]:
        with pytest.raises(ValueError, match="purpose"):
            tokens.make(purpose, 1, KEY)
    with pytest.raises(ValueError):
        Tokens("")
    assert issubclass(BadToken, ValueError)
