"""Who shared what: the member organisations credited in the published issues, each with its items.

An item a member organisation shared carries the organisation's name (`credit`, see
`content/model.py`). The archive lists every organisation credited in an issue it publishes, and gives
each a page of its items, newest first. Editors type the names, so two spellings that differ only in
case, spacing or punctuation ("Leeds City Council", "leeds  city council") are one organisation: its
page is keyed by the name's slug and shows the spelling of its newest item.
"""

from __future__ import annotations

import hashlib
import re
import sys
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from newsletter.render.web import slugify

if TYPE_CHECKING:
    from newsletter.archive.site import Entry

CONTRIBUTORS_PATH = "archive/contributors/"
SLUG_LENGTH = 60
DIGEST_LENGTH = 8
_LATIN = re.compile(r"[A-Za-z0-9]")


@dataclass
class Contributor:
    """One member organisation: its newest spelling and every item credited to it, newest first."""

    slug: str
    name: str
    entries: list[Entry] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"{CONTRIBUTORS_PATH}{self.slug}/"


def contributor_slug(name: str) -> str:
    """The organisation's part of its page's address: the same for every spelling of one name, and made
    of `a-z`, `0-9` and `-` alone, so it is safe in a path and a link.

    `Leeds City Council` -> `leeds-city-council`. A name over `SLUG_LENGTH` is cut at a word and keeps
    a digest of the whole, so two long names alike in their first words stay apart; a name with nothing
    the Latin alphabet can spell (one written in another script) is its digest alone (`org-1a2b3c4d`).
    """
    if not _LATIN.search(unicodedata.normalize("NFKD", name)):
        return f"org-{_digest(' '.join(name.casefold().split()))}"
    slug = slugify(name, limit=sys.maxsize)
    if len(slug) <= SLUG_LENGTH:
        return slug
    return f"{slugify(slug, limit=SLUG_LENGTH - DIGEST_LENGTH - 1)}-{_digest(slug)}"


def contributor_path(name: str) -> str:
    """The site path of the page listing what the organisation `name` shared."""
    return f"{CONTRIBUTORS_PATH}{contributor_slug(name)}/"


def contributors(entries: Iterable[Entry]) -> list[Contributor]:
    """The credited organisations of `entries` (newest first, as the site holds them), by name; each
    with its items in that order, so its page runs newest first."""
    found: dict[str, Contributor] = {}
    for entry in entries:
        name = getattr(entry.item.item, "credit", None)
        if not name:
            continue
        slug = contributor_slug(name)
        found.setdefault(slug, Contributor(slug, name)).entries.append(entry)
    return sorted(found.values(), key=lambda contributor: (contributor.name.casefold(), contributor.slug))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:DIGEST_LENGTH]
