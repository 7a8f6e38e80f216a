"""A member's side of submissions: what they may send the editors, its form, its checks, and storing it.

A member offers one item of an issue: a publication or report (an item of a `publications` section), a
place update (`places`), a collaboration (`collaborations`), an event (`events`) or a story idea (a
`story` section of its own). The form's fields are the model's (`content/schema.py` derives them, as it
does the desk's form), less the few that only editors fill in (`LEFT_OUT`), so a field added to the model
appears here too.

"The same validation the editor gets": the member's answers are read back with the desk's own
`schema.form_to_data`, written into a minimal issue holding that one item, and loaded with
`load_issue`; each problem the loader finds in the item goes back to its field (`schema.place_problems`).
Before that, a member's text is held to two rules of its own, since editors trust what reaches an issue
file: no raw HTML (`<script>`, `<b>`: Markdown says what a member needs), and every link in Markdown an
https:// (or mailto:) address, so neither `<script>` nor a `javascript:` link is ever stored for the desk
or an issue to show. Everything is still escaped or sanitised where it is shown.

What is stored (`Submission.fields`) is the item exactly as `issue.yaml` would hold it, read back from the
loaded issue: texts stripped, vocabulary words as slugs, dates as ISO text (`2024-03-05`,
`2024-03-05T18:00`), lists as lists, fields left blank left out. For a story it is the section without
its `kind`; for the others one item of the section's `items` (`SECTIONS[kind]` names the section).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.content import schema
from newsletter.content.fields import printable
from newsletter.content.loader import load_issue
from newsletter.content.schema import FieldSpec
from newsletter.db.models import Status, Submission, SubmissionStatus, Subscriber
from newsletter.errors import Problem, ProblemsFound
from newsletter.vocabulary import Vocabulary

DAY = 24 * 3600
# At most this many submissions a member makes in a day (counted by the pages' rate limiter): plenty for
# a busy partner, and a link that leaked cannot bury the desk.
SUBMISSIONS_A_DAY = 5


@dataclasses.dataclass(frozen=True)
class Kind:
    """One kind of thing a member may share: `name` is what `Submission.kind` holds, `section` the kind of
    issue section it becomes (an item of, or for a story the section itself)."""

    name: str
    label: str
    description: str
    section: str
    title_field: str = "title"  # the field `Submission.title` is copied from
    left_out: frozenset[str] = frozenset()  # the model's fields only editors fill in, beyond `LEFT_OUT`


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "publication",
            "A publication or report",
            "A report, briefing, paper or toolkit your organisation has published.",
            "publications",
        ),
        Kind(
            "place",
            "News from a place",
            "What is new in a Marmot Place or another area working on health equity.",
            "places",
            title_field="place",
        ),
        Kind(
            "collaboration",
            "A collaboration",
            "A partnership or joint piece of work others in the network could learn from or join.",
            "collaborations",
        ),
        Kind("event", "An event", "A webinar, conference or meeting members could go to.", "events"),
        Kind(
            "story",
            "A story idea",
            "Something the newsletter could tell at more length: the editors will be in touch.",
            "story",
            left_out=frozenset({"label", "image", "quotes"}),  # the editors' layout, pictures and quotes
        ),
    )
}
SECTIONS = {name: kind.section for name, kind in KINDS.items()}
# Fields a member never fills: `credit` is set from their organisation when an editor accepts it.
LEFT_OUT = frozenset({"credit"})
# Rows a list of items (an event's speakers, a story's links) offers; blank rows are dropped.
ROWS = 3
# Characters a member may type per field, by widget; a line of text at most what `Submission.title` holds.
LIMITS = {"markdown": 5000, "lines": 2000, "url": 2000}
ONE_LINE: int = Submission.__table__.c.title.type.length  # 300
# Member-facing words where the desk's are written for editors.
MEMBER_HINTS = {
    "topics": "Tick what it is about: the editors send items to the members who chose those topics.",
}
STATUS_WORDS = {
    SubmissionStatus.PENDING: "Waiting for the editors",
    SubmissionStatus.QUESTION: "The editors asked you something (see their note; we emailed you)",
    SubmissionStatus.ACCEPTED: "Accepted for an issue",
    SubmissionStatus.DECLINED: "Not used this time",
}
_WRAPPER = {"title": "Submission", "subject": "Submission", "preheader": "Submission", "editor": "Member"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")  # keeps \t and \n
_ONE_LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SAFE_SCHEMES = ("https://", "mailto:")

FormValues = dict[str, str | list[str]]


class UnknownKind(ValueError):
    """A kind no member may submit (a tampered form)."""


class NotAllowed(Exception):
    """The member may not submit (`may_submit`)."""


class Invalid(Exception):
    """The answers have problems; `errors` maps each field's form name to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(f"{len(errors)} problem(s)")
        self.errors = errors


