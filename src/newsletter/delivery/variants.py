"""Personalisation by variant: which sections and items a member gets, and in what order.

A section or item tagged with `topics:` goes only to members who chose one of
those topics; members who chose none get everything. The places section lists
the member's own region first. Members therefore fall into a few variants,
each keyed by what actually changes the email, and each variant is rendered
once however many members share it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from newsletter.content.model import Issue, Places

NO_CHOICE = None  # a member who chose no topics gets everything


@dataclass(frozen=True)
class VariantKey:
    """What makes two members' emails differ: which tagged sections and items they get (one flag
    each, in order), their region where the places section lists it, plain text or not. Members
    whose choices differ but who get the same content share a key, so a variant is rendered once
    per distinct email, not per distinct set of choices."""

    kept: tuple[bool, ...]
    region: str | None
    text_only: bool


class Personaliser:
    """Knows which topics and regions matter to one issue, so keys stay as few as possible."""

    def __init__(self, issue: Issue) -> None:
        self.issue = issue
        self.tagged_topics = frozenset(_all_topics(issue))
        self.place_regions = frozenset(
            item.region for section in issue.sections if isinstance(section, Places) for item in section.items
        )
        # Every tagged section and item, in document order: a key says which of them a member gets.
        self.tagged: list[frozenset[str]] = []
        for section in issue.sections:
            if section.topics:
                self.tagged.append(frozenset(section.topics))
            for item in getattr(section, "items", ()):
                if getattr(item, "topics", ()):
                    self.tagged.append(frozenset(item.topics))
        self.kept_for: dict[frozenset[str] | None, tuple[bool, ...]] = {}

    def key(self, chosen_topics: Iterable[str], region: str | None, text_only: bool) -> VariantKey:
        chosen = frozenset(chosen_topics)
        topics = NO_CHOICE if not chosen else chosen & self.tagged_topics
        kept = self.kept_for.get(topics)
        if kept is None:
            kept = self.kept_for[topics] = tuple(_wanted(tuple(tags), topics) for tags in self.tagged)
        return VariantKey(kept, region if region in self.place_regions else None, text_only)

    def issue_for(self, key: VariantKey) -> Issue:
        """The issue as members with this key see it."""
        flags = iter(key.kept)
        sections = []
        for section in self.issue.sections:
            if section.topics and not next(flags):
                for item in getattr(section, "items", ()):
                    if getattr(item, "topics", ()):
                        next(flags)
                continue
            items = getattr(section, "items", None)
            if items is not None:
                kept = tuple(item for item in items if not getattr(item, "topics", ()) or next(flags))
                if not kept:
                    continue
                if isinstance(section, Places) and key.region:
                    kept = tuple(sorted(kept, key=lambda item: item.region != key.region))  # stable
                section = dataclasses.replace(section, items=kept)
            sections.append(section)
        return dataclasses.replace(self.issue, sections=tuple(sections))

    def left_out(self, key: VariantKey) -> list[str]:
        """The tagged sections and items members with this key do not get, each named with its topics:
        what an editor checks before sending (a report hidden from a member who did not pick its topic)."""
        flags = iter(key.kept)
        missing = []
        for section in self.issue.sections:
            section_kept = not section.topics or next(flags)
            if not section_kept:
                missing.append(f"{_name(section)} ({', '.join(section.topics)})")
            for item in getattr(section, "items", ()):
                tags = getattr(item, "topics", ())
                if tags and not next(flags) and section_kept:
                    missing.append(f"{_name(item)} ({', '.join(tags)})")
        return missing


def _name(part: object) -> str:
    """How an editor would name a section or item: its title, place, heading or label."""
    for attribute in ("title", "place", "heading", "label"):
        value = getattr(part, attribute, None)
        if value:
            return str(value)
    return str(getattr(part, "KIND", type(part).__name__))


def _wanted(tags: tuple[str, ...], chosen: frozenset[str] | None) -> bool:
    return not tags or chosen is NO_CHOICE or bool(chosen & set(tags))


def _all_topics(issue: Issue) -> set[str]:
    found: set[str] = set()
    for section in issue.sections:
        found.update(section.topics)
        for item in getattr(section, "items", ()):
            found.update(getattr(item, "topics", ()))
    return found
