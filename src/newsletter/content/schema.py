"""The issue as a form: what the desk shows for each field, and the form's answers back as plain data.

The model (`model.py`) already says what every field holds (its rule) and whether it is required, so
the form is derived from it, like `newsletter new`'s skeleton: a field added to the model appears at
the desk with no change here beyond, at most, a friendlier label.

Form names are dotted paths with list positions counted from 1 (`sections.2.items.1.url`), the way
`newsletter check` counts, so each problem the loader reports can be put next to its field
(`place_problems`). Saving through the form must change only what the editor changed, so the form
carries what it cannot show as hidden companions, named after the field with a `!` (which no field
name holds) and read back by `form_to_data`:

  - `NAME!blank`: what the file had where the field is blank (`null`, `empty`, `false`, `list`), so
    an untouched blank stays as it was instead of vanishing or turning into "";
  - `NAME!one`: a list field (authors, topics) the file wrote as a single text, kept so;
  - `NAME!order`: the order the file lists topics in (the form shows them in the vocabulary's);
  - `NAME!raw`: a value of a shape the form cannot show (a list where a text goes, a section of an
    unknown kind), kept as it is for the loader to report;
  - `GROUP!extra`: keys the model does not know (a misspelt `quote:`), kept for the same reason.

Pure functions on plain data: nothing here reads or writes files (`issuefile.py` does).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from newsletter.content import fields as f
from newsletter.content.loader import Reader
from newsletter.content.model import (
    SECTION_KINDS,
    CallToAction,
    Collaboration,
    Contact,
    Event,
    Image,
    Issue,
    Link,
    PlaceUpdate,
    Publication,
    Publications,
    Quote,
    Speaker,
    Story,
)
from newsletter.errors import Problem
from newsletter.vocabulary import Vocabulary
from newsletter.yamlfile import YamlDocument

WIDGETS = (
    "text",
    "markdown",
    "url",
    "email",
    "date",
    "datetime",
    "checkbox",
    "lines",
    "select",
    "topics",
    "number",
    "group",
    "items",
)
SECTION_LABELS = {
    "story": "Story",
    "publications": "Publications",
    "places": "Place updates",
    "collaborations": "Collaborations",
    "events": "Events",
    "call_to_action": "Call to action",
    "links": "Links",
    "contact": "Contact",
}
# What one item of each list is called: "Add a publication", "Remove this speaker".
ITEM_LABELS: dict[type, str] = {
    Publication: "publication",
    PlaceUpdate: "place update",
    Collaboration: "collaboration",
    Event: "event",
    Link: "link",
    Quote: "quote",
    Speaker: "speaker",
}
# Labels by field name, then for one class's field where the plain name would be vague.
LABELS = {
    "title": "Title",
    "date": "Date",
    "subject": "Email subject",
    "preheader": "Preview text",
    "editor": "Editor",
    "language": "Language",
    "intro": "Introduction",
    "archive": "Show it in the web archive",
    "label": "Label",
    "body": "Text",
    "image": "Picture",
    "quotes": "Quotes",
    "links": "Links",
    "topics": "Topics",
    "url": "Address",
    "summary": "Summary",
    "authors": "Authors",
    "commissioner": "Commissioned by",
    "heading": "Heading",
    "items": "Items",
    "place": "Place",
    "region": "Region",
    "kind": "Kind of place",
    "updates": "Update",
    "link": "Link",
    "partners": "Partners",
    "start": "Starts",
    "end": "Ends",
    "online": "Held online",
    "location": "Where",
    "register": "Registration link",
    "speakers": "Speakers",
    "text": "Text",
    "email": "Email address",
    "src": "Picture file or address",
    "alt": "Alt text",
    "width": "Width in pixels",
    "by": "Who said it",
    "role": "Role",
    "name": "Name",
    "credit": "Shared by (organisation)",
}
CLASS_LABELS: dict[tuple[type, str], str] = {
    (Issue, "date"): "Date of the issue",
    (Story, "label"): "Label above the headline",
    (Story, "title"): "Headline",
    (Story, "body"): "Story",
    (Link, "label"): "Link text",
    (Publication, "url"): "Address of the report",
    (Publication, "date"): "Date published",
    (Publications, "items"): "Publications",
    (PlaceUpdate, "updates"): "What is new",
    (Event, "title"): "Name of the event",
    (Event, "url"): "Event page",
    (CallToAction, "label"): "Button text",
    (CallToAction, "url"): "Button link",
    (Quote, "text"): "Words said",
    (Quote, "role"): "Their role or organisation",
    (Speaker, "role"): "Their role",
    (Contact, "email"): "Email address to write to",
}
ITEMS_LABELS = {
    "places": "Place updates",
    "collaborations": "Collaborations",
    "events": "Events",
    "links": "Links",
}
MARKDOWN_HINT = "Markdown: **bold**, *italic*, [link text](https://…); a blank line starts a new paragraph."
HINTS: dict[tuple[type | None, str], str] = {
    (Issue, "title"): "Shown at the top of the email, such as “October 2023 Newsletter”.",
    (Issue, "subject"): "What inboxes show as the subject; keep it under 78 characters.",
    (Issue, "preheader"): "The line inboxes show after the subject.",
    (Issue, "editor"): "Who put the issue together.",
    (Issue, "language"): "A language tag such as en-GB (British English) or cy (Welsh).",
    (Issue, "intro"): "Shown under the masthead.",
    (Issue, "archive"): "Tick to list it in the web archive even if it was not sent from here.",
    (Story, "label"): "A small line above the headline, such as “Lead story” or “Feature”.",
    (
        Image,
        "src",
    ): "An https:// address, or the name of a picture file in the issue's folder, such as hall.jpg.",
    (Image, "alt"): "Describe the picture for people who cannot see it.",
    (Image, "width"): "Leave blank to use the picture's own width.",
    (Quote, "text"): "The words, without quotation marks around them.",
    (Link, "label"): "Words that say where it goes, not “Read more”.",
    (Publication, "summary"): "A short paragraph.",
    (Event, "start"): "In the network's own time zone.",
    (Event, "end"): "After the start.",
    (Event, "online"): "Tick for an event held online.",
    (Event, "location"): "Such as “Birmingham, Council House”. Leave it blank for an event held only online.",
    (Event, "register"): "Where to sign up: the email shows a Register button.",
    (Speaker, "role"): "What they do and where, such as “Director, UCL Institute of Health Equity”.",
    (None, "credit"): (
        "The member organisation it came from, such as “Leeds City Council”: shown as “Shared by …” "
        "and listed in the archive. Leave it blank if they asked not to be credited."
    ),
    (None, "topics"): "Only members who chose one of these topics are sent it; tick none for everyone.",
}
# The companions' words for what a blank field stood for in the file.
BLANKS: dict[str, Any] = {"null": None, "empty": "", "false": False, "list": []}
_OMIT: Any = object()
_INDEX = re.compile(r"[1-9]\d{0,3}")  # a list position in a form name: 1 to 9999
_NAME = re.compile(r"[a-z][a-z_]*")
_DIGITS = re.compile(r"[0-9]{1,9}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?")
_PARENT = re.compile(r"(\.[^.\[\]]*|\[\d+\])$")  # the last step of a place the loader names
_NO_VOCABULARY = Vocabulary(Path("."), {}, {}, {}, {})

Form = Mapping[str, Sequence[str]]
FormValues = dict[str, str | list[str]]


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One field as the desk's form shows it.

    `widget` is one of `WIDGETS`; `choices` are (value written, name shown) pairs from the vocabulary
    (`vocabulary` names the word list); a `group` (a picture, a link) and each item of `items` hold
    `children`; `item_label` names one item ("publication").
    """

    name: str
    label: str
    widget: str
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    children: tuple[FieldSpec, ...] = ()
    item_label: str = ""
    hint: str = ""
    vocabulary: str = ""


