"""`newsletter new`: start next month's issue, from a commented skeleton or a previous issue.

The skeleton is generated from the model, so it always lists every section
kind and field the loader accepts. Required fields are left blank, so that
`newsletter check` on a fresh draft reads as the editor's to-do list.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any

import yaml

from newsletter.content import fields
from newsletter.content.loader import ISSUE_FILE
from newsletter.content.model import SECTION_KINDS, Issue
from newsletter.errors import UserError, display_path
from newsletter.yamlfile import load_yaml

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
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
    fields.PositiveInt: "width in pixels",
    fields.YesNo: "true or false",
    fields.Language: "a language tag such as en-GB",
}


def create_issue(issues_dir: Path, slug: str, like: Path | None = None, today: dt.date | None = None) -> Path:
    """Write `issues/SLUG/issue.yaml`; never overwrite an existing issue."""
    if not SLUG.match(slug):
        raise UserError(
            f"'{slug}' cannot name an issue: use lower-case letters, digits and hyphens, such as 2023-11"
        )
    folder = issues_dir / slug
    target = folder / ISSUE_FILE
    if target.exists():
        raise UserError(f"{display_path(target)}: already exists; edit it, or choose another name")
    issue_date = _date_for(slug, today or dt.date.today())
    text = _from_previous(like, slug, issue_date) if like else skeleton(slug, issue_date)
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def skeleton(slug: str, issue_date: dt.date) -> str:
    """A draft listing every section kind, required fields blank, optional ones commented out."""
    lines = [
        f"# Draft issue {slug}. Fill in the blanks, delete the sections you do not need,",
        "# uncomment optional fields (the lines starting with '# ') when you want them.",
        "# Markdown is allowed in fields written with '|'. Run `newsletter check "
        f"{slug}` to see what is left to do.",
    ]
    presets = {"title": f"{issue_date:%B %Y} Newsletter", "date": issue_date.isoformat(), "language": "en-GB"}
    lines += _fields(Issue, presets)
    return "\n".join(lines) + "\n"


def _fields(cls: type, presets: dict[str, str] | None = None) -> list[str]:
    """Lines for each field of `cls`, unindented; optional fields are commented out."""
    presets = presets or {}
    lines: list[str] = []
    for declared in dataclasses.fields(cls):
        rule = declared.metadata.get("rule")
        if rule is None:
            continue
        required = declared.default is dataclasses.MISSING and declared.default_factory is dataclasses.MISSING
        block = _field_lines(declared, rule, presets)
        optional = not required and declared.name not in presets
        lines += [_comment_out(line) for line in block] if optional else block
    return lines


def _field_lines(declared: dataclasses.Field, rule: fields.Rule, presets: dict[str, str]) -> list[str]:
    name = declared.name
    if isinstance(rule, fields.Sections):
        lines = [f"{name}:"]
        for kind, cls in SECTION_KINDS.items():
            lines.append(f"  - kind: {kind}")
            lines += _indent(_fields(cls), "    ")
        return lines
    if isinstance(rule, fields.Items):
        first, *rest = _fields(rule.cls)
        return [f"{name}:", f"  - {first}", *_indent(rest, "    ")]
    if isinstance(rule, fields.Nested):
        return [f"{name}:", *_indent(_fields(rule.cls), "  ")]
    if isinstance(rule, fields.Text) and rule.multiline and name not in presets:
        return [f"{name}: |"]
    hint = HINTS.get(type(rule))
    return [f"{name}: {presets.get(name, _default_shown(declared))}" + (f"  # {hint}" if hint else "")]


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


def _from_previous(like: Path, slug: str, issue_date: dt.date) -> str:
    """The previous issue's structure (kinds, headings, item fields) with every value emptied."""
    document = load_yaml(like)
    data = document.data if isinstance(document.data, dict) else {}
    keep = {"editor", "language"}
    draft: dict[str, Any] = {}
    for key, value in data.items():
        if key == "sections":
            draft[key] = [_empty_section(section) for section in value or [] if isinstance(section, dict)]
        elif key in keep:
            draft[key] = value
        else:
            draft[key] = _empty(value)
    draft.update(title=f"{issue_date:%B %Y} Newsletter", date=issue_date.isoformat(), archive=False)
    header = (
        f"# Draft issue {slug}, laid out like {display_path(like)}. Fill in the blanks and\n"
        f"# run `newsletter check {slug}` to see what is left to do.\n"
    )
    return header + yaml.safe_dump(draft, sort_keys=False, allow_unicode=True, width=100)


def _empty_section(section: dict[str, Any]) -> dict[str, Any]:
    kept = {"kind", "heading", "label"}
    result = {key: (value if key in kept else _empty(value)) for key, value in section.items()}
    if isinstance(section.get("items"), list) and section["items"]:
        result["items"] = [_empty(section["items"][0])]
    return result


def _empty(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _empty(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_empty(value[0])] if value and isinstance(value[0], dict) else []
    if isinstance(value, bool):
        return False
    return ""


def _date_for(slug: str, today: dt.date) -> dt.date:
    """`2023-11` -> 1 November 2023; any other name -> today."""
    match = MONTH_SLUG.match(slug)
    if match:
        try:
            return dt.date(int(match[1]), int(match[2]), 1)
        except ValueError:
            raise UserError(f"'{slug}' looks like a month but is not one (YYYY-MM)") from None
    return today
