"""Issue files as plain data for the editor's desk, and the desk's edits written back as a small change.

The desk shows `issues/<slug>/issue.yaml` as a form and saves the form back. Editors also keep the
file in git and edit it by hand, so a save must change only what the form changed: the comments, key
order, quoting and block styles of everything else stay as they were, and `git diff` shows the edit.

Reading gives the data exactly as the validator sees it (PyYAML, through `newsletter.yamlfile`).
Writing parses the same text with ruamel.yaml's round-trip mode, which keeps comments and styles,
merges the new data onto that tree node by node (an unchanged value keeps its node untouched) and
dumps it. A save is refused when the file changed on disk after the form was opened (`Conflict`)
and when the result would not pass `load_issue`; only then is the file replaced, atomically.

ruamel.yaml stores a comment or blank line with the value *before* it (the last value of the
previous section holds the comment that introduces the next one). Deleting or moving that value
would lose or misplace a comment about something untouched, so after parsing, those lines are
handed to the entry they precede; the tree is used that way only if it still dumps to the very
same text.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import io
import itertools
import json
import math
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)
from ruamel.yaml.tokens import CommentToken

from newsletter.content.loader import ISSUE_FILE, load_issue
from newsletter.errors import UserError, display_path
from newsletter.vocabulary import Vocabulary
from newsletter.yamlfile import explain, load_yaml

BOM = b"\xef\xbb\xbf"
# Lines are never folded on output: a long title stays on its one line, as the editor wrote it.
WIDTH = 4096
# A new list of short words (topics, authors) is written on one line, `[a, b]`, like the sample
# issue does; longer lists go one item a line.
FLOW_LIST_CHARS = 80
# A list item moved and edited is still the same item (and keeps its comments) when more than this
# share of its fields is unchanged.
LIKE = 0.5
# The indentation `newsletter new` writes, for a file whose own cannot be told (no nested blocks).
DEFAULT_LAYOUT = (2, 4, 2)  # mapping, sequence, offset of the dash
BLOCK_SCALARS = (LiteralScalarString, FoldedScalarString)
QUOTED_SCALARS = (SingleQuotedScalarString, DoubleQuotedScalarString)
_PYYAML = yaml.resolver.Resolver()
_EMITTER = yaml.emitter.Emitter(io.StringIO(), allow_unicode=True)  # only its analysis of a text is used
_TEXT_TAG = "tag:yaml.org,2002:str"
_MISSING = object()


@dataclass(frozen=True)
class IssueFile:
    """One issue file as the desk needs it: its data for the form, and what it was when read.

    `version` (the SHA-256 of the exact bytes read) goes in the form, so a save can tell whether
    someone changed the file since; `text` is what the edit is merged onto.
    """

    data: Any
    version: str
    text: str


class Conflict(UserError):
    """The file changed on disk after the form was opened: saving would undo someone's edit."""

    def __init__(self, path: Path, current: IssueFile) -> None:
        self.current = current
        super().__init__(
            f"{display_path(path)}: changed on disk since this form was opened, so nothing was saved; "
            "open the issue again to see the changes, then make your edit again"
        )


def read_issue_file(path: Path) -> IssueFile:
    """Read an issue file for the desk; a file that cannot be read or is not YAML is a `UserError`
    saying which line to fix (`issues/2023-10/issue.yaml:12: ...`)."""
    _raw, text, version = _read(path)
    data = load_yaml(path, text).data
    _RoundTrip(text.replace("\r\n", "\n"), display_path(path))  # refused now if it could not be saved
    return IssueFile(data=data, version=version, text=text)


def edited_text(original_text: str, new_data: dict) -> str:
    """`original_text` with `new_data` merged onto it, changing as few lines as possible.

    Unchanged values keep their text and comments; changed values are written in place (quotes and
    block style kept where they still fit); lists are matched item by item, so an item moved keeps
    its comments; keys not in `new_data` go, new keys come last. Data equal to the original's gives
    back `original_text` itself. Text that is not YAML raises `ProblemsFound`.
    """
    return _edited_text(original_text, new_data, ISSUE_FILE)