class NoSuchPart(ValueError):
    """A form name or op that names no part of the issue (a tampered or out-of-date form)."""


# --- The schema ----------------------------------------------------------------------------------------


def issue_fields(vocabulary: Vocabulary) -> tuple[FieldSpec, ...]:
    """The issue's own fields, in the model's order (its sections are `section_fields`)."""
    return tuple(spec for spec in _fields_of(Issue, vocabulary) if spec.name != "sections")


def section_fields(kind: str, vocabulary: Vocabulary) -> tuple[FieldSpec, ...]:
    """The fields of a section of `kind` (one of `SECTION_KINDS`); `NoSuchPart` for another kind."""
    if kind not in SECTION_KINDS:
        raise NoSuchPart(f"no kind of section {kind!r}")
    return _fields_of(SECTION_KINDS[kind], vocabulary)


def _fields_of(cls: type, vocabulary: Vocabulary) -> tuple[FieldSpec, ...]:
    return tuple(
        _spec(cls, declared, vocabulary)
        for declared in dataclasses.fields(cls)
        if "rule" in declared.metadata
    )


def _required(declared: dataclasses.Field) -> bool:
    """Required as the loader says (no default), except a text that an online event may leave out."""
    if isinstance(declared.metadata["rule"], f.TextUnless):
        return False
    return declared.default is dataclasses.MISSING and declared.default_factory is dataclasses.MISSING


