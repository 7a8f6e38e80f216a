"""`newsletter new`: start next month's issue, from a commented skeleton or a previous issue.

The skeleton is generated from the model, so it always lists every section
kind and field the loader accepts. Required fields are left blank, so that
`newsletter check` on a fresh draft reads as the editor's to-do list.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from pathlib import Path

from newsletter.content import fields
from newsletter.content.loader import ISSUE_FILE, SLUG, not_a_slug
from newsletter.content.model import SECTION_KINDS, Issue
from newsletter.errors import UserError, display_path
from newsletter.yamlfile import load_yaml

# What `new --like` keeps of a section: the optional words that name a part of the issue (a heading,
# a story's "Lead story"). Required ones (a button's label) are this month's to write, like every text.
LAYOUT_KEYS = ("heading", "label")
PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .,()&/-]*")
MONTH_SLUG = re.compile(r"^(\d{4})-(\d{2})$")
HINTS: dict[type, str] = {
    fields.HttpsUrl: "an https:// address",
    fields.ImageSource: "an https:// address or an image file in this folder",
    fields.Email: "an email address",
    fields.Date: "a date: YYYY-MM-DD",
    fields.DateTime: "date and time: YYYY-MM-DD HH:MM",
    fields.Strings: "one name, or a list: [First, Second]",
    fields.Topics: "who it is for: topic slugs from subscribers/topics.yaml",
    fields.Vocabulary: "a region slug from subscribers/regions.yaml",
    fields.PlaceKind: "such as Marmot City: the kinds are in subscribers/place_kinds.yaml",
    fields.PositiveInt: "width in pixels",
    fields.YesNo: "true or false",
    fields.Language: "a language tag such as en-GB",
}


def create_issue(issues_dir: Path, slug: str, like: Path | None = None, today: dt.date | None = None) -> Path:
    """Write `issues/SLUG/issue.yaml`; never overwrite an existing issue."""
    if not SLUG.fullmatch(slug):  # the rule every command follows; a new issue is named by its slug alone
        raise not_a_slug(slug)
    folder = issues_dir / slug
    target = folder / ISSUE_FILE
    if target.exists():
        raise UserError(f"{display_path(target)}: already exists; edit it, or choose another name")
    issue_date = _date_for(slug, today or dt.date.today())
    text = _like_previous(like, slug, issue_date) if like else skeleton(slug, issue_date)
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


Layout = list[tuple[str, dict[str, str]]]


def skeleton(slug: str, issue_date: dt.date, layout: Layout | None = None, like: str | None = None) -> str:
    """A draft with required fields blank and optional ones commented out.

    `layout` lists the sections as (kind, preset fields such as heading); by
    default one of every kind, so the editor sees everything on offer. `like`
    names the issue the layout came from; the kinds it left out are named too.
    """
    laid_out = f", laid out like {like}" if like else ""
    lines = [
        f"# Draft issue {slug}{laid_out}. Fill in the blanks, delete the sections you do not need,",
        "# uncomment optional fields (the lines starting with '# ') when you want them.",
        "# Markdown is allowed in fields written with '|'. Run `newsletter check "
        f"{slug}` to see what is left to do.",
    ]
    unused = [kind for kind in SECTION_KINDS if layout and kind not in {used for used, _ in layout}]
    if unused:
        lines.append(f"# Other kinds of section: {', '.join(unused)}; `newsletter new` writes one of each.")
    presets = {"title": f"{issue_date:%B %Y} Newsletter", "date": issue_date.isoformat(), "language": "en-GB"}
    layout = layout if layout is not None else [(kind, {}) for kind in SECTION_KINDS]
    lines += _fields(Issue, presets, layout)
    return "\n".join(lines) + "\n"


def _fields(cls: type, presets: dict[str, str] | None = None, layout: Layout | None = None) -> list[str]:
    """Lines for each field of `cls`, unindented; optional fields are commented out."""
    presets = presets or {}
    lines: list[str] = []
    for declared in dataclasses.fields(cls):
        rule = declared.metadata.get("rule")
        if rule is None:
            continue
        required = declared.default is dataclasses.MISSING and declared.default_factory is dataclasses.MISSING
        block = _field_lines(declared, rule, presets, layout or [])
        optional = not required and declared.name not in presets
        lines += [_comment_out(line) for line in block] if optional else block
    return lines


def _field_lines(
    declared: dataclasses.Field, rule: fields.Rule, presets: dict[str, str], layout: Layout
) -> list[str]:
    name = declared.name
    if isinstance(rule, fields.Sections):
        lines = [f"{name}:"]
        for kind, section_presets in layout:
            lines.append(f"  - kind: {kind}")
            lines += _indent(_fields(SECTION_KINDS[kind], section_presets), "    ")
        return lines
    if isinstance(rule, fields.Items):
        first, *rest = _fields(rule.cls)
        return [f"{name}:", f"  - {first}", *_indent(rest, "    ")]
    if isinstance(rule, fields.Nested):
        return [f"{name}:", *_indent(_fields(rule.cls), "  ")]
    if isinstance(rule, fields.Text) and rule.multiline and name not in presets:
        return [f"{name}: |"]
    hint = HINTS.get(type(rule))
    value = _scalar(presets[name]) if name in presets else _default_shown(declared)
    return [f"{name}: {value}" + (f"  # {hint}" if hint else "")]


def _scalar(value: str) -> str:
    """Write a preset as YAML: plain when that is unambiguous, else double-quoted."""
    return value if PLAIN.fullmatch(value) else json.dumps(value, ensure_ascii=False)


def _default_shown(declared: dataclasses.Field) -> str:
    default = declared.default
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, str):
        return default
    if declared.default_factory is not dataclasses.MISSING:
        return "[]"
    return '""'


def _indent(lines: list[str], pad: str) -> list[str]:
    return [pad + line for line in lines]


def _comment_out(line: str) -> str:
    """Comment a line at its own indentation; a line already commented stays as it is."""
    text = line.lstrip(" ")
    pad = line[: len(line) - len(text)]
    return line if text.startswith("# ") else f"{pad}# {text}"


def _like_previous(like: Path, slug: str, issue_date: dt.date) -> str:
    """The earlier issue's sections in order, each as `new` writes it (one empty item per list, every
    field blank or commented out), keeping only optional headings and labels: last month's editor,
    button labels and texts are this month's to write."""
    document = load_yaml(like)
    data = document.data if isinstance(document.data, dict) else {}
    layout: Layout = []
    for section in data.get("sections") or []:
        kind = section.get("kind") if isinstance(section, dict) else None
        if isinstance(kind, str) and kind in SECTION_KINDS:
            layout.append((kind, {key: str(section[key]) for key in _layout_keys(kind, section)}))
    return skeleton(slug, issue_date, layout or None, like.parent.name)  # named as editors name issues


def _layout_keys(kind: str, section: dict) -> list[str]:
    """The keys of `section` that `new --like` copies: optional headings and labels, given as text."""
    optional = {
        declared.name
        for declared in dataclasses.fields(SECTION_KINDS[kind])
        if declared.default is not dataclasses.MISSING or declared.default_factory is not dataclasses.MISSING
    }
    return [key for key in LAYOUT_KEYS if key in optional and isinstance(section.get(key), str)]


def _date_for(slug: str, today: dt.date) -> dt.date:
    """`2023-11` -> 1 November 2023; any other name -> today."""
    match = MONTH_SLUG.match(slug)
    if match:
        try:
            return dt.date(int(match[1]), int(match[2]), 1)
        except ValueError:
            raise UserError(f"'{slug}' looks like a month but is not one (YYYY-MM)") from None
    return today
