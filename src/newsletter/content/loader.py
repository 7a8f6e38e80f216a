"""Issue files -> typed `Issue`, collecting every problem with its line.

The loader never stops at the first mistake: an editor fixing an issue wants
the whole list, each as `issues/<slug>/issue.yaml:LINE: where: message`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from pathlib import Path
from typing import Any

from newsletter.content.fields import INVALID, describe, printable
from newsletter.content.model import SECTION_KINDS, Issue
from newsletter.errors import Problem, ProblemsFound, UserError, display_path
from newsletter.vocabulary import Vocabulary
from newsletter.yamlfile import YamlDocument, dotted, load_yaml

ISSUE_FILE = "issue.yaml"
# The name of an issue: its folder in issues/, its URL in the archive, its campaigns' issue.
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def issue_slug(issues_dir: Path, given: str) -> str:
    """The slug `given` names, by the one rule every command follows; else a `UserError`.

    A slug (`2023-10`) is lower-case letters, digits and hyphens, so it cannot lead out of
    `issues_dir`. The issue's folder or file is accepted too (`issues/2023-10/issue.yaml`, as a shell
    completes it), when it is exactly `issues_dir/SLUG[/issue.yaml]`; `..` is never followed.
    """
    if SLUG.fullmatch(given):
        return given
    if given and ("/" in given or os.sep in given):
        path = Path(os.path.abspath(given))  # `..` taken away in the text, not followed on disk
        folder = path.parent if path.name == ISSUE_FILE else path
        if folder.parent == Path(os.path.abspath(issues_dir)) and SLUG.fullmatch(folder.name):
            return folder.name
    raise not_a_slug(given)


def not_a_slug(given: str) -> UserError:
    """The one message for a name that breaks the slug rule, whichever command was given it."""
    return UserError(
        f"'{printable(given)}' cannot name an issue: use lower-case letters, digits and hyphens, such as 2023-11"
    )


def issue_file(issues_dir: Path, slug_or_path: str) -> Path:
    """Find an issue's YAML from its slug (`2023-10`), or its folder or file inside `issues_dir`.

    The file read is always `issues_dir/SLUG/issue.yaml`: nothing outside `issues_dir` is looked at.
    """
    slug = issue_slug(issues_dir, slug_or_path)
    candidate = issues_dir / slug / ISSUE_FILE
    if not candidate.exists():
        known = sorted(p.parent.name for p in issues_dir.glob(f"*/{ISSUE_FILE}"))
        hint = difflib.get_close_matches(slug, known, n=1)
        suggestion = f" Did you mean '{hint[0]}'?" if hint else ""
        listing = f" Issues here: {', '.join(known)}." if known and not hint else ""
        raise UserError(
            f"{display_path(candidate)}: no such issue.{suggestion}{listing}"
            f" Start one with: newsletter new {slug}"
        )
    return candidate


def load_issue(path: Path, vocabulary: Vocabulary, text: str | None = None) -> Issue:
    """Read and validate one issue file; raise `ProblemsFound` listing every mistake.

    `text` stands in for the file's contents: a campaign sends the issue as it was when scheduled.
    """
    document = load_yaml(path, text)
    reader = Reader(document, vocabulary, path.parent)
    if not isinstance(document.data, dict):
        shape = "empty" if document.data is None else describe(document.data)
        reader.problem((), f"must be a group of fields (title:, date:, sections: ...), not {shape}")
        raise ProblemsFound(reader.problems)
    issue = reader.read_object(Issue, document.data, (), fixed={"slug": path.parent.name})
    if reader.problems:
        raise ProblemsFound(sorted(reader.problems, key=lambda p: p.line or 0))
    return issue


class Reader:
    """Walks YAML data through the model's field rules, recording problems as it goes."""

    def __init__(self, document: YamlDocument, vocabulary: Vocabulary, issue_dir: Path) -> None:
        self.document = document
        self.vocabulary = vocabulary
        self.issue_dir = issue_dir
        self.section_labels = _section_labels(document.data)
        self.problems: list[Problem] = document.problems(self.where)

    def problem(self, path: tuple, message: str) -> Any:
        """Record a problem at `path` and return INVALID, so rules can `return reader.problem(...)`."""
        self.problems.append(
            Problem(self.document.file, self.document.line_of(path), self.where(path), message)
        )
        return INVALID

    def where(self, path: tuple) -> str:
        """`('sections', 2, 'items', 1, 'url')` -> `publications[2].url` (items counted from 1)."""
        parts = list(path)
        if len(parts) < 2 or parts[0] != "sections" or not isinstance(parts[1], int):
            return dotted(tuple(parts))
        text = self.section_labels.get(parts[1], f"sections[{parts[1] + 1}]")
        parts = parts[2:]
        if len(parts) >= 2 and parts[0] == "items" and isinstance(parts[1], int):
            text += f"[{parts[1] + 1}]"
            parts = parts[2:]
        rest = dotted(tuple(parts))
        return f"{text}{'' if rest.startswith('[') or not rest else '.'}{rest}"

    @staticmethod
    def suggest(word: str, options: Any) -> str:
        hint = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
        return f" (did you mean '{hint[0]}'?)" if hint else ""

    def key_hint(self, key: str, known: list[str]) -> str:
        """After "unknown key": the key most like it, else every key the group takes, so the editor
        never has to open the guide to find the right word."""
        return self.suggest(key, known) or f"; the keys here are {', '.join(known)}"

    def vocabulary_word(self, kind: str, value: Any, path: tuple) -> Any:
        """Accept a slug or its display name (any case) from one word list; name the closest on a typo."""
        if not isinstance(value, str):
            example = next(iter(getattr(self.vocabulary, kind)), "")
            noun = kind.replace("_", " ").removesuffix("s")
            return self.problem(path, f"must be a {noun} such as '{example}', not {describe(value)}")
        slug = self.vocabulary.lookup(kind, value)
        return slug if slug is not None else self.problem(path, self.vocabulary.unknown(kind, value))

    def read_object(
        self, cls: type, value: Any, path: tuple, ignore: tuple = (), fixed: dict | None = None
    ) -> Any:
        """Read a group of fields into `cls`; unknown keys, missing and bad values are all reported."""
        if not isinstance(value, dict):
            return self.problem(path, f"must be a group of fields (key: value), not {describe(value)}")
        declared = {f.name: f for f in dataclasses.fields(cls) if "rule" in f.metadata}
        for key in value:
            if key not in declared and key not in ignore:
                self.problem((*path, key), f"unknown key '{key}'{self.key_hint(key, [*ignore, *declared])}")
        values: dict[str, Any] = dict(fixed or {})
        for name, declared_field in declared.items():
            rule = declared_field.metadata["rule"]
            required = (
                declared_field.default is dataclasses.MISSING
                and declared_field.default_factory is dataclasses.MISSING
            )
            raw = value.get(name)
            if rule.is_empty(raw):
                if required:
                    values[name] = self.problem((*path, name), rule.empty if name in value else rule.missing)
                continue
            values[name] = rule.read(self, raw, (*path, name))
        if INVALID in values.values():
            return INVALID
        return cls(**values)


def _section_labels(data: Any) -> dict[int, str]:
    """Name sections by kind (`publications`), numbering a kind used twice (`story#2`)."""
    sections = data.get("sections") if isinstance(data, dict) else None
    if not isinstance(sections, list):
        return {}
    kinds = [s.get("kind") if isinstance(s, dict) else None for s in sections]
    labels: dict[int, str] = {}
    seen: dict[str, int] = {}
    for index, kind in enumerate(kinds):
        if kind not in SECTION_KINDS:
            continue
        seen[kind] = seen.get(kind, 0) + 1
        labels[index] = kind if kinds.count(kind) == 1 else f"{kind}#{seen[kind]}"
    return labels