def _spec(cls: type, declared: dataclasses.Field, vocabulary: Vocabulary) -> FieldSpec:
    rule = declared.metadata["rule"]
    name = declared.name
    label = CLASS_LABELS.get((cls, name)) or LABELS.get(name) or name.replace("_", " ").capitalize()
    if name == "items" and getattr(cls, "KIND", "") in ITEMS_LABELS:
        label = ITEMS_LABELS[cls.KIND]  # type: ignore[attr-defined]
    hints = [HINTS.get((cls, name)) or HINTS.get((None, name), "")]
    values: dict[str, Any] = {"name": name, "label": label, "required": _required(declared)}
    if isinstance(rule, f.Items):
        values.update(
            widget="items",
            children=_fields_of(rule.cls, vocabulary),
            item_label=ITEM_LABELS.get(rule.cls, "item"),
        )
    elif isinstance(rule, f.Nested):
        values.update(widget="group", children=_fields_of(rule.cls, vocabulary))
        if not values["required"]:
            hints.append(f"Leave all of it blank for no {label.lower()}.")
    elif isinstance(rule, f.Topics):
        values.update(widget="topics", choices=tuple(vocabulary.topics.items()), vocabulary="topics")
    elif isinstance(rule, f.Strings):
        values["widget"] = "lines"
        hints.append("One a line.")
    elif isinstance(rule, f.Vocabulary):
        words = getattr(vocabulary, rule.kind)
        values.update(widget="select", choices=tuple(words.items()), vocabulary=rule.kind)
    elif isinstance(rule, f.PlaceKind) and vocabulary.place_kinds:
        values.update(
            widget="select", choices=tuple(vocabulary.place_kinds.items()), vocabulary="place_kinds"
        )
    elif isinstance(rule, f.YesNo):
        values["widget"] = "checkbox"
    elif isinstance(rule, f.PositiveInt):
        values["widget"] = "number"
    elif isinstance(rule, f.DateTime):
        values["widget"] = "datetime"
    elif isinstance(rule, f.Date):
        values["widget"] = "date"
    elif isinstance(rule, f.Email):
        values["widget"] = "email"
    elif isinstance(rule, f.HttpsUrl):
        values["widget"] = "url"
        hints.append("Starts with https://.")
    elif isinstance(rule, f.Text) and rule.multiline:
        values["widget"] = "markdown"
        hints.append(MARKDOWN_HINT)
    else:
        values["widget"] = "text"
    if isinstance(rule, f.Text) and rule.max_length:
        hints.append(f"Up to {rule.max_length} characters.")
    if isinstance(declared.default, str) and declared.default:
        hints.append(f"Leave it blank for “{declared.default}”.")
    values["hint"] = " ".join(hint for hint in hints if hint)
    return FieldSpec(**values)


@functools.cache
def _specs_for(kind: str | None) -> tuple[FieldSpec, ...]:
    """The specs without the vocabulary's words: all that reading a form back needs."""
    return issue_fields(_NO_VOCABULARY) if kind is None else section_fields(kind, _NO_VOCABULARY)


def blank_section(kind: str) -> dict[str, Any]:
    """A new section of `kind` as `newsletter new` lays it out: its required fields blank (the loader
    then lists them as the to-do), a list of items with one blank item."""
    if kind not in SECTION_KINDS:
        raise NoSuchPart(f"no kind of section {kind!r}")
    return {"kind": kind, **_blank(_specs_for(kind))}