def may_submit(member: Subscriber) -> bool:
    """Only a confirmed member still on the list may speak to the editors: the desk credits them, and a
    pending, unsubscribed, bounced or complaining address is nobody the network vouches for."""
    return member.status == Status.ACTIVE


def kind_of(name: str) -> Kind:
    """The kind called `name`, or `UnknownKind`."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise UnknownKind(name) from None


# --- The form ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FormField:
    """One field of a member's form: its name in the form (`title`, `link.url`, `speakers.2.name`), the
    desk's spec for it, and for a group or a list its fields (a list's are its rows, each a group)."""

    name: str
    spec: FieldSpec
    label: str
    children: tuple[FormField, ...] = ()

    def walk(self) -> Iterator[FormField]:
        yield self
        for child in self.children:
            yield from child.walk()


def form_fields(kind: str, vocabulary: Vocabulary) -> tuple[FormField, ...]:
    """The fields a member fills for `kind`, in the model's order (`UnknownKind` for another kind)."""
    chosen = kind_of(kind)
    left_out = LEFT_OUT | chosen.left_out
    return tuple(
        _form_field(spec, spec.name, spec.label)
        for spec in _item_specs(chosen, vocabulary)
        if spec.name not in left_out
    )


def labels(fields: Iterable[FormField]) -> dict[str, str]:
    """Each form name's label, as the error summary names it (`Speaker 2: Name`)."""
    return {field.name: field.label for field in every(fields)}


def every(fields: Iterable[FormField]) -> Iterator[FormField]:
    """The fields and, after each group or list, the fields in it."""
    for top in fields:
        yield from top.walk()


def _item_specs(kind: Kind, vocabulary: Vocabulary) -> tuple[FieldSpec, ...]:
    """The fields of one item of the kind's section, or of the section itself when it has no items."""
    specs = schema.section_fields(kind.section, vocabulary)
    items = next((spec for spec in specs if spec.name == "items" and spec.widget == "items"), None)
    return items.children if items is not None else specs


def _form_field(spec: FieldSpec, name: str, label: str) -> FormField:
    if spec.name in MEMBER_HINTS:
        spec = dataclasses.replace(spec, hint=MEMBER_HINTS[spec.name])
    if spec.widget == "group":
        children = tuple(_form_field(child, f"{name}.{child.name}", child.label) for child in spec.children)
        return FormField(name, spec, label, children)
    if spec.widget == "items":
        rows = []
        for number in range(1, ROWS + 1):
            row_name, row_label = f"{name}.{number}", f"{spec.item_label.capitalize()} {number}"
            row_spec = FieldSpec(row_name, row_label, "group", children=spec.children)
            cells = tuple(
                _form_field(child, f"{row_name}.{child.name}", f"{row_label}: {child.label}")
                for child in spec.children
            )
            rows.append(FormField(row_name, row_spec, row_label, cells))
        return FormField(name, spec, label, tuple(rows))
    return FormField(name, spec, label)


def form_values(kind: str, form: Mapping[str, Any], vocabulary: Vocabulary) -> FormValues:
    """The member's answers as the form shows them again: only the kind's own fields (anything else a
    form sends is ignored), control characters gone, a list's blank rows dropped and the rest numbered
    from 1, so each problem sits next to the row it is about. Reading them again changes nothing."""
    values: FormValues = {}
    for field in form_fields(kind, vocabulary):
        _read(field, form, values)
    return values


