"""YAML that remembers where each value came from.

PyYAML's composer keeps a line for every node; we turn the node tree into
plain Python values plus a map from each value's path to its line, so the
validator can say `issue.yaml:42` for any field, present or missing.

An alias (`*name`) is the node its anchor marks, shared: cheap to compose, but
walking it repeats the whole node each time, and nine levels of nine aliases
(a "billion laughs") repeat 10^9 values. The composer below counts the values
each alias repeats and refuses the file once they pass `ALIAS_BUDGET`, naming
the alias and its line, before anything is walked.

A file that is not YAML at all is told as advice an editor can follow (`explain`): "put this text in
quotes: it contains a colon followed by a space", at the line of that text, not PyYAML's own words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from newsletter.errors import Problem, ProblemsFound, UserError, display_path

Path_ = tuple[str | int, ...]
# How many values a file may repeat through aliases, in all: an editor reusing a list of topics or
# a whole section a few times stays far below it; walking this many values takes a millisecond.
ALIAS_BUDGET = 1000
# How deep values may nest: an issue goes six levels down; PyYAML's composer recurses per level and
# would end a file of a thousand '[' in a RecursionError.
MAX_DEPTH = 100


def dotted(path: Path_) -> str:
    """`('sections', 1, 'email')` -> `sections[2].email` (list items counted from 1)."""
    text = ""
    for part in path:
        text += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass
class YamlDocument:
    """Plain data from one YAML file, with the line of every key and list item."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    # (path, line) of each mistake the YAML itself carries: a key written twice, an alias
    # that contains itself. Kept as paths so each reader can name the place in its own words.
    mistakes: list[tuple[Path_, int, str]] = field(default_factory=list)

    def problems(self, where: Callable[[Path_], str] = dotted) -> list[Problem]:
        """The YAML's own mistakes as problems, places named by `where`."""
        return [Problem(self.file, line, where(path), message) for path, line, message in self.mistakes]

    def line_of(self, path: Path_) -> int | None:
        """The line of `path`, or of its nearest ancestor that exists (for a missing key)."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


def read_text(path: Path) -> str:
    """Read a UTF-8 file, turning every way that can fail into one clear message."""
    shown = display_path(path)
    if not path.exists():
        raise UserError(f"{shown}: no such file")
    if path.is_dir():
        raise UserError(f"{shown}: is a folder, not a file")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise UserError(
            f"{shown}: is not UTF-8 text (byte {error.start}); save it as UTF-8 and try again"
        ) from None
    except OSError as error:
        raise UserError(f"{shown}: cannot be read: {error.strerror}") from None


def load_yaml(path: Path, text: str | None = None) -> YamlDocument:
    """Parse one YAML file (or `text` as if it were that file); a syntax error becomes a
    `ProblemsFound` with its line."""
    text = read_text(path) if text is None else text
    shown = display_path(path)
    loader = _CountingLoader(text)
    try:
        root = loader.get_single_node()
    except _TooManyRepeats as error:
        raise ProblemsFound([Problem(shown, error.line, f"*{error.alias}", error.message)]) from None
    except _TooDeep as error:
        message = f"values nest more than {MAX_DEPTH} levels deep here; write them flatter"
        raise ProblemsFound([Problem(shown, error.line, "", message)]) from None
    except yaml.MarkedYAMLError as error:
        line, reason = explain(error, text.splitlines())
        raise ProblemsFound([Problem(shown, line, "", f"not valid YAML: {reason}")]) from None
    except yaml.YAMLError as error:
        raise ProblemsFound([Problem(shown, None, "", f"not valid YAML: {error}")]) from None
    finally:
        loader.dispose()
    document = YamlDocument(file=shown, data=None, lines={(): 1})
    if root is not None:
        document.data = _to_python(root, (), document, loader, set())
    return document


# What to write in place of PyYAML's words, for the mistakes editors make: (line, advice).
INDENTED = (
    "this line is indented differently from the one above: line it up with the other keys of its group "
    "(the same number of spaces before each)"
)
QUOTE_COLON = "put this text in quotes: it contains a colon followed by a space"
LIST_ITEM = (
    "a list item ('- ') where a key was expected: indent it under the key of its list, "
    "or write it as 'key: value'"
)
NO_COLON = (
    "this line has no ':' after its key; if it goes on with the text above, indent it like that text "
    "or put the whole text in quotes"
)


def explain(error: yaml.MarkedYAMLError, lines: list[str]) -> tuple[int | None, str]:
    """PyYAML's complaint as advice an editor can follow, with the line to open: the line of the
    offending text (an unclosed quote's opening line, not the end of the file)."""
    problem, context = error.problem or "", error.context or ""
    mark = error.problem_mark or error.context_mark
    line = mark.line + 1 if mark else None
    opened = error.context_mark.line + 1 if error.context_mark else line
    text = lines[mark.line] if mark and mark.line < len(lines) else ""
    before = text[: mark.column] if mark else ""
    if problem == "mapping values are not allowed here":
        return line, _quote_advice(text) if re.search(r"\S:\s", before) else INDENTED
    if problem.startswith("expected <block end>, but found"):
        found = problem.rsplit("found ", 1)[1]
        if found == "'-'":
            return line, LIST_ITEM
        if found == "'<scalar>'" and re.search(r"[\"']", before):
            return line, "text goes on after its closing quote: put the whole text inside the quotes"
        return line, INDENTED
    if "'\\t'" in problem:  # PyYAML writes a tab as '\t'
        return line, "this line has a tab: indent with spaces (YAML does not take tabs)"
    if "quoted scalar" in context:
        if "escape" in problem:
            return line, "a backslash (\\) in double quotes starts an escape: use single quotes instead"
        return opened, "the quote that opens this text is never closed: end the text with the same quote mark"
    if problem == "could not find expected ':'":
        return opened, NO_COLON
    if context.startswith("while parsing a flow"):
        bracket = "[" if "sequence" in context else "{"
        return line, (
            f"the '{bracket}' on line {opened} is not closed; close it, or put a text that starts with "
            f"'{bracket}' in quotes"
        )
    if context in ("while scanning an alias", "while scanning an anchor"):
        return line, "a text that starts with '*' or '&' must be in quotes (or written with '|')"
    if problem.startswith("found undefined alias"):
        name = problem.rsplit(" ", 1)[1].strip("'")
        return line, (
            f"'*{name}' repeats the value marked '&{name}', but nothing above is marked so; "
            "if this is text, put it in quotes"
        )
    if problem.startswith("found character") and "cannot start any token" in problem:
        return line, f"a text cannot start with {problem.split()[2]}: put it in quotes"
    return line, problem or context or "not valid YAML"


def _quote_advice(text: str) -> str:
    """The quote advice, with the line itself written that way when that is simple: title: "A: B"."""
    key, _, value = text.strip().partition(": ")
    if '"' in value or "\\" in value:
        return QUOTE_COLON
    return f'{QUOTE_COLON} ({key}: "{value.strip()}")'


class _TooManyRepeats(Exception):
    def __init__(self, alias: str, line: int, repeated: int) -> None:
        self.alias = alias
        self.line = line
        self.message = (
            f"aliases repeat too much here ({repeated:,} values so far, at most {ALIAS_BUDGET:,}); "
            "write the values out instead of repeating them"
        )


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


class _CountingLoader(yaml.SafeLoader):
    """A SafeLoader whose composer counts the values aliases repeat, and stops past the budget.

    Each composed node's size (itself plus everything below it, aliases expanded) is worked out
    from its children's sizes as it is finished, so counting costs one addition per node and
    never walks a shared node twice. An alias to a node still being composed (an alias loop) counts
    as one value; the walk below reports the loop. It also refuses values nested past `MAX_DEPTH`.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.sizes: dict[int, int] = {}
        self.repeated = 0
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            self.repeated += self.sizes.get(id(node), 1)
            if self.repeated > ALIAS_BUDGET:
                raise _TooManyRepeats(str(event.anchor), event.start_mark.line + 1, self.repeated)
            return node
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _TooDeep(self.peek_event().start_mark.line + 1)
        node = super().compose_node(parent, index)
        self.depth -= 1
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        self.sizes[id(node)] = 1 + sum(self.sizes.get(id(child), 1) for child in children)
        return node


def _to_python(
    node: yaml.Node, path: Path_, document: YamlDocument, loader: yaml.SafeLoader, open_nodes: set[int]
) -> Any:
    if id(node) in open_nodes:
        document.mistakes.append((path, node.start_mark.line + 1, "refers to itself (a YAML alias loop)"))
        return None
    open_nodes = open_nodes | {id(node)}
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else repr(key_node)
            line = key_node.start_mark.line + 1
            if key in result:
                first = document.lines[(*path, key)]
                document.mistakes.append(
                    ((*path, key), line, f"written twice (first on line {first}); keep one")
                )
                continue
            document.lines[(*path, key)] = line
            result[key] = _to_python(value_node, (*path, key), document, loader, open_nodes)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item_node in enumerate(node.value):
            document.lines[(*path, index)] = item_node.start_mark.line + 1
            items.append(_to_python(item_node, (*path, index), document, loader, open_nodes))
        return items
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, yaml.YAMLError):
        # An impossible timestamp such as 2023-02-30: keep the text so the
        # field's own rule can explain what is wrong with it.
        return node.value