def _blank(specs: Iterable[FieldSpec]) -> dict[str, Any]:
    blank: dict[str, Any] = {}
    for spec in specs:
        if not spec.required:
            continue
        if spec.widget == "items":
            blank[spec.name] = [_blank(spec.children)]
        elif spec.widget == "group":
            blank[spec.name] = _blank(spec.children)
        else:
            blank[spec.name] = ""
    return blank


# --- Form names ----------------------------------------------------------------------------------------


def join(prefix: str, name: str | int) -> str:
    return f"{prefix}.{name}" if prefix else str(name)


def parse_name(name: str) -> tuple[str | int, ...]:
    """`sections.2.items.4` -> `('sections', 1, 'items', 3)` (list positions from 0, as data has them)."""
    parts: list[str | int] = []
    for part in name.split("."):
        if _INDEX.fullmatch(part):
            parts.append(int(part) - 1)
        elif _NAME.fullmatch(part):
            parts.append(part)
        else:
            raise NoSuchPart(f"{name!r} names no part of an issue")
    return tuple(parts)


def form_name(path: Sequence[str | int]) -> str:
    """`('sections', 1, 'items', 3)` -> `sections.2.items.4`."""
    return ".".join(str(part + 1) if isinstance(part, int) else part for part in path)


def positions(form: Mapping[str, Any], name: str) -> list[int]:
    """The list positions the form holds under `name` (`sections` -> [1, 2, 3]), in order."""
    found = set()
    start = name + "."
    for key in form:
        if key.startswith(start):
            match = _INDEX.match(key, len(start))
            if match and (match.end() == len(key) or key[match.end()] in ".!"):
                found.add(int(match.group()))
    return sorted(found)


# --- Data -> form --------------------------------------------------------------------------------------


def data_to_form_values(data: Any) -> FormValues:
    """The issue file's data (as `read_issue_file` gives it) as the form's values, name -> text (or a
    list of texts for lines and topics), with the companions that keep what the form cannot show."""
    values: FormValues = {}
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise NoSuchPart("the file is not a group of fields")
    _group_values(values, _specs_for(None), data, "", ignore=("sections",))
    if "sections" in data:
        sections = data["sections"]
        if sections is None:
            values["sections!blank"] = "null"
        elif not isinstance(sections, list):
            values["sections!raw"] = encode(sections)
        for index, section in enumerate(sections if isinstance(sections, list) else [], start=1):
            name = f"sections.{index}"
            kind = section.get("kind") if isinstance(section, dict) else None
            if isinstance(kind, str) and kind in SECTION_KINDS:
                values[f"{name}.kind"] = kind
                _group_values(values, _specs_for(kind), section, name, ignore=("kind",))
            else:
                values[f"{name}!raw"] = encode(section)
    return values


def _group_values(
    values: FormValues, specs: Sequence[FieldSpec], data: dict, prefix: str, ignore: Sequence[str] = ()
) -> None:
    known = {spec.name for spec in specs}
    for spec in specs:
        if spec.name in data:
            _field_values(values, spec, data[spec.name], join(prefix, spec.name))
    extra = {key: value for key, value in data.items() if key not in known and key not in ignore}
    if extra:
        values[f"{prefix}!extra"] = encode(extra)


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | dt.date) and not isinstance(value, bool)


