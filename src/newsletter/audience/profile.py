"""The rules for a member's own details, each written once.

The import, the web forms and anything else that sets a member's details call these rules, so a
limit or a wording is changed in one place. Each rule takes a value and returns it as stored, or
raises `FieldProblem` with the words people see in an import's report. A form words some problems
its own way (it speaks to the member, not to an editor): a too-long value is a `TooLong` that gives
its `length` and `limit`.
"""

from __future__ import annotations

import datetime as dt
import json

from newsletter.db.models import Format, Status, Subscriber
from newsletter.vocabulary import Vocabulary, language_tag

# The details an import may set on a member, besides the address, status, topics, lists and attributes.
FIELDS = ("name", "organisation", "sector", "region", "place", "language", "format")
# The longest text each column holds, read from the table so the two cannot drift apart (200 each).
TEXT_LIMITS: dict[str, int] = {
    column: Subscriber.__table__.c[column].type.length for column in ("name", "organisation", "place")
}
LANGUAGE_LIMIT: int = Subscriber.__table__.c.language.type.length  # 20
# An extra column of an import, kept as an attribute: long enough for a note, not for a document.
ATTRIBUTE_LIMIT = 1000
# A value quoted in a message is cut to this, so one bad cell cannot make a 10,000-character reason.
QUOTE_LIMIT = 60
_COLUMN = {"sectors": "sector", "regions": "region"}  # the column a word list fills


class FieldProblem(ValueError):
    """A value that breaks one rule; `str(problem)` is the message, `field` the detail it is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class TooLong(FieldProblem):
    """A value over its limit; `length` and `limit` let a form word it its own way."""

    def __init__(self, field: str, length: int, limit: int) -> None:
        super().__init__(field, f"{field} is {length} characters; at most {limit}")
        self.length = length
        self.limit = limit


def tidy(value: str) -> str:
    """One line: line breaks, tabs and runs of spaces become one space (a name is shown on one line,
    and a spreadsheet cell or a pasted form field may hold any of them)."""
    return " ".join(value.split())


def within(field: str, value: str, limit: int) -> str:
    """`value` if it has at most `limit` characters, else `TooLong`."""
    if len(value) > limit:
        raise TooLong(field, len(value), limit)
    return value


def text(field: str, value: str) -> str:
    """Name, organisation or place: tidied to one line, then at most `TEXT_LIMITS[field]` characters
    (`within` written out: an import calls this for three cells of every row)."""
    tidied = tidy(value)
    if len(tidied) > TEXT_LIMITS[field]:
        raise TooLong(field, len(tidied), TEXT_LIMITS[field])
    return tidied


def language(value: str) -> str:
    """A BCP 47 language tag such as en-GB or cy (`vocabulary.language_tag`, the rule issues are held to
    too), in its usual case: templates put it in the email's `lang`, and the column holds 20."""
    tag = language_tag(value) if len(value) <= LANGUAGE_LIMIT else None
    if tag is None:
        raise FieldProblem("language", f"language must be a tag such as en-GB or cy, not '{_quote(value)}'")
    return tag


def email_format(value: str, *, exact: bool = False) -> Format:
    """html or text. Spreadsheets write HTML or Text, so any case is taken unless `exact` (a form
    sends one of its own values, and anything else did not come from the form)."""
    try:
        return Format(value if exact else value.lower())
    except ValueError:
        raise FieldProblem("format", f"format must be html or text, not '{value}'") from None


def status(value: str) -> Status:
    """One of the statuses (any case): active, pending, unsubscribed, bounced, complained."""
    try:
        return Status(value.lower())
    except ValueError:
        raise FieldProblem(
            "status", f"status '{value}' is not one of {', '.join(s.value for s in Status)}"
        ) from None


def joined(value: str) -> dt.datetime:
    """When the member joined, as an ISO date or time; stored in UTC without a zone, so a time given
    with an offset is converted, not cut."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise FieldProblem("joined", f"joined must be a date (YYYY-MM-DD), not '{_quote(value)}'") from None
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def word(vocabulary: Vocabulary, kind: str, value: str) -> str:
    """A sector, region, topic or list (`kind` names the word list), given as its slug or its name in
    any case -> its slug. Only the network's own words are allowed, so segments can find members."""
    slug = vocabulary.lookup(kind, value)
    if slug is None:
        raise FieldProblem(_COLUMN.get(kind, kind), vocabulary.unknown(kind, value))
    return slug


def attributes(value: str) -> dict[str, str]:
    """The `attributes` column as our export writes it: a JSON object, its keys and values kept as text."""
    try:
        loaded = json.loads(value)
    except json.JSONDecodeError:
        raise FieldProblem(
            "attributes", "attributes must be JSON, as `newsletter subscribers export` writes it"
        ) from None
    if not isinstance(loaded, dict):
        raise FieldProblem("attributes", "attributes must be a JSON object")
    return {str(key): str(item) for key, item in loaded.items()}


def attribute(name: str, value: str) -> str:
    """One attribute (an extra column of an import): at most `ATTRIBUTE_LIMIT` characters."""
    return within(name, value, ATTRIBUTE_LIMIT)


def _quote(value: str) -> str:
    """A value as a message quotes it: cut to `QUOTE_LIMIT` characters."""
    return value if len(value) <= QUOTE_LIMIT else value[: QUOTE_LIMIT - 1] + "…"
