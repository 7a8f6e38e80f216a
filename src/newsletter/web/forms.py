"""Reading the subscriber forms: each field cleaned and checked, each problem tied to its field.

The pages show `values` again as they were typed (so nothing is lost) and put each message from
`errors` next to its field. Words come from the vocabulary (`subscribers/*.yaml`), so a form can only
choose what the network offers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from newsletter.audience import addresses
from newsletter.audience.membership import Profile
from newsletter.audience.profile import TEXT_LIMITS, FieldProblem, TooLong, email_format, tidy, within
from newsletter.db.models import Format
from newsletter.vocabulary import Vocabulary

MAX_EMAIL = 320
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class FormInput(Protocol):
    """What Werkzeug's `request.form` offers (a MultiDict); a plain dict of lists works in tests."""

    def get(self, key: str, default: Any = ..., /) -> Any: ...

    def getlist(self, key: str) -> list[str]: ...


@dataclass
class Checked:
    """A form as read: what was typed, and what is wrong with it, field by field."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def text(form: FormInput, name: str, checked: Checked, limit: int, required: str | None = None) -> str:
    """One line of text: control characters too (a form is typed or pasted by anyone) and runs of
    spaces become one space (`profile.tidy`, as an import does); at most `limit` (`profile.within`)."""
    value = tidy(_CONTROL.sub(" ", str(form.get(name, "") or "")))
    checked.values[name] = value
    if not value and required:
        checked.errors[name] = required
        return value
    try:
        within(name, value, limit)
    except TooLong as problem:
        checked.errors[name] = f"Please keep this to {problem.limit} characters (it has {problem.length})."
    return value


def email(form: FormInput, name: str, checked: Checked) -> str:
    """An email address as we store it (email-validator's normal form), or an error on the field."""
    raw = text(form, name, checked, MAX_EMAIL, required="Enter your email address.")
    if name in checked.errors:
        return ""
    try:
        return addresses.normalise(raw)
    except addresses.InvalidAddress as error:
        checked.errors[name] = f"Enter an email address like name@example.org ({_sentence(str(error))})"
        return ""


def profile(form: FormInput, vocabulary: Vocabulary, checked: Checked, with_format: bool) -> Profile:
    """Name, organisation, sector, region, topics, lists (and format on the preferences page)."""
    name = text(form, "name", checked, TEXT_LIMITS["name"])
    organisation = text(form, "organisation", checked, TEXT_LIMITS["organisation"])
    sector = _one_of(form, "sector", vocabulary.sectors, checked)
    region = _one_of(form, "region", vocabulary.regions, checked)
    topics = _some_of(form, "topics", vocabulary.topics, checked)
    lists = _some_of(form, "lists", vocabulary.lists, checked)
    chosen_format = Format.HTML
    if with_format:
        raw = str(form.get("format", "") or "")
        checked.values["format"] = raw
        try:
            chosen_format = email_format(raw, exact=True)  # one of the form's own two values
        except FieldProblem:
            checked.errors["format"] = "Choose how you would like the emails: designed (HTML) or plain text."
    return Profile(name, organisation, sector, region, topics, lists, chosen_format)


def sign_up(form: FormInput, vocabulary: Vocabulary) -> tuple[str, Profile, Checked]:
    """The sign-up form: an address, the profile, at least one list, and the consent box ticked."""
    checked = Checked()
    address = email(form, "email", checked)
    details = profile(form, vocabulary, checked, with_format=False)
    if not details.lists and "lists" not in checked.errors:
        checked.errors["lists"] = "Choose at least one list to join."
    checked.values["consent"] = form.get("consent") == "yes"
    if not checked.values["consent"]:
        checked.errors["consent"] = "Tick the box to agree, so that we may send you emails."
    return address, details, checked


def _one_of(form: FormInput, name: str, words: Mapping[str, str], checked: Checked) -> str | None:
    value = str(form.get(name, "") or "")
    checked.values[name] = value
    if not value:
        return None
    if value not in words:
        checked.errors[name] = "Choose one of the options in the list."
        return None
    return value


def _some_of(form: FormInput, name: str, words: Mapping[str, str], checked: Checked) -> tuple[str, ...]:
    values = [str(value) for value in form.getlist(name)]
    checked.values[name] = values
    if any(value not in words for value in values):
        checked.errors[name] = "Choose from the options shown."
        return ()
    return tuple(slug for slug in words if slug in values)  # in the vocabulary's order, each once


def _sentence(message: str) -> str:
    return message[:1].lower() + message[1:].rstrip(".")