def _field_values(values: FormValues, spec: FieldSpec, value: Any, name: str) -> None:
    widget = spec.widget
    if value is None:
        values[name] = [] if widget in ("lines", "topics") else ""
        values[f"{name}!blank"] = "null"
        return
    if widget == "checkbox":
        if not isinstance(value, bool):
            values[f"{name}!raw"] = encode(value)
            return
        values[name] = "yes" if value else ""
        values[f"{name}!blank"] = "false"
    elif widget in ("lines", "topics"):
        if _scalar(value):
            values[name] = [as_text(value)]
            values[f"{name}!one"] = "yes"
        elif isinstance(value, list) and all(_scalar(item) for item in value):
            values[name] = [as_text(item) for item in value]
            if not value:
                values[f"{name}!blank"] = "list"
            elif widget == "topics" and len(value) > 1:
                values[f"{name}!order"] = encode(values[name])
        else:
            values[f"{name}!raw"] = encode(value)
    elif widget == "group":
        if not isinstance(value, dict):
            values[f"{name}!raw"] = encode(value)
            return
        _group_values(values, spec.children, value, name)
    elif widget == "items":
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            values[f"{name}!raw"] = encode(value)
            return
        if not value:
            values[f"{name}!blank"] = "list"
        for index, item in enumerate(value, start=1):
            _group_values(values, spec.children, item, f"{name}.{index}")
    elif _scalar(value):
        values[name] = as_text(value)
        if isinstance(value, str) and not value.strip():
            values[f"{name}!blank"] = "empty"
    else:
        values[f"{name}!raw"] = encode(value)


def as_text(value: Any) -> str:
    """A plain value as a form shows it: dates as ISO (`2023-11-02`, `2023-11-02T18:00`, as date and
    datetime-local inputs take them), numbers as digits."""
    if isinstance(value, dt.datetime):
        if value.second == value.microsecond == 0 and value.tzinfo is None:
            return value.strftime("%Y-%m-%dT%H:%M")
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# --- Form -> data --------------------------------------------------------------------------------------


def form_to_data(form: Form) -> dict[str, Any]:
    """The issue's plain data from a posted form (name -> the values sent), ready for
    `issuefile.write_draft`: blank optional fields left out, blank required ones kept as "" (so the
    loader says "is empty" at the field), each value in the type YAML should write it as."""
    return _FormReader(form).issue()


class _FormReader:
    def __init__(self, form: Form) -> None:
        self.form = form

    def first(self, name: str) -> str | None:
        values = self.form.get(name)
        return str(values[0]) if values else None

    def all(self, name: str) -> list[str]:
        return [str(value) for value in self.form.get(name) or ()]

    def issue(self) -> dict[str, Any]:
        data, _ = self.group(_specs_for(None), "")
        raw = self.decoded("sections!raw")
        if raw is not _OMIT:
            sections: Any = raw
        else:
            sections = [self.section(f"sections.{index}") for index in positions(self.form, "sections")]
            if not sections and self.first("sections!blank") == "null":
                sections = None
        data["sections"] = sections
        data.update(self.extra(""))
        return data

    def section(self, name: str) -> Any:
        raw = self.decoded(f"{name}!raw")
        if raw is not _OMIT:
            return raw
        kind = (self.first(f"{name}.kind") or "").strip()
        if kind not in SECTION_KINDS:
            return {"kind": kind}  # only a tampered form gets here; the loader names the kinds
        section, _ = self.group(_specs_for(kind), name)
        return {"kind": kind, **section, **self.extra(name)}

    def extra(self, prefix: str) -> dict[str, Any]:
        extra = self.decoded(f"{prefix}!extra")
        return extra if isinstance(extra, dict) else {}

    def decoded(self, name: str) -> Any:
        text = self.first(name)
        if text is None:
            return _OMIT
        try:
            return decode(text)
        except ValueError:
            return _OMIT

    def group(self, specs: Sequence[FieldSpec], prefix: str) -> tuple[dict[str, Any], bool]:
        """The fields under `prefix`, and whether any was filled in (or was in the file)."""
        data: dict[str, Any] = {}
        touched = False
        for spec in specs:
            value, filled = self.field(spec, join(prefix, spec.name))
            touched = touched or filled
            if value is not _OMIT:
                data[spec.name] = value
        return data, touched

    def blank(self, spec: FieldSpec, name: str) -> tuple[Any, bool]:
        was = self.first(f"{name}!blank")
        if was in BLANKS:
            return (list(BLANKS[was]) if was == "list" else BLANKS[was]), True
        if spec.required:
            return ([] if spec.widget == "items" else ""), False
        return _OMIT, False

    def field(self, spec: FieldSpec, name: str) -> tuple[Any, bool]:
        raw = self.decoded(f"{name}!raw")
        if raw is not _OMIT:
            return raw, True
        widget = spec.widget
        if widget == "group":
            data, touched = self.group(spec.children, name)
            extra = self.extra(name)
            if touched or extra:
                return {**data, **extra}, True
            if self.first(f"{name}!blank") == "null":
                return None, True
            return (data, False) if spec.required else (_OMIT, False)
        if widget == "items":
            items = []
            for index in positions(self.form, name):
                item, _ = self.group(spec.children, f"{name}.{index}")
                items.append({**item, **self.extra(f"{name}.{index}")})
            return (items, True) if items else self.blank(spec, name)
        if widget == "checkbox":
            return (True, True) if "yes" in self.all(name) else self.blank(spec, name)
        if widget == "topics":
            chosen = list(dict.fromkeys(value.strip() for value in self.all(name) if value.strip()))
            return self.listed(chosen, name, spec) if chosen else self.blank(spec, name)
        text = self.first(name) or ""
        if not text.strip():
            return self.blank(spec, name)
        if widget == "lines":
            return self.listed([line.strip() for line in text.splitlines() if line.strip()], name, spec)
        if widget == "markdown":
            return _markdown(text), True
        if widget == "number":
            return (int(text.strip()) if _DIGITS.fullmatch(text.strip()) else text), True
        if widget in ("date", "datetime"):
            return _when(text), True
        return text, True

    def listed(self, chosen: list[str], name: str, spec: FieldSpec) -> tuple[Any, bool]:
        order = self.decoded(f"{name}!order")
        if isinstance(order, list):  # the file's order first, then what was ticked since
            rank = {str(value): number for number, value in enumerate(order)}
            chosen = sorted(chosen, key=lambda value: rank.get(value, len(rank)))
        if len(chosen) == 1 and self.first(f"{name}!one"):
            return chosen[0], True
        return chosen, True


