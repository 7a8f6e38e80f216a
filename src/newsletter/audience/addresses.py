"""Email addresses: one normal form, one key, one hash.

email-validator (syntax only, no DNS) is the judge of what an address is.
It costs ~30 µs an address, which alone would eat half the budget of a
1,000,000-row import, so the common case takes a fast path that gives the
same answer: an ASCII address whose local part is a dot-atom that
email-validator keeps as written (not a role name such as postmaster, which it
lower-cases) and whose domain is validated once per distinct domain and
remembered.
Anything else goes to email-validator whole. A test holds the two paths to
the same results.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
DOT_ATOM = re.compile(rf"{ATEXT}+(?:\.{ATEXT}+)*")
MAX_LOCAL = 64
MAX_ADDRESS = 254
ROLE_MAILBOXES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


class InvalidAddress(ValueError):
    """Not an email address; the message says why in plain words."""


def normalise(raw: str) -> str:
    """The address as we store it (domain in lower case), or `InvalidAddress`."""
    address = raw.strip()
    local, at, domain = address.rpartition("@")
    if (
        at
        and address.isascii()  # so characters are bytes, and IDNA cannot lengthen the domain
        and len(address) <= MAX_ADDRESS
        and len(local) <= MAX_LOCAL
        and DOT_ATOM.fullmatch(local)
        and local.lower() not in ROLE_MAILBOXES  # email-validator lower-cases postmaster@ and friends
    ):
        return f"{local}@{_domain(domain)}"
    return _full(address)


def key(address: str) -> str:
    """What makes two addresses the same member: the normalised address in lower case."""
    return address.lower()


def mailbox(address: str) -> str:
    """The inbox an address reaches, for counting mail sent to it: the key without a `+tag` on the local
    part (`jo+news@example.org` and `Jo@example.org` are one inbox at most providers), so rate limits
    cannot be slipped by tagging one mailbox many ways. Never used to tell members apart."""
    local, at, domain = key(address).rpartition("@")
    name, plus, _ = local.partition("+")
    return f"{name if name and plus else local}{at}{domain}"


def address_hash(address: str) -> str:
    """SHA-256 of the key: what a suppression keeps once the address itself is gone."""
    return hashlib.sha256(key(address).encode("utf-8")).hexdigest()


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def normalise_domain(domain: str) -> str:
    """A domain as addresses store it (lower case, internationalised names in Unicode form)."""
    return _domain(domain.strip().lower())


@lru_cache(maxsize=65536)
def _domain(domain: str) -> str:
    """Validate a domain once: email-validator on a stand-in local part, result remembered."""
    return _full(f"a@{domain}").rpartition("@")[2]


def _full(address: str) -> str:
    if not address:
        raise InvalidAddress("no email address")
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise InvalidAddress(str(error)) from None