def _read(field: FormField, form: Mapping[str, Any], values: FormValues) -> None:
    """`field`'s answer into `values`."""
    widget, name = field.spec.widget, field.name
    if widget == "group":
        for child in field.children:
            _read(child, form, values)
    elif widget == "items":
        kept = 0
        for row in field.children:
            row_values: FormValues = {}
            for cell in row.children:
                _read(cell, form, row_values)
            if any(row_values.values()):
                kept += 1
                renumbered = f"{name}.{kept}."
                for cell_name, value in row_values.items():
                    values[renumbered + cell_name.removeprefix(row.name + ".")] = value
    elif widget == "topics":
        values[name] = list(dict.fromkeys(value.strip() for value in _all(form, name) if value.strip()))
    elif widget == "checkbox":
        values[name] = "yes" if "yes" in _all(form, name) else ""
    else:
        text = (_all(form, name) or [""])[0]
        if widget in ("markdown", "lines"):
            values[name] = _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
        else:
            values[name] = _ONE_LINE_CONTROL.sub(" ", text).strip()


def _all(form: Mapping[str, Any], name: str) -> list[str]:
    """Every value sent for `name`, from a request's MultiDict or a plain dict (of texts or lists)."""
    getlist = getattr(form, "getlist", None)
    found = getlist(name) if getlist is not None else form.get(name)
    if found is None:
        return []
    if isinstance(found, str):
        return [found]
    return [str(value) for value in found if value is not None]


# --- Checking ------------------------------------------------------------------------------------------


def validate(
    kind: str, values: Mapping[str, Any], vocabulary: Vocabulary
) -> tuple[dict[str, Any], dict[str, str]]:
    """The item as `issue.yaml` would hold it, and {form name: message} for what is wrong (then the item
    is {}). `values` is the form as sent or as `form_values` gives it back; `UnknownKind` for a kind
    members cannot submit."""
    chosen = kind_of(kind)
    fields = form_fields(kind, vocabulary)
    answers = form_values(kind, values, vocabulary)
    errors = _member_rules(fields, answers)
    prefix = "sections.1." if chosen.section == "story" else "sections.1.items.1."
    form: dict[str, list[str]] = {"sections.1.kind": [chosen.section]}
    for name, value in answers.items():
        form[prefix + name] = value if isinstance(value, list) else [value]
    section = schema.form_to_data(form)["sections"][0]
    issue = {**_WRAPPER, "date": dt.date.today(), "sections": [section]}
    text = yaml.safe_dump(issue, allow_unicode=True, sort_keys=False)
    try:
        loaded = load_issue(Path("submission") / "issue.yaml", vocabulary, text=text)
    except ProblemsFound as found:
        names = [prefix + field.name for field in every(fields)]
        for problem, placed in schema.place_problems(found.problems, issue, names, vocabulary):
            name = _member_name(placed, prefix)
            errors.setdefault(name, _message(problem, name, fields))
        return {}, errors
    if errors:
        return {}, errors
    section = loaded.sections[0]
    item = section if chosen.section == "story" else section.items[0]  # type: ignore[union-attr]
    return _plain(item), {}


def _member_rules(fields: Iterable[FormField], answers: FormValues) -> dict[str, str]:
    """A member's own limits: each field's length, and no HTML or unsafe link in what they write."""
    errors: dict[str, str] = {}
    for field in every(fields):
        value = answers.get(field.name)
        if not isinstance(value, str) or not value:
            continue
        widget = field.spec.widget
        limit = LIMITS.get(widget, ONE_LINE)
        if len(value) > limit:
            errors[field.name] = f"Please keep this to {limit:,} characters (it has {len(value):,})."
        elif widget in ("text", "markdown", "lines"):
            problem = unsafe(value)
            if problem:
                errors[field.name] = problem
    return errors


_READER = MarkdownIt("commonmark", {"html": True})
_READER.validateLink = lambda url: True  # type: ignore[method-assign]  # every link target is seen, and checked below