def _markdown(text: str) -> str:
    """A textarea's text as a `|` block holds it: a browser sends CRLF; more than one line ends in one
    line break (as the block's text does), a single line keeps whether it had one."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    body = text.rstrip()
    return body + "\n" if "\n" in body or text.endswith("\n") else body


def _when(text: str) -> Any:
    """A date or date and time as typed (`2023-11-02`, `2023-11-02T18:00`, `2023-11-02 18:00`) as a
    date or datetime, so YAML writes it unquoted; anything else stays text for the loader to explain."""
    stripped = text.strip()
    try:
        if _DATE.fullmatch(stripped):
            return dt.date.fromisoformat(stripped)
        if _DATE_TIME.fullmatch(stripped):
            return dt.datetime.fromisoformat(stripped)
    except ValueError:
        pass
    return text


# --- What the file holds but the form cannot show ------------------------------------------------------


def encode(value: Any) -> str:
    """A value as JSON for a hidden field, dates marked so they come back as dates."""
    return json.dumps(_tagged(value), ensure_ascii=False, separators=(",", ":"))


def decode(text: str) -> Any:
    """`encode`'s value back; a `ValueError` for text that is not what `encode` writes."""
    return json.loads(text, object_hook=_untag)


def _tagged(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dict):
        return {str(key): _tagged(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_tagged(item) for item in value]
    return value


def _untag(value: dict) -> Any:
    if len(value) == 1:
        ((key, text),) = value.items()
        if key == "$datetime" and isinstance(text, str):
            return dt.datetime.fromisoformat(text)
        if key == "$date" and isinstance(text, str):
            return dt.date.fromisoformat(text)
    return value


# --- Changing the layout: sections and items added, removed and moved ---------------------------------


def add_section(data: dict[str, Any], kind: str) -> str:
    """Append a blank section of `kind`; its form name (`sections.9`)."""
    section = blank_section(kind)
    sections = data.get("sections")
    if sections is None:
        sections = data["sections"] = []
    if not isinstance(sections, list):
        raise NoSuchPart("the sections are not a list")
    sections.append(section)
    return f"sections.{len(sections)}"


def add_item(data: dict[str, Any], name: str) -> str:
    """Append a blank item to the list `name` (`sections.2.items`, `sections.1.links`); its form name."""
    group, spec = _list_field(data, parse_name(name))
    if spec is _SECTIONS:
        raise NoSuchPart("sections are added with add_section")
    items = group.get(spec.name)
    if items is None:
        items = group[spec.name] = []
    if not isinstance(items, list):
        raise NoSuchPart(f"{name!r} is not a list")
    items.append(_blank(spec.children))
    return f"{name}.{len(items)}"


def item_label(data: dict[str, Any], name: str) -> str:
    """What one item of the list `name` is called: "publication", "speaker", "section"."""
    return _list_field(data, parse_name(name))[1].item_label


def remove(data: dict[str, Any], name: str) -> str:
    """Take out the section or item `name`; the form name of the list it was in."""
    items, index = _item(data, name)
    del items[index]
    return name.rpartition(".")[0]


def move(data: dict[str, Any], name: str, by: int) -> str:
    """Swap the section or item `name` with the one `by` (-1, 1) places along; its new form name (at
    either end of its list it stays where it is)."""
    items, index = _item(data, name)
    other = index + by
    if 0 <= other < len(items):
        items[index], items[other] = items[other], items[index]
        index = other
    return f"{name.rpartition('.')[0]}.{index + 1}"


def _item(data: dict[str, Any], name: str) -> tuple[list, int]:
    path = parse_name(name)
    if not path or not isinstance(path[-1], int):
        raise NoSuchPart(f"{name!r} is not a section or an item")
    group, spec = _list_field(data, path[:-1])
    items = group.get(spec.name)
    if not isinstance(items, list) or not path[-1] < len(items):
        raise NoSuchPart(f"{name!r}: there is no such section or item")
    return items, path[-1]


_SECTIONS = FieldSpec("sections", "Sections", "items", required=True, item_label="section")


def _list_field(data: dict[str, Any], path: Sequence[str | int]) -> tuple[dict[str, Any], FieldSpec]:
    """The group holding the list field `path` ends at, and that field's spec (`_SECTIONS` for the
    sections). Every step must exist in `data` and in the model: a form cannot name anything else."""
    group: Any = data
    specs: tuple[FieldSpec, ...] = (*_specs_for(None), _SECTIONS)
    step = 0
    while step < len(path):
        key = path[step]
        spec = next((spec for spec in specs if spec.name == key), None)
        if spec is None or not isinstance(group, dict):
            raise NoSuchPart(f"{form_name(path)!r} names no part of this issue")
        if step == len(path) - 1:
            if spec.widget != "items":
                raise NoSuchPart(f"{form_name(path)!r} is not a list")
            return group, spec
        value = group.get(spec.name)
        if spec.widget == "group" and isinstance(value, dict):
            group, specs, step = value, spec.children, step + 1
            continue
        index = path[step + 1]
        if spec.widget != "items" or not isinstance(value, list) or not isinstance(index, int):
            raise NoSuchPart(f"{form_name(path)!r} names no part of this issue")
        if index >= len(value) or not isinstance(value[index], dict):
            raise NoSuchPart(f"{form_name(path)!r}: there is no such section or item")
        group = value[index]
        if spec is _SECTIONS:
            kind = group.get("kind")
            if kind not in SECTION_KINDS:
                raise NoSuchPart(f"{form_name(path)!r}: a section of no known kind")
            specs = _specs_for(kind)
        else:
            specs = spec.children
        step += 2
    raise NoSuchPart("a list must be named")


# --- Problems next to their fields ---------------------------------------------------------------------


def place_problems(
    problems: Iterable[Problem], data: Any, names: Iterable[str], vocabulary: Vocabulary
) -> list[tuple[Problem, str | None]]:
    """Each problem with the form name it belongs to: its field, else the nearest group, item or
    section the form shows; None for one that belongs to none (the file is not YAML, say).

    The loader names a place as `newsletter check` prints it (`publications#2[1].url`: sections by
    kind); the loader's own `Reader.where`, over the same data, names each of the form's `names` that
    way, so the two meet without this module copying the loader's words."""
    reader = Reader(YamlDocument("", data), vocabulary, Path("."))
    by_where: dict[str, str] = {}
    for name in names:
        by_where.setdefault(reader.where(parse_name(name)), name)
    placed: list[tuple[Problem, str | None]] = []
    for problem in problems:
        where = problem.where
        while where and where not in by_where:
            where = _PARENT.sub("", where) if _PARENT.search(where) else ""
        placed.append((problem, by_where[where] if where else None))
    return placed
