"""Checking one CSV row: a `Row` ready to write, or why not (`Rejected`, `profile.FieldProblem`, `Skipped`).

The rules for each detail are the member's own (`audience.profile`); what is the import's alone
lives here: how many cells a row may have, addresses repeated in the file, word lists in one cell.
A row is checked in the order of its columns' rules, so the reason given is the first problem.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from newsletter.audience import addresses, profile
from newsletter.db.models import Status
from newsletter.vocabulary import Vocabulary

# Columns our own export writes that are not member details to copy. `joined` is used for new
# members only (keeping the date from the tool a list moves from); `confirmed` is not copied.
EXPORT_ONLY = ("joined", "confirmed")
KNOWN_COLUMNS = frozenset({"email", "topics", "lists", "status", "attributes", *profile.FIELDS, *EXPORT_ONLY})
WORD_SEPARATOR = re.compile(r"[;,|]")
WORD_CACHE_LIMIT = 50_000


@dataclass(slots=True)
class Row:
    """One member as the file gives them, checked."""

    line: int
    email: str
    key: str
    hash: str
    profile: dict[str, Any]
    topics: list[str]
    lists: list[str]
    attributes: dict[str, str]
    status: Status | None
    joined: dt.datetime | None


class Rejected(Exception):
    """One row cannot be imported; the message is the reason shown in the report."""


class Skipped(Exception):
    """One row is left out on purpose (its address came earlier in the file): counted as skipped."""

    def __init__(self, email: str, reason: str) -> None:
        super().__init__(reason)
        self.email = email
        self.reason = reason


class Checker:
    """Checks the rows of one file: knows its columns, and the addresses seen so far."""

    def __init__(self, vocabulary: Vocabulary, columns: list[str], lists: tuple[str, ...]) -> None:
        self.vocabulary = vocabulary
        self.columns = columns
        self.email_index = columns.index("email")
        # Columns that are not member details are kept as attributes, named by their column.
        self.attribute_columns = [c for c in columns if c and c not in KNOWN_COLUMNS]
        self.extra_lists = list(lists)
        # 8-byte digests of every address seen: duplicates in the file are caught in ~50 MB per million.
        self.seen: set[int] = set()
        self.word_cache: dict[tuple[str, str], list[str]] = {}

    def email_cell(self, cells: list[str]) -> str:
        """The address as written in a row, for the report (empty if the row is too short)."""
        return cells[self.email_index] if len(cells) > self.email_index else ""

    def row(self, line: int, cells: list[str]) -> Row:
        """One row's cells (stripped) -> a `Row`; raises `Rejected` or `FieldProblem`, or `Skipped`
        for an address already seen (even one whose first row was rejected)."""
        if len(cells) > len(self.columns):
            raise Rejected(f"has {len(cells)} values but the header names {len(self.columns)} columns")
        values = dict(zip(self.columns, cells, strict=False))
        email, key, email_hash = self._address(values.get("email", ""))
        details = self._details(values)
        joined = values.get("joined")
        status = values.get("status")
        return Row(
            line=line,
            email=email,
            key=key,
            hash=email_hash,
            profile=details,
            joined=profile.joined(joined) if joined else None,
            status=profile.status(status) if status else None,
            topics=self._words("topics", values.get("topics", "")),
            lists=self._words("lists", values.get("lists", "")) + self.extra_lists,
            attributes=self._attributes(values),
        )

    def _address(self, cell: str) -> tuple[str, str, str]:
        """The address as stored, its key and its hash; `Skipped` if the file had it already."""
        try:
            email = addresses.normalise(cell)
        except addresses.InvalidAddress as error:
            raise Rejected(f"not an email address: {error}") from None
        email_hash = addresses.address_hash(email)
        digest = int(email_hash[:16], 16)
        if digest in self.seen:
            raise Skipped(email, "skipped: the same address as an earlier row")
        self.seen.add(digest)
        return email, addresses.key(email), email_hash

    def _details(self, values: dict[str, str]) -> dict[str, Any]:
        """The member's details the row gives; an empty cell gives none (and never blanks one)."""
        details: dict[str, Any] = {}
        for column in ("name", "organisation", "place"):
            cell = values.get(column)
            if cell:  # stripped, so never only spaces: tidied, it is not empty either
                details[column] = profile.text(column, cell)
        for column, kind in (("sector", "sectors"), ("region", "regions")):
            cell = values.get(column)
            if cell:
                details[column] = profile.word(self.vocabulary, kind, cell)
        if values.get("language"):
            details["language"] = profile.language(values["language"])
        if values.get("format"):
            details["format"] = profile.email_format(values["format"])
        return details

    def _words(self, kind: str, cell: str) -> list[str]:
        """`housing; Early years` -> slugs; the few distinct cells of a big file are parsed once."""
        cached = self.word_cache.get((kind, cell))
        if cached is not None:
            return list(cached)
        slugs = list(
            dict.fromkeys(
                profile.word(self.vocabulary, kind, word)
                for word in WORD_SEPARATOR.split(cell)
                if word.strip()
            )
        )
        if len(self.word_cache) < WORD_CACHE_LIMIT:
            self.word_cache[(kind, cell)] = slugs
        return list(slugs)

    def _attributes(self, values: dict[str, str]) -> dict[str, str]:
        """The `attributes` column (our export's JSON) and then the extra columns, which win."""
        attributes = profile.attributes(values["attributes"]) if values.get("attributes") else {}
        for column in self.attribute_columns:
            value = values.get(column)
            if value:
                attributes[column] = profile.attribute(column, value)
        return attributes