def unsafe(text: str) -> str | None:
    """Why `text` (Markdown, or one line) cannot come from a member, or None: raw HTML, a picture, or a
    link that is not https:// or mailto:. Read as the renderer reads Markdown (markdown-it), so `<5s`
    is text and `<b>` a tag, and an address hidden behind entities is seen as the browser would see it."""
    for token in _tokens(_READER.parse(text)):
        if token.type in ("html_block", "html_inline"):
            return (
                "Please leave out HTML tags such as <script> or <b>: write plain text, with Markdown for "
                "links and emphasis."
            )
        if token.type == "image":
            return "Pictures cannot be added here: link to the picture instead, e.g. [Photo](https://…)."
        if token.type == "link_open":
            target = str(token.attrGet("href") or "").strip()
            if not target.lower().startswith(_SAFE_SCHEMES):
                return f"Links must start with https:// (this one is '{printable(target, 60)}')."
    return None


def _tokens(tokens: Iterable[Token]) -> Iterator[Token]:
    for token in tokens:
        yield token
        yield from _tokens(token.children or ())


def _member_name(placed: str | None, prefix: str) -> str:
    """The member's form name for a problem the schema placed; "" (the form as a whole) for one outside
    the item, which only a change to the model could cause."""
    return placed.removeprefix(prefix) if placed and placed.startswith(prefix) else ""


def _message(problem: Problem, name: str, fields: Iterable[FormField]) -> str:
    """The loader's words for an editor (`is empty`, `must be an https:// address, not ...`) as a sentence
    shown under the field's label (and after it in the error summary), so it does not repeat the label."""
    words = problem.message
    if not name:
        return f"{problem.where}: {words}."
    if words in ("is empty", "is missing") or words.startswith("is missing:"):
        return "Please fill this in" + _unless(name, fields) + "."
    if words.split(" ", 1)[0] in ("is", "must", "has", "needs"):
        return f"This {words}."
    return words[:1].upper() + words[1:] + "."


def _unless(name: str, fields: Iterable[FormField]) -> str:
    """For an optional field the loader wants after all (an event's place, unless it is held online):
    the tick beside it that would do instead."""
    group = name.rpartition(".")[0]
    siblings = [field for field in every(fields) if field.name.rpartition(".")[0] == group]
    field = next((field for field in siblings if field.name == name), None)
    ticks = [sibling.spec.label for sibling in siblings if sibling.spec.widget == "checkbox"]
    if field is None or field.spec.required or len(ticks) != 1:
        return ""
    return f", or tick “{ticks[0]}”"


def _plain(value: Any) -> Any:
    """A loaded item back as issue.yaml data: what was left blank left out, dates as ISO text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        plain = {}
        for declared in dataclasses.fields(value):
            if "rule" not in declared.metadata:
                continue
            held = getattr(value, declared.name)
            if held is None or held == () or held == declared.default:
                continue
            plain[declared.name] = _plain(held)
        return plain
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dt.date):
        return schema.as_text(value)
    return value


# --- Storing and listing -------------------------------------------------------------------------------


def submit(
    session: Session,
    member: Subscriber,
    kind: str,
    values: Mapping[str, Any],
    credit: bool,
    vocabulary: Vocabulary,
) -> Submission:
    """Store what the member offers, pending for the editors, with their name and organisation as they
    are now (`credit`: whether to credit that organisation if it is published; meaningless, so False,
    without one). `NotAllowed` unless `may_submit`; `Invalid` with each field's problem; `UnknownKind`."""
    if not may_submit(member):
        raise NotAllowed(member.status.value)
    chosen = kind_of(kind)
    fields, errors = validate(kind, values, vocabulary)
    if errors:
        raise Invalid(errors)
    submission = Submission(
        subscriber_id=member.id,
        name=_cut(member.name, Submission.name),
        organisation=_cut(member.organisation, Submission.organisation),
        credit=bool(credit and member.organisation),
        kind=chosen.name,
        title=_cut(str(fields.get(chosen.title_field, "")), Submission.title),
        fields=fields,
        status=SubmissionStatus.PENDING,
        note="",
    )
    session.add(submission)
    session.flush()
    return submission


def _cut(text: str, column: Any) -> str:
    return (text or "")[: column.type.length]


def of_member(session: Session, member: Subscriber) -> list[Submission]:
    """The member's submissions, newest first, with where each stands (`status`, the editors' `note`,
    the `issue_slug` it went into)."""
    return list(
        session.scalars(
            select(Submission)
            .where(Submission.subscriber_id == member.id)
            .order_by(Submission.created_at.desc(), Submission.id.desc())
        )
    )
