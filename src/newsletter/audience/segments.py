"""Segments: named, declarative filters over members, each compiled to one SQL query.

`subscribers/segments.yaml` maps a name to a condition:

    north-west-councils:
      description: Local government in the North West
      sector: local-government
      region: north-west

Several keys in one mapping must all hold; `all:`, `any:` and `not:` compose.
Conditions: `lists`, `topics` (a list means any; `{all: [...]}` for all),
`sector`, `region`, `place`, `domain` (also matches subdomains), `status`
(active or pending; active is the default), `joined` (`before`/`after`),
`attributes` (`{key: value}` or `{key: [values]}`), and `segment` (another
segment by name).

Whatever the condition, a segment never contains anyone unsubscribed, bounced,
complained or suppressed, and lists each member once: the query selects from
`subscribers` and tests lists and topics with EXISTS, so no join can repeat a
row. Nothing is filtered in Python.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, not_, or_, select
from sqlalchemy.orm import Session

from newsletter.audience import addresses
from newsletter.db import rules
from newsletter.db.models import (
    MailingList,
    Status,
    Subscriber,
    SubscriberTopic,
    Subscription,
    Topic,
)
from newsletter.errors import Problem, ProblemsFound, UserError
from newsletter.vocabulary import Vocabulary
from newsletter.yamlfile import YamlDocument, dotted, load_yaml

SEGMENTS_FILE = "segments.yaml"
SELECTABLE_STATUSES = {Status.ACTIVE.value, Status.PENDING.value}
YAML_BOOLEANS = {True: ["true", "yes", "y", "on"], False: ["false", "no", "n", "off"]}
OPERATORS = ("all", "any", "not")
CONDITIONS = (
    "lists",
    "topics",
    "sector",
    "region",
    "place",
    "domain",
    "status",
    "joined",
    "attributes",
    "segment",
)

Condition = Callable[["Compiler"], ColumnElement[bool]]


@dataclass(frozen=True)
class Segment:
    name: str
    description: str
    condition: Condition
    uses_status: bool
    line: int
    references: tuple[str, ...] = ()


class Segments:
    """The segments defined in one file, ready to count, sample or list members."""

    def __init__(self, segments: dict[str, Segment], file: str) -> None:
        self.by_name = segments
        self.file = file

    @classmethod
    def load(cls, directory: Path, vocabulary: Vocabulary) -> Segments:
        """Read `segments.yaml`; every mistake is reported at once with `file:line`."""
        path = directory / SEGMENTS_FILE
        if not path.exists():
            return cls({}, str(path))
        document = load_yaml(path)
        parser = _Parser(document, vocabulary)
        segments = parser.parse()
        if parser.problems:
            raise ProblemsFound(sorted(parser.problems, key=lambda p: p.line or 0))
        return cls(segments, document.file)

    def get(self, name: str) -> Segment:
        if name not in self.by_name:
            hint = difflib.get_close_matches(name, list(self.by_name), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            known = ", ".join(self.by_name) or "none yet"
            raise UserError(f"{self.file}: no segment '{name}'{suggestion}; defined: {known}")
        return self.by_name[name]

    def where(self, name: str) -> ColumnElement[bool]:
        """The segment as one SQL condition on `subscribers`, exclusions included."""
        segment = self.get(name)
        return Compiler(self).mailable(segment)

    def audience(self, names: list[str], lists: dict[str, str]) -> ColumnElement[bool]:
        """Everyone in any of these segments or on any of these lists: a campaign's audience, as one
        SQL condition. Being in two of them counts once; the exclusions apply to every part."""
        compiler = Compiler(self)
        parts = []
        for name in names:
            if name in self.by_name:
                parts.append(compiler.mailable(self.by_name[name]))
            elif name in lists:
                as_segment = Segment(name, lists[name], lambda _c, slug=name: on_lists([slug]), False, 0)
                parts.append(compiler.mailable(as_segment))
            else:
                hint = difflib.get_close_matches(name, [*self.by_name, *lists], n=1)
                suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise UserError(
                    f"no segment or list called '{name}'{suggestion}; segments: {', '.join(self.by_name) or 'none'}; "
                    f"lists: {', '.join(lists)}"
                )
        return or_(*parts)

    def members(self, name: str) -> Select[tuple[int]]:
        """`SELECT subscribers.id ...` for the segment: feed it to a campaign or an export."""
        return select(Subscriber.id).where(self.where(name))

    def count(self, session: Session, name: str) -> int:
        return session.scalar(select(func.count()).select_from(Subscriber).where(self.where(name))) or 0

    def sample(self, session: Session, name: str, limit: int = 10) -> list[Subscriber]:
        query = select(Subscriber).where(self.where(name)).order_by(Subscriber.id).limit(limit)
        return list(session.scalars(query))


def on_lists(slugs: list[str]) -> ColumnElement[bool]:
    """The member is on (and has not left) any of these lists."""
    return (
        select(Subscription.subscriber_id)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(
            Subscription.subscriber_id == Subscriber.id,
            Subscription.subscribed,
            MailingList.slug.in_(slugs),
        )
        .exists()
    )


class Compiler:
    """Turns parsed conditions into SQL; follows `segment:` references."""

    def __init__(self, segments: Segments) -> None:
        self.segments = segments

    def mailable(self, segment: Segment) -> ColumnElement[bool]:
        """The segment's members who may be mailed: active ones (`rules.mailable`), or, for a segment
        that chooses statuses itself, any that have not left (`rules.reachable`)."""
        base = rules.reachable() if self.uses_status(segment) else rules.mailable()
        return and_(base, segment.condition(self))

    def uses_status(self, segment: Segment, seen: frozenset[str] = frozenset()) -> bool:
        """Whether the segment, or one it refers to, chooses statuses itself (else: active only)."""
        if segment.uses_status:
            return True
        return any(
            self.uses_status(self.segments.by_name[name], seen | {segment.name})
            for name in segment.references
            if name not in seen and name in self.segments.by_name
        )

    def reference(self, name: str) -> ColumnElement[bool]:
        return self.segments.by_name[name].condition(self)


class _Parser:
    """Reads the YAML into conditions, collecting every problem with its line."""

    def __init__(self, document: YamlDocument, vocabulary: Vocabulary) -> None:
        self.document = document
        self.vocabulary = vocabulary
        self.problems: list[Problem] = document.problems()
        self.uses_status = False
        self.references: list[tuple[str, tuple]] = []

    def problem(self, path: tuple, message: str) -> Condition:
        self.problems.append(Problem(self.document.file, self.document.line_of(path), dotted(path), message))
        return lambda compiler: false()

    def parse(self) -> dict[str, Segment]:
        data = self.document.data
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.problem(
                (), "must map segment names to their conditions (name: then the conditions under it)"
            )
            return {}
        segments: dict[str, Segment] = {}
        for name, body in data.items():
            path = (name,)
            self.uses_status = False
            if not isinstance(body, dict):
                self.problem(path, "must be a group of conditions (sector:, region:, topics: ...)")
                continue
            description = body.get("description", "")
            if not isinstance(description, str):
                self.problem((*path, "description"), "must be text")
            conditions = {key: value for key, value in body.items() if key != "description"}
            if not conditions:
                self.problem(path, "has no conditions; add one (for everyone on a list: `lists: newsletter`)")
                continue
            first_reference = len(self.references)
            condition = self.group(conditions, path)
            referenced = tuple(target for target, _ in self.references[first_reference:])
            segments[name] = Segment(
                name,
                str(description),
                condition,
                self.uses_status,
                self.document.line_of(path) or 1,
                referenced,
            )
        self._check_references(segments)
        return segments

    def group(self, mapping: dict[str, Any], path: tuple) -> Condition:
        """Several keys in one mapping: all must hold."""
        parts = [self.condition(key, value, (*path, key)) for key, value in mapping.items()]
        return parts[0] if len(parts) == 1 else lambda compiler: and_(*(part(compiler) for part in parts))

    def condition(self, key: str, value: Any, path: tuple) -> Condition:
        reader = getattr(self, f"_{key}", None)
        if key not in OPERATORS + CONDITIONS or reader is None:
            hint = difflib.get_close_matches(key, OPERATORS + CONDITIONS, n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            return self.problem(
                path, f"unknown condition '{key}'{suggestion}; use one of {', '.join(OPERATORS + CONDITIONS)}"
            )
        return reader(value, path)

    def nested(self, value: Any, path: tuple) -> Condition:
        if not isinstance(value, dict) or not value:
            return self.problem(path, "must be a group of conditions (key: value)")
        return self.group(value, path)

    def _all(self, value: Any, path: tuple) -> Condition:
        return self._combine(value, path, and_)

    def _any(self, value: Any, path: tuple) -> Condition:
        return self._combine(value, path, or_)

    def _combine(self, value: Any, path: tuple, how: Callable[..., ColumnElement[bool]]) -> Condition:
        if not isinstance(value, list) or not value:
            return self.problem(path, "must be a list of conditions, each starting with '- '")
        parts = [self.nested(item, (*path, index)) for index, item in enumerate(value)]
        return lambda compiler: how(*(part(compiler) for part in parts))

    def _not(self, value: Any, path: tuple) -> Condition:
        inner = self.nested(value, path)
        # A member with no region is "not in London": SQL's NOT over NULL would drop them.
        return lambda compiler: not_(func.coalesce(inner(compiler), false()))

    def _words(self, kind: str, value: Any, path: tuple) -> list[str] | None:
        values = value if isinstance(value, list) else [value]
        slugs = []
        for index, item in enumerate(values):
            where = (*path, index) if isinstance(value, list) else path
            slug = self.vocabulary.lookup(kind, item) if isinstance(item, str) else None
            if slug is None:
                self.problem(where, self.vocabulary.unknown(kind, str(item)))
                continue
            slugs.append(slug)
        return slugs if len(slugs) == len(values) and slugs else None

    def _lists(self, value: Any, path: tuple) -> Condition:
        slugs = self._words("lists", value, path)
        if slugs is None:
            return lambda compiler: false()
        return lambda compiler: on_lists(slugs)

    def _topics(self, value: Any, path: tuple) -> Condition:
        mode = "any"
        if isinstance(value, dict):
            if len(value) != 1 or next(iter(value)) not in ("any", "all"):
                return self.problem(path, "must be a list of topics, or `any: [...]` or `all: [...]`")
            mode, value = next(iter(value.items()))
            path = (*path, mode)
        slugs = self._words("topics", value, path)
        if slugs is None:
            return lambda compiler: false()

        def chose(topic_slugs: list[str]) -> ColumnElement[bool]:
            return exists().where(
                SubscriberTopic.subscriber_id == Subscriber.id,
                SubscriberTopic.topic_id.in_(select(Topic.id).where(Topic.slug.in_(topic_slugs))),
            )

        if mode == "any":
            return lambda compiler: chose(slugs)
        return lambda compiler: and_(*(chose([slug]) for slug in slugs))

    def _sector(self, value: Any, path: tuple) -> Condition:
        slugs = self._words("sectors", value, path)
        return (lambda compiler: Subscriber.sector.in_(slugs)) if slugs else (lambda compiler: false())

    def _region(self, value: Any, path: tuple) -> Condition:
        slugs = self._words("regions", value, path)
        return (lambda compiler: Subscriber.region.in_(slugs)) if slugs else (lambda compiler: false())

    def _texts(self, value: Any, path: tuple, what: str) -> list[str] | None:
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(item, str) and item.strip() for item in values):
            self.problem(path, f"must be {what}, or a list of them")
            return None
        return [item.strip() for item in values]

    def _place(self, value: Any, path: tuple) -> Condition:
        places = self._texts(value, path, "a place name")
        if places is None:
            return lambda compiler: false()
        folded = [place.lower() for place in places]
        return lambda compiler: func.lower(Subscriber.place).in_(folded)

    def _domain(self, value: Any, path: tuple) -> Condition:
        domains = self._texts(value, path, "an email domain such as nhs.net")
        if domains is None:
            return lambda compiler: false()
        normalised = []
        for domain in domains:
            try:
                normalised.append(addresses.normalise_domain(domain.lstrip("@").removeprefix("*.")))
            except addresses.InvalidAddress:
                return self.problem(path, f"'{domain}' is not an email domain (such as nhs.net)")
        domains = normalised

        def matches(domain: str) -> ColumnElement[bool]:
            return or_(Subscriber.email_key.like(f"%@{domain}"), Subscriber.email_key.like(f"%.{domain}"))

        return lambda compiler: or_(*(matches(domain) for domain in domains))

    def _status(self, value: Any, path: tuple) -> Condition:
        statuses = self._texts(value, path, "active or pending")
        if statuses is None:
            return lambda compiler: false()
        wrong = [status for status in statuses if status not in SELECTABLE_STATUSES]
        if wrong:
            return self.problem(
                path, f"'{wrong[0]}' cannot be selected: only active or pending members can ever be mailed"
            )
        self.uses_status = True
        return lambda compiler: Subscriber.status.in_([Status(status) for status in statuses])

    def _joined(self, value: Any, path: tuple) -> Condition:
        if not isinstance(value, dict) or not value or set(value) - {"before", "after"}:
            return self.problem(path, "must be `before: YYYY-MM-DD` and/or `after: YYYY-MM-DD`")
        parts = []
        for key, when in value.items():
            if isinstance(when, dt.datetime):
                when = when.date()
            if isinstance(when, str):
                with contextlib.suppress(ValueError):
                    when = dt.date.fromisoformat(when.strip())
            if not isinstance(when, dt.date):
                return self.problem((*path, key), f"must be a date written as YYYY-MM-DD, not '{when}'")
            moment = dt.datetime.combine(when, dt.time())
            parts.append(
                Subscriber.created_at < moment if key == "before" else Subscriber.created_at >= moment
            )
        return lambda compiler: and_(*parts)

    def _attributes(self, value: Any, path: tuple) -> Condition:
        if not isinstance(value, dict) or not value:
            return self.problem(path, "must be a group of `attribute: value` (or `attribute: [values]`)")
        parts = []
        for name, wanted in value.items():
            values = wanted if isinstance(wanted, list) else [wanted]
            if not values or not all(isinstance(item, str | int | float | bool) for item in values):
                return self.problem((*path, name), "must be a value, or a list of values")
            texts = [str(item) for item in values if not isinstance(item, bool)]
            # YAML reads yes/no/on/off/true/false as booleans: match any way a cell may spell them.
            spellings = [word for item in values if isinstance(item, bool) for word in YAML_BOOLEANS[item]]
            stored = Subscriber.attributes[name].as_string()
            parts.append(or_(stored.in_(texts), func.lower(stored).in_(spellings)))
        return lambda compiler: and_(*parts)

    def _segment(self, value: Any, path: tuple) -> Condition:
        if not isinstance(value, str):
            return self.problem(path, "must be the name of another segment")
        self.references.append((value, path))
        return lambda compiler: compiler.reference(value)

    def _check_references(self, segments: dict[str, Segment]) -> None:
        """Every `segment:` names a segment that exists, and no segment ends up including itself."""
        graph: dict[str, list[str]] = {}
        for target, path in self.references:
            if target not in segments:
                self.problem(path, f"no segment '{target}' in this file")
            graph.setdefault(str(path[0]), []).append(target)
        for start in graph:
            stack, seen = [start], set()
            while stack:
                name = stack.pop()
                for target in graph.get(name, []):
                    if target == start:
                        self.problem(
                            (start,),
                            f"includes itself through `segment: {name if name != start else target}`",
                        )
                        stack = []
                        break
                    if target not in seen:
                        seen.add(target)
                        stack.append(target)