def _edited_text(original_text: str, new_data: dict, shown: str) -> str:
    newline = "\r\n" if "\r\n" in original_text else "\n"
    text = original_text.replace("\r\n", "\n")
    old = load_yaml(Path(shown), text).data
    new = _plain_input(new_data)
    if _same(old, new):
        return original_text
    document = _RoundTrip(text, shown)
    document.prepare()
    # A file of comments only (a fresh draft's notes) keeps them above the data.
    notes = "".join(line for line in text.splitlines(True) if line.lstrip().startswith("#"))
    head = notes if document.tree is None else ""
    document.tree = _Merger(document.shared).value(document.tree, old, new)
    return (head + document.dump()).replace("\n", newline)


def save_issue_file(path: Path, new_data: dict, expected_version: str, vocabulary: Vocabulary) -> IssueFile:
    """Write the desk's edit of an issue file, only if nobody changed the file since it was read and
    the result is a valid issue; otherwise nothing is written (`Conflict` or `ProblemsFound`).

    Problems found name lines of the edited text, which is not on disk: the form shows them.
    """
    return _save(path, new_data, expected_version, vocabulary)


def write_draft(path: Path, new_data: dict, expected_version: str) -> IssueFile:
    """Write the desk's edit of a draft even if `newsletter check` would find problems in it (a draft
    is written over days, blanks and all); only a change on disk since it was read stops it
    (`Conflict`). The desk then shows what check finds, and refuses to submit until it finds nothing."""
    return _save(path, new_data, expected_version, None)


def version_of(path: Path) -> str:
    """The version `read_issue_file` gives the file as it is now: a hex SHA-256 of its bytes."""
    return _read(path)[2]


def _save(path: Path, new_data: dict, expected_version: str, vocabulary: Vocabulary | None) -> IssueFile:
    raw, text, version = _read(path)
    if version != expected_version:
        raise Conflict(path, _current(path, text, version))
    new_text = _edited_text(text, new_data, display_path(path))
    if vocabulary is not None:
        load_issue(path, vocabulary, text=new_text)  # ProblemsFound goes to the desk, the file untouched
    if new_text == text:
        return IssueFile(load_yaml(path, text).data, version, text)
    encoded = (BOM if raw.startswith(BOM) else b"") + new_text.encode("utf-8")
    _replace(path, encoded, expected_version)
    return IssueFile(load_yaml(path, new_text).data, _version(encoded), new_text)


def _current(path: Path, text: str, version: str) -> IssueFile:
    """The file as it is now, for `Conflict`; its data is None if someone left it not valid YAML."""
    try:
        data = load_yaml(path, text).data
    except UserError:
        data = None
    return IssueFile(data, version, text)


