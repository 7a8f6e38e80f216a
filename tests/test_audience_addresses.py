"""The address fast path gives exactly email-validator's answer: same normal form, same refusals."""

from __future__ import annotations

import hashlib

import pytest
from email_validator import EmailNotValidError, validate_email

from newsletter.audience.addresses import InvalidAddress, address_hash, domain_of, key, mailbox, normalise

LONG_DOMAIN = "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".org"  # 189 characters
IDN_LABEL = "ü" + "a" * 35

ADDRESSES = [
    # valid, ASCII dot-atom local parts (the fast path)
    "jo@example.org",
    "Jo.Bloggs@Example.ORG",
    "JO@EXAMPLE.ORG",
    "jo+newsletter@example.org",
    "jo+tag+more@sub.example.co.uk",
    "o'neill@example.org",
    "a!#$%&'*+/=?^_`{|}~-@example.org",
    "first.middle.last@example.org",
    "x@example.org",
    "1234567890@example.org",
    "-jo@example.org",
    "=jo@example.org",
    "info.desk@example.org",
    "jo@sub-domain.example.org",
    "jo@123.example.org",
    "jo@a.co",
    "jo@example.museum",
    "a" * 64 + "@example.org",
    "a" * 64 + "@" + LONG_DOMAIN,  # 254 characters: the longest allowed
    # valid, internationalised (the full path)
    "jo@xn--mnchen-3ya.de",
    "jo@münchen.de",
    "jo@MÜNCHEN.DE",
    "josé@example.org",
    "Ünïcödé@Example.org",
    "cafe\u0301@example.org",  # decomposed é: NFC-normalised
    "用户@例子.广告",
    "jo@bücher.example",
    # invalid
    "",
    "jo",
    "@example.org",
    "jo@",
    "jo@@example.org",
    "jo@example..org",
    "jo..bloggs@example.org",
    ".jo@example.org",
    "jo.@example.org",
    "jo@.example.org",
    "jo@example.org.",
    "jo@example.123",
    "jo@123",
    "jo@localhost",
    "jo@example.local",
    "jo@test.invalid",
    "jo@[127.0.0.1]",
    "user@[127.0.0.1]",
    "jo@[IPv6:::1]",
    '"jo bloggs"@example.org',
    '"jo"@example.org',
    "jo bloggs@example.org",
    "jo@exam ple.org",
    "Jo <jo@example.org>",
    "jo(comment)@example.org",
    "jo\\@example.org",
    "jo,bloggs@example.org",
    "jo@example,org",
    "jo@-example.org",
    "jo@example-.org",
    "jo@exa_mple.org",
    "jo@xn--.org",
    "jo@" + "a" * 64 + ".org",  # a 64-character label
    "a" * 65 + "@example.org",  # 65-character local part
    "a" * 64 + "@" + LONG_DOMAIN.replace("d" * 57, "d" * 58),  # 255 characters
    "josé" + "a" * 62 + "@example.org",  # unicode local part over 64 characters
]

# Where the fast path and email-validator part company (bugs in addresses.normalise):
ROLE_MAILBOXES = ["Postmaster@Example.org", "INFO@example.org", "Abuse@example.org", "Support@example.org"]
TOO_LONG_ONCE_ENCODED = [
    # 248 characters but 253 bytes in UTF-8; 283 once the domain is IDNA-encoded
    "x" * 60 + "@" + ".".join([IDN_LABEL] * 5) + ".de",
    # 240 characters, more than 254 bytes in UTF-8
    "a" * 60 + "@" + "ü" * 50 + "." + "c" * 63 + "." + "d" * 60 + ".com",
]


def reference(address: str) -> str | None:
    """email-validator's normal form, or None when it refuses the address."""
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


@pytest.mark.parametrize("address", ADDRESSES, ids=lambda address: repr(address)[:40])
def test_normalise_agrees_with_email_validator(address):
    """Same normal form when email-validator accepts; `InvalidAddress`, with a reason, exactly when it refuses."""
    expected = reference(address)
    if expected is None:
        with pytest.raises(InvalidAddress) as error:
            normalise(address)
        assert str(error.value)
    else:
        assert normalise(address) == expected


@pytest.mark.parametrize("address", ROLE_MAILBOXES)
def test_role_mailboxes_are_normalised_like_email_validator(address):
    assert normalise(address) == reference(address)


@pytest.mark.parametrize("address", TOO_LONG_ONCE_ENCODED, ids=["idna-form-283", "utf8-bytes-over-254"])
def test_addresses_too_long_once_encoded_are_refused(address):
    assert reference(address) is None
    with pytest.raises(InvalidAddress):
        normalise(address)


def test_the_same_domain_gives_the_same_answer_every_time():
    # the fast path remembers each domain: a second look must not change the answer
    for _ in range(2):
        assert normalise("a@Sub.Example.ORG") == "a@sub.example.org"
        with pytest.raises(InvalidAddress):
            normalise("b@example.123")


def test_surrounding_spaces_of_a_cell_are_ignored():
    assert normalise("  Jo@Example.ORG\t") == "Jo@example.org"


def test_key_hash_and_domain_make_case_variants_one_member():
    assert key(normalise("Jo@Example.ORG")) == key(normalise("jo@example.org")) == "jo@example.org"
    expected = hashlib.sha256(b"jo@example.org").hexdigest()
    assert address_hash("Jo@example.org") == address_hash("jo@example.org") == expected
    assert domain_of("Jo@Trust.NHS.example") == "trust.nhs.example"


@pytest.mark.parametrize(
    ("address", "box"),
    [
        ("jo@example.org", "jo@example.org"),
        ("Jo+News@Example.org", "jo@example.org"),
        ("jo+a+b@example.org", "jo@example.org"),
        ("jo.bloggs+x@sub.example.org", "jo.bloggs@sub.example.org"),
        ("+tag@example.org", "+tag@example.org"),  # nothing before the tag: the whole local part is the box
    ],
)
def test_mailbox_counts_sub_addresses_as_one(address, box):
    assert mailbox(address) == box
