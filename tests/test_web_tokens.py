"""What the subscriber pages add to the tokens: their own purposes, the time a token was made, and
tokens dated at a chosen time; made as plain itsdangerous would, and refused for every other purpose."""

from __future__ import annotations

import time

import pytest
from itsdangerous import TimestampSigner

from newsletter.tokens import PURPOSES, BadToken, Tokens

SECRET = "a-secret-key-for-the-web-token-tests"
KEY = "FEDCBA9876543210" * 2


def key_of(subscriber_id: int) -> str:
    return KEY


@pytest.fixture(scope="module")
def tokens() -> Tokens:
    return Tokens(SECRET)


def test_the_pages_purposes_are_known(tokens):
    assert {"confirm", "email", "data"} <= set(PURPOSES)
    for purpose in ("confirm", "email", "data"):
        for other in PURPOSES:
            if other != purpose:
                with pytest.raises(BadToken) as caught:
                    tokens.read(other, tokens.make(purpose, 7, KEY), key_of)
                assert caught.value.reason == "wrong purpose"


def test_read_timed_gives_the_id_and_when_the_token_was_made(tokens):
    before = int(time.time())
    subscriber, made = tokens.read_timed("preferences", tokens.make("preferences", 42, KEY), key_of)
    assert subscriber == 42 and before <= made <= int(time.time())


def test_a_token_dated_at_a_chosen_time_is_plain_itsdangerous(tokens):
    token = tokens.make("confirm", 42, KEY, issued_at=1_700_000_000)
    assert tokens.read_timed("confirm", token, key_of) == (42, 1_700_000_000)
    value, stamp = TimestampSigner(SECRET, salt="confirm").unsign(token, return_timestamp=True)
    assert value == f"16.{KEY[:16]}".encode() and int(stamp.timestamp()) == 1_700_000_000
    with pytest.raises(BadToken) as caught:
        tokens.read("confirm", token, key_of, max_age=3600)
    assert caught.value.reason == "expired"


def test_untimed_tokens_have_no_time(tokens):
    with pytest.raises(ValueError, match="no timestamp"):
        tokens.read_timed("bounce", tokens.make("bounce", 1, KEY), key_of)
    with pytest.raises(ValueError, match="no timestamp"):
        tokens.make("bounce", 1, KEY, issued_at=1_700_000_000)


def test_read_timed_refuses_what_read_refuses(tokens):
    *head, signature = tokens.make("data", 5, KEY).split(".")
    tampered = ".".join([*head, ("A" if signature[0] != "A" else "B") + signature[1:]])
    for bad, reason in ((tampered, "tampered"), ("nonsense", "malformed")):
        with pytest.raises(BadToken) as caught:
            tokens.read_timed("data", bad, key_of)
        assert caught.value.reason == reason