def _version(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _read(path: Path) -> tuple[bytes, str, str]:
    """The file's bytes, its text and its version from one read, so the version is of that text.

    The messages are `read_text`'s: one wording whichever command reads the file.
    """
    shown = display_path(path)
    if path.is_dir():
        raise UserError(f"{shown}: is a folder, not a file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{shown}: no such file") from None
    except OSError as error:
        raise UserError(f"{shown}: cannot be read: {error.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UserError(
            f"{shown}: is not UTF-8 text (byte {error.start}); save it as UTF-8 and try again"
        ) from None
    return raw, text, _version(raw)


def _replace(path: Path, encoded: bytes, expected_version: str) -> None:
    """Put `encoded` in place of `path` all at once: a crash or a full disk leaves the old file whole.

    The file is compared with `expected_version` once more just before the swap, so an edit made on
    disk while this save was validating is not overwritten either.
    """
    shown = display_path(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise UserError(f"{shown}: cannot be saved: {error.strerror}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(encoded)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        _raw, text, version = _read(path)
        if version != expected_version:
            raise Conflict(path, _current(path, text, version))
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise UserError(f"{shown}: cannot be saved: {error.strerror}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); where a folder cannot be opened, the rename stands."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


class _RoundTrip:
    """One text parsed by ruamel.yaml, set to dump itself in the text's own layout."""

    def __init__(self, text: str, shown: str) -> None:
        self.text = text
        self.shown = shown
        self.layout = DEFAULT_LAYOUT
        self.tree = self._load()
        self.shared = _shared_nodes(self.tree)

    def prepare(self) -> None:
        """Learn the text's indentation and move comments to the entries they precede (unless that
        would change the text dumped: then ruamel keeps them where it put them)."""
        lines = self.text.splitlines()
        self.layout = _layout(self.tree, lines)
        if not self.shared and _is_block(self.tree):
            _comments_to_following(self.tree, lines)
            if self.dump() != _one_newline(self.text):
                raw = self._load()
                if self._dump(raw) != self.dump():  # a comment ruamel keeps where this module did not look
                    self.tree = raw

    def _yaml(self) -> YAML:
        handler = YAML(typ="rt")
        handler.Constructor = _Constructor
        handler.Representer = _Representer
        handler.preserve_quotes = True
        handler.allow_duplicate_keys = True  # the loader reports them, at their lines
        handler.width = WIDTH
        mapping, sequence, offset = self.layout
        handler.indent(mapping=mapping, sequence=sequence, offset=offset)
        content = (line for line in self.text.splitlines() if line.strip() and not line.startswith("#"))
        handler.explicit_start = next(content, "").startswith("---")
        return handler

    def _load(self) -> Any:
        try:
            return self._yaml().load(self.text)
        except ValueError as error:  # what PyYAML reads and ruamel cannot
            raise UserError(
                f"{self.shown}: cannot be edited here ({error}); edit it in a text editor"
            ) from None
        except YAMLError as error:
            if all(hasattr(error, name) for name in ("problem", "context", "problem_mark", "context_mark")):
                line, reason = explain(error, self.text.splitlines())  # type: ignore[arg-type]
                where = f"{self.shown}:{line}" if line else self.shown
                raise UserError(f"{where}: not valid YAML: {reason}") from None
            raise UserError(f"{self.shown}: not valid YAML: {error}") from None

    def dump(self) -> str:
        return self._dump(self.tree)

    def _dump(self, tree: Any) -> str:
        """`tree` as text ending in exactly one newline (unless it ends in a block kept with `|+`)."""
        if tree is None:
            return self.text
        stream = io.StringIO()
        self._yaml().dump(tree, stream)
        text = stream.getvalue()
        last = _last_value(tree)
        if isinstance(last, BLOCK_SCALARS) and last.endswith("\n\n"):
            return text
        return _one_newline(text)


class _Verbatim(str):
    """A plain value written back exactly as it was: ruamel would write `~` as nothing, `True` as
    `true`, a date in its own way, and cannot read an impossible date such as 2023-02-30 at all
    (the loader explains that one)."""

    value: Any
    tag: Any

    def __new__(cls, node: Any, value: Any) -> _Verbatim:
        verbatim = super().__new__(cls, node.value)
        verbatim.value, verbatim.tag = value, node.tag
        return verbatim


class _Constructor(RoundTripConstructor):
    def construct_verbatim_null(self, node: Any) -> Any:
        return _Verbatim(node, None) if node.value else None

    def construct_verbatim_bool(self, node: Any) -> Any:
        return _Verbatim(node, self.construct_yaml_bool(node))

    def construct_verbatim_timestamp(self, node: Any, values: Any = None) -> Any:
        try:
            return _Verbatim(node, self.construct_yaml_timestamp(node, values))
        except ValueError:
            return _Verbatim(node, node.value)


_Constructor.add_constructor("tag:yaml.org,2002:null", _Constructor.construct_verbatim_null)
_Constructor.add_constructor("tag:yaml.org,2002:bool", _Constructor.construct_verbatim_bool)
_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_verbatim_timestamp)


class _Representer(RoundTripRepresenter):
    def represent_verbatim(self, data: _Verbatim) -> Any:
        return self.represent_scalar(data.tag, str(data))


_Representer.add_representer(_Verbatim, _Representer.represent_verbatim)


def _one_newline(text: str) -> str:
    return text.rstrip("\n") + "\n"


def _layout(tree: Any, lines: list[str]) -> tuple[int, int, int]:
    """The file's indentation as ruamel takes it: (mapping, sequence, dash offset), from the first
    nested block mapping and block list under a key. The sample writes `  - kind:` under `sections:`,
    which is (2, 4, 2); ruamel's default, (2, 2, 0), would rewrite every list."""
    mapping = sequence = offset = None
    for parent, key, value in [(None, None, tree), *_block_entries(tree)]:
        if parent is None:  # the document itself: a list starts at column 0
            key_line, key_column = -1, 0
        elif isinstance(parent, CommentedMap):
            key_line, key_column = parent.lc.key(key)
        else:
            continue
        if mapping is None and parent is not None and isinstance(value, CommentedMap) and _is_block(value):
            child_line, child_column = value.lc.key(next(iter(value)))
            if child_line > key_line:
                mapping = child_column - key_column
        if sequence is None and isinstance(value, CommentedSeq) and _is_block(value):
            item_line, item_column = value.lc.item(0)
            before = lines[item_line][:item_column].rstrip() if item_line < len(lines) else ""
            if item_line > key_line and before.endswith("-") and not before[:-1].strip():
                sequence, offset = item_column - key_column, len(before) - 1 - key_column
        if mapping is not None and sequence is not None:
            break
    default_mapping, default_sequence, default_offset = DEFAULT_LAYOUT
    if sequence is None or offset is None or offset < 0 or sequence < offset + 2:
        sequence, offset = default_sequence, default_offset
    if mapping is None or mapping < 1:
        mapping = default_mapping
    return mapping, sequence, offset


def _is_block(node: Any) -> bool:
    """A mapping or list written one entry a line (not `[a, b]`), with at least one entry."""
    return isinstance(node, (CommentedMap, CommentedSeq)) and len(node) > 0 and not node.fa.flow_style()


def _keys(node: CommentedMap | CommentedSeq) -> list[Any]:
    return list(node.keys()) if isinstance(node, CommentedMap) else list(range(len(node)))


def _block_entries(node: Any, seen: set[int] | None = None) -> Iterator[tuple[Any, Any, Any]]:
    """(collection, key, value) for every entry of every block collection, in document order."""
    seen = set() if seen is None else seen
    if not _is_block(node) or id(node) in seen:
        return
    seen.add(id(node))
    for key in _keys(node):
        yield node, key, node[key]
        yield from _block_entries(node[key], seen)


def _shared_nodes(tree: Any) -> set[int]:
    """Ids of mappings and lists that appear more than once (YAML aliases): editing one in place
    would edit every place that repeats it."""
    seen: set[int] = set()
    shared: set[int] = set()

    def walk(node: Any) -> None:
        if not isinstance(node, (CommentedMap, CommentedSeq)):
            return
        if id(node) in seen:
            shared.add(id(node))
            return
        seen.add(id(node))
        for value in node.values() if isinstance(node, CommentedMap) else node:
            walk(value)

    walk(tree)
    return shared


# Where ruamel keeps the comment after an entry's value: position 2 of a mapping's entry, 0 of a list's.
def _after(collection: Any, key: Any) -> Any:
    slots = collection.ca.items.get(key)
    return slots[2 if isinstance(collection, CommentedMap) else 0] if slots else None


def _set_after(collection: Any, key: Any, token: Any) -> None:
    slots = collection.ca.items.setdefault(key, [None, None, None, None])
    slots[2 if isinstance(collection, CommentedMap) else 0] = token


def _last_entry(collection: Any, key: Any) -> tuple[Any, Any]:
    """The innermost last entry inside the entry `collection[key]`: the one whose comment slot holds
    whatever follows that entry in the file."""
    value = collection[key]
    while _is_block(value):
        collection, key = value, _keys(value)[-1]
        value = collection[key]
    return collection, key


def _last_value(tree: Any) -> Any:
    if not _is_block(tree):
        return tree
    collection, key = _last_entry(tree, _keys(tree)[-1])
    return collection[key]


def _comments_to_following(tree: CommentedMap | CommentedSeq, lines: list[str]) -> None:
    """Give the comment lines and blank lines between two entries to the second entry, and the
    file's closing comments to the document's end.

    ruamel keeps them after the first entry: in the comment slot of its innermost last value, or at
    the end of the lists and mappings it ends with. Moved to the entry they precede, deleting an entry
    takes the comment above it along, and moving one moves its comment. Comment lines indented deeper
    than that entry stay where they are: they belong to the entry above (a field `newsletter new`
    wrote commented out, at the end of a section). The comment above a list's first item stays at
    the head of the list, which it may be about.
    """
    entries = [(None, None, tree), *_block_entries(tree)]
    for _collection, _key, value in entries:
        if _is_block(value) and value.ca.end:
            value.ca.end = [line for token in value.ca.end for line in _one_token_a_line(token)]
    for collection, _key, value in entries:
        if not _is_block(value):
            continue
        keys = _keys(value)
        for previous, following in itertools.pairwise(keys):
            column = _column(value, following, lines)
            _give_back_deeper_lines(value, previous, following, column)
            moved = _take_following_lines(value, previous, column)
            if moved:
                slots = value.ca.items.setdefault(following, [None, None, None, None])
                slots[1] = moved + (slots[1] or [])
        if collection is None:
            tree.ca.end = _take_following_lines(value, keys[-1], 0) + list(tree.ca.end or [])


def _column(collection: Any, key: Any, lines: list[str]) -> int:
    """Where the entry starts: its key's column, or a list item's dash."""
    if isinstance(collection, CommentedMap):
        return int(collection.lc.key(key)[1])
    line, column = collection.lc.item(key)
    before = lines[line][:column].rstrip() if line < len(lines) else ""
    return len(before) - 1 if before.endswith("-") else int(column)


def _one_token_a_line(token: CommentToken) -> list[CommentToken]:
    """A comment token of several lines as one token a line, so that they can go separate ways."""
    if not isinstance(token.value, str) or token.value.count("\n") < 2 or not token.value.endswith("\n"):
        return [token]
    first, *rest = token.value.splitlines(keepends=True)
    column = _token_column(token) if first.strip() else 0
    return [
        CommentToken(first, CommentMark(column)),
        *(CommentToken(line.lstrip(" "), CommentMark(_indent(line))) for line in rest),
    ]


def _give_back_deeper_lines(collection: Any, previous: Any, following: Any, column: int) -> None:
    """After a `[...]` list, ruamel already puts the lines that follow before the next entry, even
    those indented into the entry above: give those back to the end of the entry above."""
    slots = collection.ca.items.get(following)
    before = list(slots[1] or []) if slots else []
    deeper = [
        number + 1
        for number, token in enumerate(before)
        if token.value.strip() and _token_column(token) > column
    ]
    if not deeper:
        return
    leaf, key = collection, previous
    while _is_block(leaf[key]):
        leaf, key = leaf[key], _keys(leaf[key])[-1]
    if isinstance(leaf[key], BLOCK_SCALARS):
        return
    text = "".join(
        " " * _token_column(token) + token.value if token.value.strip() else token.value
        for token in before[: deeper[-1]]
    )
    token = _after(leaf, key)
    if isinstance(token, CommentToken) and isinstance(token.value, str):
        token.value = token.value + text  # the same token may also be the list's own comment
    else:
        _set_after(leaf, key, CommentToken("\n" + text, CommentMark(0)))
    slots[1] = before[deeper[-1] :] or None


def _take_following_lines(collection: Any, key: Any, column: int) -> list[CommentToken]:
    """Take the whole lines after the entry `collection[key]`, from wherever ruamel keeps them, as
    one token a line (as ruamel writes the comments before an entry); the end-of-line comment and
    the comment lines indented deeper than `column` (and the lines between them) stay."""
    chain = []
    value = collection[key]
    while _is_block(value):
        chain.append(value)
        collection, key = value, _keys(value)[-1]
        value = collection[key]
    token = _after(collection, key)
    head: list[str] = []
    after: list[tuple[str, int]] = []  # (text, indentation) of each whole line in the slot
    if isinstance(token, CommentToken) and isinstance(token.value, str) and token.value:
        raw = token.value.splitlines(keepends=True)
        if isinstance(value, BLOCK_SCALARS):
            # A block scalar ends its own line, so every line is whole; the first one's indentation
            # is kept as the token's column, not in its text.
            first = token.start_mark.column if token.start_mark and raw[0].strip() else 0
            after = [(_text_of(raw[0]), first), *((_text_of(line), _indent(line)) for line in raw[1:])]
        else:
            head, after = raw[:1], [(_text_of(line), _indent(line)) for line in raw[1:]]
    ends = [(block, token) for block in reversed(chain) for token in block.ca.end or []]
    units = [(text, indentation) for text, indentation in after]
    units += [(token.value, _token_column(token)) for _block, token in ends]
    split = max(
        (number + 1 for number, (text, depth) in enumerate(units) if text.strip() and depth > column),
        default=0,
    )
    if split == len(units):
        return []
    moved = [
        CommentToken(f"{text}\n", CommentMark(indentation if text.strip() else 0))
        for text, indentation in after[split:]
    ]
    if split < len(after) and token is not None:
        kept = "".join(head + token.value.splitlines(keepends=True)[len(head) : len(head) + split])
        replacement = CommentToken(kept, token.start_mark) if kept.strip() else None
        _set_after(collection, key, replacement)
        own = getattr(value, "ca", None)  # `[a, b]  # note` keeps the same comment on the list itself
        if own is not None and own.comment and own.comment[0] is token:
            own.comment[0] = replacement
    for _block, end_token in ends[max(split - len(after), 0) :]:
        moved.append(end_token)
    for block in chain:
        block.ca.end = [end for owner, end in ends[: max(split - len(after), 0)] if owner is block]
    return moved


def _text_of(line: str) -> str:
    """A line of a comment token without its indentation and line break (trailing spaces kept)."""
    return line.rstrip("\n").lstrip(" ")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" ")) if line.strip() else 0


def _token_column(token: CommentToken) -> int:
    return int(token.start_mark.column) if token.start_mark is not None else 0


def _split_lines(slots: list | None) -> tuple[list, list]:
    """An entry's lines before it: (the blank lines that space it out, its own comment and below)."""
    lines = list((slots or [None, None])[1] or [])
    blank = 0
    while blank < len(lines) and lines[blank].value.strip() == "":
        blank += 1
    return lines[:blank], lines[blank:]


class _Merger:
    """Merges plain data onto a ruamel tree, keeping every node whose value did not change."""

    def __init__(self, shared: set[int]) -> None:
        self.shared = shared

    def value(self, node: Any, old: Any, new: Any, flow: bool = False) -> Any:
        """The node to write for `new` where `node` (whose data was `old`) stood; `flow` when that
        is inside `[...]` or `{...}`."""
        old = old if _fits(node, old) else _plain(node)
        new = _as_old_kind(old, new)
        if _same(old, new):
            return node
        if id(node) not in self.shared:
            if isinstance(node, CommentedMap) and isinstance(new, dict):
                self.mapping(node, old, new)
                return node
            if isinstance(node, CommentedSeq) and isinstance(new, list):
                self.sequence(node, old, new)
                return node
        return _build(new, like=node, flow=flow)

    def mapping(self, node: CommentedMap, old: dict, new: dict) -> None:
        """Keys stay where they are; keys gone from `new` are deleted; new keys come last."""
        keys = {_key_text(key): key for key in node}
        flow = bool(node.fa.flow_style())
        for text, key in keys.items():
            if text not in new:
                del node[key]
                node.ca.items.pop(key, None)
        for text, value in new.items():
            if text in keys:
                key = keys[text]
                merged = self.value(node[key], old.get(text, _MISSING), value, flow)
                if merged is not node[key]:
                    node[key] = merged
            else:
                node[_new_key(text, flow)] = _build(value, flow=flow)

    def sequence(self, node: CommentedSeq, old: list, new: list) -> None:
        """Items are matched to the old ones (see `_match`); each keeps its comments, wherever it
        goes. Blank lines between items belong to the place, so the spacing of the list stays as it
        was; added items are spaced like the last one."""
        sources = _match(old, new)
        items = list(node)
        slots = [node.ca.items.get(index) for index in range(len(items))]
        spacing = [_split_lines(slot)[0] for slot in slots]
        flow = bool(node.fa.flow_style())
        merged: list[Any] = []
        comments: dict[int, list] = {}
        for index, (source, value) in enumerate(zip(sources, new, strict=True)):
            if source is None:
                item, after, own = _build(value, flow=flow), None, []
            else:
                item = self.value(items[source], old[source], value, flow)
                after = (slots[source] or [None])[0]
                own = _split_lines(slots[source])[1]
            # an added item is spaced like the last one (not the first, which follows the key)
            space = spacing[min(index, len(items) - 1)] if len(items) > 1 or index < len(items) else []
            # a fresh token each time: ruamel writes one token object only once per dump
            lines = [*(CommentToken(token.value, token.start_mark) for token in space), *own]
            if after is not None or lines:
                comments[index] = [after, lines or None, None, None]
            merged.append(item)
        del node[:]
        node.extend(merged)
        node.ca.items.clear()
        node.ca.items.update(comments)


def _match(old: list, new: list) -> list[int | None]:
    """For each new item, the old item it continues (None for an added one): equal runs first, then
    an item moved elsewhere unchanged, then one moved and edited (most of its fields unchanged),
    then the items changed in place, paired in order."""
    old_marks = [_fingerprint(item) for item in old]
    new_marks = [_fingerprint(item) for item in new]
    sources: list[int | None] = [None] * len(new)
    matcher = difflib.SequenceMatcher(None, old_marks, new_marks, autojunk=False)
    changed: list[tuple[range, range]] = []
    for tag, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        if tag == "equal":
            for offset in range(old_end - old_start):
                sources[new_start + offset] = old_start + offset
        else:
            changed.append((range(old_start, old_end), range(new_start, new_end)))
    used = {source for source in sources if source is not None}
    unused = [index for index in range(len(old)) if index not in used]
    for index, mark in enumerate(new_marks):
        if sources[index] is None:
            moved = next((source for source in unused if old_marks[source] == mark), None)
            if moved is not None:
                sources[index] = moved
                unused.remove(moved)
    for index, value in enumerate(new):  # moved and edited: a section whose list lost an item
        if sources[index] is None and unused:
            score, _distance, source = max((_likeness(old[i], value), -abs(i - index), i) for i in unused)
            if score > LIKE:
                sources[index] = source
                unused.remove(source)
    for old_range, new_range in changed:
        free = [source for source in old_range if source in unused]
        for index in new_range:
            if sources[index] is None and free:
                sources[index] = free.pop(0)
                unused.remove(sources[index])
    return sources


def _likeness(old: Any, new: Any) -> float:
    """The share of two mappings' fields that are equal (0 for anything else)."""
    if not isinstance(old, dict) or not isinstance(new, dict) or not (old or new):
        return 0.0
    keys = old.keys() | new.keys()
    equal = sum(
        1 for key in keys if key in old and key in new and _fingerprint(old[key]) == _fingerprint(new[key])
    )
    return equal / len(keys)


def _fingerprint(value: Any) -> str:
    """Equal for equal data; a date and its `YYYY-MM-DD` text count as equal, as a form sends text."""
    return json.dumps(value, default=str, ensure_ascii=False)


def _build(value: Any, like: Any = None, flow: bool = False) -> Any:
    """A new ruamel node for plain `value`; `like` is the node it replaces, whose style it keeps;
    `flow` when it goes inside `[...]` or `{...}`."""
    if isinstance(value, dict):
        return CommentedMap(
            (_new_key(str(key), flow), _build(item, flow=flow)) for key, item in value.items()
        )
    if isinstance(value, list):
        short = all(isinstance(item, (str, int, float)) and "\n" not in str(item) for item in value)
        if isinstance(like, CommentedSeq):
            inline = bool(like.fa.flow_style())
        else:
            inline = flow or sum(len(str(item)) + 2 for item in value) <= FLOW_LIST_CHARS
        inline = inline and (short or flow)
        sequence = CommentedSeq(_build(item, flow=inline) for item in value)
        if inline:
            sequence.fa.set_flow_style()
        else:
            sequence.fa.set_block_style()
        return sequence
    if isinstance(value, str):
        return _text(value, like, flow)
    return value


def _text(text: str, like: Any, flow: bool = False) -> Any:
    """A string written the way its old node was: `|` or `>` stays a block, quotes stay quotes. Other
    text with a line break becomes a `|` block; text that cannot go plain goes in double quotes, as
    the sample issue and `newsletter new` write it (ruamel would pick single quotes)."""
    # A block whose text starts with a space or a line break needs an indentation number, which
    # ruamel writes as 2 whatever the file's indentation; one that ends in blank lines (`|+`) would
    # take in the blank line that spaces out what follows. Such text goes in quotes instead.
    block = not flow and text[:1] not in (" ", "\n") and not text.endswith("\n\n")
    if block and isinstance(like, BLOCK_SCALARS):
        return type(like)(text)
    if block and "\n" in text:
        return LiteralScalarString(text)
    if isinstance(like, QUOTED_SCALARS) and "\n" not in text:
        return type(like)(text)
    return text if _plain_is_safe(text, flow) else DoubleQuotedScalarString(text)


def _new_key(text: str, flow: bool = False) -> Any:
    return text if _plain_is_safe(text, flow) else DoubleQuotedScalarString(text)


def _plain_is_safe(text: str, flow: bool) -> bool:
    """Whether `text` can be written without quotes and read back as this text by PyYAML, which the
    loader uses: ruamel follows YAML 1.2, where `yes`, `on` and `1:20` are text, not so PyYAML."""
    analysis = _EMITTER.analyze_scalar(text)
    allowed = analysis.allow_flow_plain if flow else analysis.allow_block_plain
    return allowed and not analysis.empty and not analysis.multiline and _reads_as_text(text)


def _reads_as_text(text: str) -> bool:
    """Whether PyYAML (which the loader uses) reads `text`, written plain, as text."""
    return _PYYAML.resolve(yaml.ScalarNode, text, (True, False)) == _TEXT_TAG


def _key_text(key: Any) -> str:
    """A key as the loader names it: its text (`newsletter.yamlfile` keeps every key as text)."""
    return str(key)


def _plain_input(value: Any) -> Any:
    """The desk's data as plain values: tuples as lists, keys as text, and Windows line ends (a
    browser sends a textarea with CRLF) as `\\n`, which a `|` block can hold."""
    if isinstance(value, dict):
        return {str(key): _plain_input(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_input(item) for item in value]
    if isinstance(value, str):
        return str(value).replace("\r\n", "\n")
    if value is None or isinstance(value, (bool, int, float, dt.date)):
        return value
    raise TypeError(f"cannot write {type(value).__name__} into an issue file: {value!r}")


def _kind(value: Any) -> str:
    """What YAML would call the value: bool and int, date and datetime differ (Python mixes them)."""
    for kind in (bool, int, float, str, dt.datetime, dt.date, dict, list):
        if isinstance(value, kind):
            return kind.__name__
    return "null" if value is None else type(value).__name__


def _same(a: Any, b: Any) -> bool:
    """Equal as data, kinds included: `True` is not `1`, and `2023-10-20` is not `2023-10-20 00:00`."""
    if _kind(a) != _kind(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _as_old_kind(old: Any, new: Any) -> Any:
    """A form sends text: `2023-10-20` where the file had a date stays a date (not a quoted text)."""
    if not isinstance(new, str) or not isinstance(old, dt.date) or _reads_as_text(new.strip()):
        return new
    try:
        value = yaml.safe_load(new.strip())
    except (yaml.YAMLError, ValueError):
        return new
    return value if _kind(value) == _kind(old) else new


def _fits(node: Any, old: Any) -> bool:
    """Whether `old` (PyYAML's reading) has the shape of `node` (ruamel's), so the two can be walked
    together; they differ only for files the loader refuses anyway (`<<` merges, repeated keys)."""
    if old is _MISSING:
        return False
    if isinstance(node, CommentedMap):
        return isinstance(old, dict) and [_key_text(key) for key in node] == list(old)
    if isinstance(node, CommentedSeq):
        return isinstance(old, list) and len(old) == len(node)
    return not isinstance(old, (dict, list))


def _plain(node: Any, open_nodes: frozenset[int] = frozenset()) -> Any:
    """A ruamel value as plain Python (for the rare file PyYAML reads in another shape)."""
    if id(node) in open_nodes:
        return None
    if isinstance(node, _Verbatim):
        return _plain(node.value)
    if isinstance(node, CommentedMap):
        inner = open_nodes | {id(node)}
        return {_key_text(key): _plain(value, inner) for key, value in node.items()}
    if isinstance(node, CommentedSeq):
        inner = open_nodes | {id(node)}
        return [_plain(value, inner) for value in node]
    if isinstance(node, bool) or node is None:
        return node
    for kind in (str, int, float):
        if isinstance(node, kind):
            return kind(node)
    if isinstance(node, dt.datetime):
        return dt.datetime(*node.timetuple()[:6], node.microsecond, tzinfo=node.tzinfo)
    if isinstance(node, dt.date):
        return dt.date(node.year, node.month, node.day)
    return node
