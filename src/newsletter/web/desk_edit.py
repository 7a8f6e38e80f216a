"""Editing an issue at the desk: `/desk/issues/<slug>/edit`, the issue file as a form.

GET shows every field of `issues/<slug>/issue.yaml` (from `content/schema.py`, so from the model),
with the problems `newsletter check` finds next to their fields. POST is one form with one `op`
button pressed; every op first reads the whole form back (nothing typed is lost), then:

  save                      writes the file (a draft may be incomplete), then shows its problems
  save-over:VERSION         the same, over a file someone changed since (after a conflict)
  preview                   shows the Markdown previews again, writing nothing
  add-section:KIND          appends a blank section of that kind
  add-item:NAME             appends a blank item to a list (`sections.2.items`, `sections.1.links`)
  remove:NAME, up:NAME, down:NAME
                            a section (`sections.3`) or an item (`sections.2.items.4`)

Only `save` writes; the others show the form again as changed, and saying so. A save is written
only if the file is still as it was when the form was opened (its `version`): otherwise nothing is
written and the editor chooses. Everything works without JavaScript: each button's `formaction`
ends in the `#fragment` of what it changed, so the page comes back where the editor was.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, Response, jsonify, redirect, request, url_for
from markupsafe import Markup
from werkzeug.exceptions import BadRequest, NotFound

from newsletter.content import schema
from newsletter.content.issuefile import Conflict, IssueFile, read_issue_file, write_draft
from newsletter.content.loader import ISSUE_FILE, load_issue
from newsletter.content.model import SECTION_KINDS
from newsletter.content.schema import FieldSpec, FormValues, NoSuchPart
from newsletter.desk import Stage
from newsletter.errors import Problem, ProblemsFound, UserError
from newsletter.render.markdown import to_html
from newsletter.team import Action
from newsletter.vocabulary import Vocabulary
from newsletter.web.app import site
from newsletter.web.desk import _slug, desk, email_response, page, requires, signed_in

blueprint = Blueprint("desk_edit", __name__, url_prefix="/desk/issues")

# The whole issue comes in one form: the sample issue's is about 23 kB, and the app's limit, set for its
# other forms, is 64 kB. This form alone may be larger (it is read once the account and CSRF are checked).
MAX_EDIT_BYTES = 2 * 1024 * 1024
VERSION = re.compile(r"[0-9a-f]{64}")
COMPANIONS = ("!blank", "!one", "!order", "!raw", "!extra")
ITEM_TITLES = ("heading", "title", "label", "place", "name", "by")
MOVED = {"up": -1, "down": 1}
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?")


@blueprint.before_request
def _room_for_an_issue() -> None:
    request.max_content_length = MAX_EDIT_BYTES


# --- The form as a tree of fields ----------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    checked: bool


@dataclass
class Node:
    """One field, group, list, item or section of the form, as the templates draw it.

    `name` is its form name and the end of its ids (`field-NAME`, `error-NAME`); `place` says where it
    is in words, for the list of problems; `hidden` are the companions to post with it."""

    spec: FieldSpec
    name: str
    place: str
    kind: str = "field"  # field, item (of a list) or section
    value: Any = ""
    hidden: list[tuple[str, str]] = field(default_factory=list)
    raw: bool = False
    extra: list[str] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)
    choices: list[Choice] = field(default_factory=list)
    preview: Markup = Markup("")
    title: str = ""
    number: int = 0
    count: int = 0
    section: str = ""  # the section's kind, for a section
    within: str = ""  # where the list of an item is, in words ("Section 2 (Story)")

    @property
    def input_type(self) -> str:
        """The input for a one-line field: a date or time the file writes in a way the browser's date
        inputs cannot hold (a whole day as an event's start, `15:30` as its end) stays text."""
        widget, value = self.spec.widget, self.value
        if widget == "date":
            return "date" if not value or DATE.fullmatch(value) else "text"
        if widget == "datetime":
            return "datetime-local" if not value or DATE_TIME.fullmatch(value) else "text"
        return {"url": "url", "email": "email"}.get(widget, "text")

    @property
    def add_label(self) -> str:
        """The add button's words: "Add a publication", "Add an event"."""
        return f"Add {_a(self.spec.item_label)}"

    @property
    def rows(self) -> int:
        text = self.value if isinstance(self.value, str) else "\n".join(self.value)
        return max(3, min(20, text.count("\n") + 2))

    def walk(self) -> list[Node]:
        return [self, *(node for child in self.children for node in child.walk())]


class _Tree:
    """The form's nodes from its values (`schema.data_to_form_values`, or what was posted)."""

    def __init__(self, values: FormValues, vocabulary: Vocabulary) -> None:
        self.values = values
        self.vocabulary = vocabulary

    def text(self, name: str) -> str:
        value = self.values.get(name, "")
        return value if isinstance(value, str) else "\n".join(value)

    def companions(self, name: str) -> list[tuple[str, str]]:
        return [
            (name + suffix, str(self.values[name + suffix]))
            for suffix in COMPANIONS
            if name + suffix in self.values
        ]

    def issue(self) -> list[Node]:
        nodes = self.fields(schema.issue_fields(self.vocabulary), "", "")
        extra = self.values.get("!extra")
        if extra:  # the issue's own unknown keys: kept with the first field
            nodes[0].hidden.append(("!extra", str(extra)))
            nodes[0].extra = self.extra_keys("")
        return nodes

    def sections(self) -> Node:
        listed = schema.positions(self.values, "sections")
        spec = FieldSpec("sections", "Sections", "items", required=True, item_label="section")
        node = Node(spec, "sections", "Sections", hidden=self.companions("sections"))
        node.raw = "sections!raw" in self.values
        node.children = [self.section(number, len(listed)) for number in listed]
        return node

    def section(self, number: int, count: int) -> Node:
        name = f"sections.{number}"
        kind = self.text(f"{name}.kind")
        place = f"Section {number}"
        if f"{name}!raw" in self.values or kind not in SECTION_KINDS:
            spec = FieldSpec(name, "A section the desk cannot show", "group", item_label="section")
            return Node(
                spec,
                name,
                place,
                "section",
                raw=True,
                hidden=self.companions(name),
                number=number,
                count=count,
            )
        label = schema.SECTION_LABELS[kind]
        children = schema.section_fields(kind, self.vocabulary)
        spec = FieldSpec(kind, label, "group", children=children, item_label="section")
        place = f"{place} ({label})"
        node = Node(spec, name, place, "section", number=number, count=count, section=kind)
        node.hidden = [(f"{name}.kind", kind), *self.companions(name)]
        node.extra = self.extra_keys(name)
        node.children = self.fields(spec.children, name, place)
        node.title = _title_of(node.children)
        return node

    def extra_keys(self, name: str) -> list[str]:
        try:
            extra = schema.decode(self.text(f"{name}!extra"))
        except ValueError:
            return []
        return [str(key) for key in extra] if isinstance(extra, dict) else []

    def fields(self, specs: tuple[FieldSpec, ...], prefix: str, place: str) -> list[Node]:
        return [self.field(spec, schema.join(prefix, spec.name), place) for spec in specs]

    def field(self, spec: FieldSpec, name: str, within: str) -> Node:
        place = f"{within}: {spec.label}" if within else spec.label
        node = Node(spec, name, place, hidden=self.companions(name))
        node.raw = f"{name}!raw" in self.values
        if node.raw:
            return node
        if spec.widget == "group":
            inner = f"{within}, {spec.label[:1].lower()}{spec.label[1:]}" if within else spec.label
            node.children = self.fields(spec.children, name, inner)
            node.extra = self.extra_keys(name)
        elif spec.widget == "items":
            listed = schema.positions(self.values, name)
            node.within = within
            node.children = [self.item(spec, name, number, len(listed), within) for number in listed]
        elif spec.widget == "topics":
            node.value = [str(value) for value in self.values.get(name) or []]
            node.choices = self.choices(spec, node.value)
        elif spec.widget == "lines":
            node.value = self.text(name)
        else:
            node.value = self.text(name)
            if spec.widget == "select":
                node.choices = self.choices(spec, [node.value] if node.value.strip() else [])
            elif spec.widget == "markdown":
                node.preview = to_html(node.value)  # sanitised by nh3: no script, no javascript: links
        return node

    def item(self, spec: FieldSpec, name: str, number: int, count: int, within: str) -> Node:
        item_name = f"{name}.{number}"
        place = f"{within + ', ' if within else ''}{spec.item_label} {number}"
        node = Node(spec, item_name, place, "item", number=number, count=count, within=within)
        node.hidden = self.companions(item_name)
        node.extra = self.extra_keys(item_name)
        node.children = self.fields(spec.children, item_name, place)
        node.title = _title_of(node.children)
        return node

    def choices(self, spec: FieldSpec, current: list[str]) -> list[Choice]:
        """The vocabulary's words; a word the file already has keeps its spelling (a name, any case),
        and one the vocabulary lacks stays chosen, marked, until the editor unticks it."""
        written: dict[str, str] = {}
        unknown: list[str] = []
        for value in current:
            slug = self.vocabulary.lookup(spec.vocabulary, value) if spec.vocabulary else None
            if slug is None:
                unknown.append(value)
            else:
                written.setdefault(slug, value)
        found = [Choice(value, f"{value} (not in the list: choose another)", True) for value in unknown]
        for slug, name in spec.choices:
            found.append(Choice(written.get(slug, slug), name, slug in written))
        return found


def _title_of(children: list[Node]) -> str:
    """What names a section or an item in its legend: its heading, title, label, place or name."""
    named = {child.spec.name: child.value for child in children}
    for key in ITEM_TITLES:
        value = named.get(key)
        if isinstance(value, str) and value.strip():
            return _short(value)
    return ""


def _short(text: str, limit: int = 70) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


# --- The page ------------------------------------------------------------------------------------------


def _vocabulary() -> Vocabulary:
    return site().store.vocabulary


def _issue_path(slug: str) -> Path:
    """The issue's file, from a slug `_slug` has checked: never a path the request made up."""
    path = site().settings.issues_dir / _slug(slug) / ISSUE_FILE
    if not path.is_file():
        raise NotFound()
    return path


def _editor(
    slug: str,
    values: FormValues,
    version: str,
    *,
    status: int = 200,
    data: Any = None,
    problems: list[Problem] | None = None,
    **shown: Any,
) -> tuple[str, int]:
    """The edit page for the form `values`; `problems` (of the file as saved, whose data is `data`)
    go next to their fields."""
    tree = _Tree(values, _vocabulary())
    issue_nodes = tree.issue()
    sections = tree.sections()
    nodes = [node for top in (*issue_nodes, sections) for node in top.walk()]
    places = {node.name: node.place for node in nodes}
    placed: list[tuple[Problem, str | None]] = [(problem, None) for problem in problems or []]
    if problems and isinstance(data, dict):
        placed = schema.place_problems(problems, data, places, _vocabulary())
    errors: dict[str, list[str]] = {}
    for problem, name in placed:
        if name is not None:
            errors.setdefault(name, []).append(problem.message)
    summary = [(name, places[name] if name else problem.where, problem) for problem, name in placed]
    title = _title(values, slug)
    return page(
        "desk/edit.html.j2",
        status,
        heading=f"Edit {title}",
        slug=slug,
        title=title,
        version=version,
        issue_nodes=issue_nodes,
        sections=sections,
        errors=errors,
        summary=summary,
        problem_count=len(problems or []),
        kinds=schema.SECTION_LABELS,
        action=url_for("desk_edit.edit", slug=slug),
        stage=_stage(slug),
        **shown,
    )


def _title(values: FormValues, slug: str) -> str:
    title = values.get("title")
    return _short(title) if isinstance(title, str) and title.strip() else slug


def _stage(slug: str) -> str:
    """Where the issue stands, when it is past drafting (saving then changes what was reviewed)."""
    try:
        stage = desk().stage(slug)
    except UserError:
        return ""
    return "" if stage is Stage.DRAFT else stage.value


def _problems(slug: str, path: Path, opened: IssueFile) -> list[Problem]:
    """What stands between the file and submitting it: the loader's problems, else the checks on the
    email that `newsletter check` (and submitting) also makes (one check a state of the folder)."""
    try:
        return list(desk().check(slug).problems)
    except ProblemsFound as found:
        return found.problems
    except UserError as error:
        return [Problem(str(path), None, "", str(error))]


def _cannot_edit(slug: str, reason: str) -> tuple[str, int]:
    return page(
        "desk/edit.html.j2",
        200,
        heading=f"Edit {slug}",
        slug=slug,
        title=slug,
        cannot_edit=reason,
    )


@blueprint.get("/<slug>/edit")
@requires(Action.DRAFT)
def edit(slug: str) -> tuple[str, int]:
    path = _issue_path(slug)
    try:
        opened = read_issue_file(path)
    except UserError as error:
        return _cannot_edit(slug, str(error))
    data = {} if opened.data is None else opened.data
    if not isinstance(data, dict):
        return _cannot_edit(slug, f"{ISSUE_FILE} must be a group of fields (title:, date:, sections: ...)")
    problems = _problems(slug, path, opened)
    saved = ""
    if request.args.get("saved"):
        count = len(problems)
        saved = (
            f"Saved. {count} problem{'s' if count != 1 else ''} to fix before this issue can be submitted."
            if count
            else "Saved. No problems found."
        )
    return _editor(
        slug, schema.data_to_form_values(data), opened.version, data=data, problems=problems, saved=saved
    )


@blueprint.post("/<slug>/edit")
@requires(Action.DRAFT)
def edit_post(slug: str) -> tuple[str, int] | Response:
    path = _issue_path(slug)
    form = {name: request.form.getlist(name) for name in request.form}
    version = (form.get("version") or [""])[0]
    if not VERSION.fullmatch(version):
        raise BadRequest()
    data = schema.form_to_data(form)
    op, _, target = ((form.get("op") or ["save"])[0] or "save").partition(":")
    if op in ("save", "save-over"):
        if op == "save-over":
            if not VERSION.fullmatch(target):
                raise BadRequest()
            version = target
        return _save(slug, path, data, version)
    try:
        note = _change(data, op, target)
    except NoSuchPart:
        raise BadRequest() from None
    return _editor(slug, schema.data_to_form_values(data), version, note=note)


def _change(data: dict[str, Any], op: str, target: str) -> str:
    """Apply one op that changes the form, not the file; what to tell the editor. (Each button's
    `formaction` already names where the page should come back: the template knows the new places.)"""
    unsaved = "Nothing is saved until you press Save."
    if op == "preview":
        return f"The previews now show what you wrote. {unsaved}"
    if op == "add-section":
        schema.add_section(data, target)
        return f"Added a section at the end: {schema.SECTION_LABELS[target]}. {unsaved}"
    if op == "add-item":
        schema.add_item(data, target)
        return f"Added {_a(schema.item_label(data, target))}. {unsaved}"
    if op == "remove":
        what = schema.item_label(data, target.rpartition(".")[0])
        schema.remove(data, target)
        return f"Removed the {what}. {unsaved} To undo, open the issue again without saving."
    if op in MOVED:
        what = schema.item_label(data, target.rpartition(".")[0])
        schema.move(data, target, MOVED[op])
        return f"Moved the {what} {op}. {unsaved}"
    raise NoSuchPart(f"no op {op!r}")


class LiveRenders:
    """The latest live previews (each an email's HTML under a random name), the newest `keep` only:
    the edit page's script asks for a render as the editor types and shows it by its name."""

    def __init__(self, keep: int = 64) -> None:
        self.keep = keep
        self.lock = threading.Lock()
        self.renders: OrderedDict[str, str] = OrderedDict()

    def add(self, html: str) -> str:
        name = secrets.token_urlsafe(18)
        with self.lock:
            self.renders[name] = html
            while len(self.renders) > self.keep:
                self.renders.popitem(last=False)
        return name

    def get(self, name: str) -> str | None:
        with self.lock:
            return self.renders.get(name)


LIVE = LiveRenders()


@blueprint.post("/<slug>/live")
@requires(Action.DRAFT)
def live(slug: str) -> Response:
    """The email as the form now reads, unsaved: rendered as delivery renders the whole issue, or the
    problems that stop it rendering (by field). Nothing is written."""
    path = _issue_path(slug)
    form = {name: request.form.getlist(name) for name in request.form}
    data = schema.form_to_data(form)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    try:
        issue = load_issue(path, _vocabulary(), text=text)
        edition = desk().sending.editor.renderer.render(issue)
    except ProblemsFound as found:
        problems = [
            f"{problem.where}: {problem.message}" if problem.where else problem.message
            for problem in found.problems
        ]
        return jsonify({"url": None, "problems": problems})
    except UserError as error:
        return jsonify({"url": None, "problems": [str(error)]})
    name = LIVE.add(edition.html)
    return jsonify({"url": url_for("desk_edit.live_email", slug=slug, name=name), "problems": []})


@blueprint.get("/<slug>/live/<name>")
@requires(Action.DRAFT)
def live_email(slug: str, name: str) -> Response:
    """A live preview's email, for the edit page's frame, under the preview's own policy."""
    _slug(slug)
    html = LIVE.get(name)
    if html is None:
        raise NotFound()
    return email_response(html)


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _save(slug: str, path: Path, data: dict[str, Any], version: str) -> tuple[str, int] | Response:
    """Write the draft unless the file changed since the form was opened; then show its problems."""
    try:
        saved = write_draft(path, data, version)
    except Conflict as conflict:
        return _editor(
            slug,
            schema.data_to_form_values(data),
            version,
            status=409,
            conflict=conflict.current.version,
        )
    except UserError as error:
        return _editor(slug, schema.data_to_form_values(data), version, status=500, problem=str(error))
    if saved.version != version:
        account = signed_in()
        site().team.record(account, "saved", issue_slug=slug)
    return redirect(url_for("desk_edit.edit", slug=slug, saved=1))
