"""Editor Markdown -> safe HTML for the email, and -> readable plain text for the text part.

Results are remembered per source text: a campaign renders the same items
into many variants. Both come from the same markdown-it token stream, so the text part says what
the HTML says, with every link written out. Raw HTML in Markdown is allowed
(editors paste it) but passes through nh3, which keeps only harmless tags and
https/mailto links: no `<script>`, no `javascript:`. `lang` is kept on any kept
tag when it is a language tag, so a `<span lang="cy">` greeting is read as Welsh.

Nothing is removed unseen: `warnings` names each tag or attribute the sanitiser
will drop (and each table too wide for a phone), with what to write instead,
for `newsletter check`. `typographer` gives plain-text fields (titles,
headings, labels) the curly quotes and dashes Markdown bodies get.
"""

from __future__ import annotations

import itertools
import re
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from html.parser import HTMLParser

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore, replace, smartquotes
from markdown_it.token import Token
from markupsafe import Markup

from newsletter.content.fields import printable
from newsletter.vocabulary import language_tag

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "em",
    "h3",
    "h4",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "*": {"lang"},  # on any kept tag, when it is a language tag (see `_kept_value`)
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
# http stays so that `newsletter check` can point at it; the lint refuses it before sending.
ALLOWED_SCHEMES = {"https", "http", "mailto"}
URL_ATTRIBUTES = {"href", "src"}
# Markdown tables get the theme's table style (ruled cells, a header row) through this class.
TABLE_CLASS = "nl-table"
# Columns that still read at 375px (a phone) once the cells wrap; a wider table gets a warning.
PHONE_COLUMNS = 3
TEXT_WIDTH = 72

_parser = MarkdownIt("commonmark", {"html": True, "typographer": True}).enable(
    ["strikethrough", "table", "replacements", "smartquotes"]
)


@lru_cache(maxsize=8192)
def to_html(source: str | None) -> Markup:
    """Markdown -> sanitised HTML, safe to place in a template unescaped."""
    if not source:
        return Markup("")
    rendered = _parser.render(source)
    cleaned = nh3.clean(
        rendered,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_kept_value,
        url_schemes=ALLOWED_SCHEMES,
        link_rel=None,
        set_tag_attribute_values={"table": {"class": TABLE_CLASS}},
    )
    return Markup(cleaned.strip())


def _kept_value(tag: str, attribute: str, value: str) -> str | None:
    """nh3's last word on an allowed attribute: a `lang` that is not a language tag goes."""
    if attribute == "lang" and not is_language_tag(value):
        return None
    return value


def is_language_tag(value: str) -> bool:
    """`cy`, `en-GB`, `pa-Guru-IN`: the language tags issues and members use (`vocabulary.language_tag`)."""
    return language_tag(value) is not None


@dataclass(frozen=True)
class MarkdownWarning:
    """Something in a Markdown field that will not reach readers as written, and what to do instead.

    `near` is a piece of the field's text (a tag as written, a table's header row) to find its line by.
    """

    near: str
    message: str


@lru_cache(maxsize=1024)
def warnings(source: str | None) -> tuple[MarkdownWarning, ...]:
    """Each tag or attribute of the raw HTML in `source` that sanitising drops, and each table too wide
    for a phone; the same rules as `to_html` (the allow-lists and `_kept_value`), applied to the HTML
    markdown-it passes through, so what `newsletter check` says is what happens."""
    if not source:
        return ()
    tokens = _parser.parse(source)
    lines = source.splitlines()
    found: list[MarkdownWarning] = []
    for position, token in enumerate(tokens):
        if token.type != "table_open" or not token.map:
            continue
        header = itertools.takewhile(lambda t: t.type != "tr_close", tokens[position:])
        columns = sum(1 for cell in header if cell.type == "th_open")
        if columns > PHONE_COLUMNS:
            found.append(
                MarkdownWarning(
                    lines[token.map[0]].strip(),
                    f"a table of {columns} columns is cramped on a phone (375px wide): keep tables to "
                    f"{PHONE_COLUMNS} columns, or split this one in two",
                )
            )
    raw = _RawHtml()
    for piece in _raw_html(tokens):
        raw.feed(piece)
    raw.close()
    found.extend(raw.dropped)
    return tuple(dict.fromkeys(found))


def _raw_html(tokens: list[Token]) -> list[str]:
    """The HTML the editor wrote, in order: markdown-it's own tags (tables' alignment, code's language
    class) are not the editor's and are left out."""
    pieces = []
    for token in tokens:
        if token.type in ("html_block", "html_inline"):
            pieces.append(token.content)
        pieces.extend(_raw_html(token.children or []))
    return pieces


# What to write instead of a tag the sanitiser drops; tags not named get `_KEEP_TEXT`.
_INSTEAD = {
    "iframe": "it cannot be shown in email: link to the video or page instead, "
    "e.g. [Watch the video](https://...)",
    "video": "it cannot be played in email: link to the video instead, e.g. [Watch the video](https://...)",
    "audio": "it cannot be played in email: link to the recording instead",
    "embed": "it cannot be shown in email: link to what it shows instead",
    "object": "it cannot be shown in email: link to what it shows instead",
    "script": "email cannot run scripts; everything inside it goes too",
    "style": "the theme sets the look, so the email reads on phones and in dark mode; its rules go too",
    "form": "email cannot hold forms: link to the form instead, e.g. [Book a place](https://...)",
    "input": "email cannot hold forms: link to the form instead",
    "button": "email cannot hold forms: link to the page instead, e.g. [Book a place](https://...)",
    "select": "email cannot hold forms: link to the form instead",
    "textarea": "email cannot hold forms: link to the form instead",
    "link": "the theme sets the look",
    "meta": "it has no place in an issue's text",
    "svg": "it cannot be shown in email: use an image (![description](https://...)) instead",
    "h1": "its text is kept as plain text: the issue's title is the only h1; use ### for a heading",
    "h2": "its text is kept as plain text: section titles are h2; use ### for a heading",
}
_KEEP_TEXT = "its text is kept without it: use Markdown (**bold**, *italic*, ### heading, lists) instead"
_ATTRIBUTE_INSTEAD = {
    "style": "the theme sets colours, fonts and sizes, so the email reads on phones and in dark mode",
    "class": "the email's theme does not use it",
    "id": "the email's theme does not use it",
    "target": "the link still works; mail clients choose where links open",
}


class _RawHtml(HTMLParser):
    """Reads the editor's raw HTML and lists what the allow-lists drop from it, with what to do instead."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.dropped: list[MarkdownWarning] = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        written = (self.get_starttag_text() or f"<{tag}>").splitlines()[0].strip()
        if tag not in ALLOWED_TAGS:
            instead = _INSTEAD.get(tag, _KEEP_TEXT)
            if any(name == "lang" for name, _value in attrs) and tag not in _INSTEAD:
                instead = 'its text is kept without it: to mark a language, write <span lang="cy">...</span>'
            self.dropped.append(MarkdownWarning(written, f"<{tag}> is removed: {instead}"))
            return
        allowed = ALLOWED_ATTRIBUTES["*"] | ALLOWED_ATTRIBUTES.get(tag, set())
        for name, value in attrs:
            message = _dropped_attribute(tag, name, value or "", name in allowed)
            if message:
                self.dropped.append(MarkdownWarning(written, message))


def _dropped_attribute(tag: str, name: str, value: str, allowed: bool) -> str | None:
    """Why `name="value"` on `<tag>` is removed, or None when it is kept."""
    if allowed and name == "lang":
        if _kept_value(tag, name, value) is None:
            return (
                f'lang="{value}" on <{tag}> is removed: it is not a language tag; write one such as '
                "cy, en-GB or ga, so screen readers read the words in that language"
            )
        return None
    if allowed and name in URL_ATTRIBUTES:
        scheme = re.match(r"\s*([a-zA-Z][a-zA-Z0-9+.-]*):", value)
        if scheme and scheme.group(1).lower() not in ALLOWED_SCHEMES:
            shown = printable(value.strip(), 60)
            return f"the address '{shown}' of <{tag}> is removed: give an https:// address"
        return None
    if allowed:
        return None
    if name.startswith("on"):
        return f"{name}= on <{tag}> is removed: email cannot run scripts"
    instead = _ATTRIBUTE_INSTEAD.get(name, "mail clients ignore it, or it could be unsafe")
    return f"{name}= on <{tag}> is removed: {instead}"


def typographer(text: str | None) -> str:
    """A plain-text field (a title, heading or label) with the typography Markdown bodies get: curly
    quotes and apostrophes, dashes, ellipses; web and email addresses in it stay exactly as written.

    It runs markdown-it's own `replacements` and `smartquotes` with the bodies' settings, so
    `Marmot's` is `Marmot’s` in a headline and in the body under it. The result is plain text: the
    template escapes it as it does any other text."""
    return _typeset(text) if text else ""


# Addresses in a title are kept as written: a `'` or `--` in one is not punctuation.
_ADDRESS = re.compile(r"((?:[a-zA-Z][a-zA-Z0-9+.-]*://|www\.|mailto:)\S+|[^\s@]+@[^\s@]+\.\S+)")


@lru_cache(maxsize=8192)
def _typeset(text: str) -> str:
    children = []
    for number, piece in enumerate(_ADDRESS.split(text)):
        # An address becomes a code span: the rules leave its text alone but see it as context.
        children.append(Token("code_inline" if number % 2 else "text", "", 0, content=piece))
    state = StateCore(text, _parser, {})
    state.tokens = [Token("inline", "", 0, content=text, children=children)]
    replace(state)
    smartquotes(state)
    return "".join(child.content for child in children)


@lru_cache(maxsize=8192)
def to_text(source: str | None, width: int = TEXT_WIDTH) -> str:
    """Markdown -> wrapped plain text; a link becomes `label (https://...)`."""
    if not source:
        return ""
    return _TextWriter(width).write(_parser.parse(source)).strip("\n")


@dataclass
class _OpenList:
    """One list being written: the next number (None for bullets) and the current item's marker."""

    number: int | None
    marker: str = "- "


class _TextWriter:
    """Walks block tokens, keeping a stack of open lists for markers and indentation."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.blocks: list[str] = []
        self.lists: list[_OpenList] = []
        self.item_started = False  # the next paragraph is the first of a list item: it gets the marker
        self.tight = False  # markdown-it hides paragraphs of tight lists: items go on consecutive lines
        self.after_list_item = False
        self.quote_depth = 0
        self.table: list[list[str]] | None = None  # the rows of the table being read, its header first

    def write(self, tokens: list[Token]) -> str:
        for token in tokens:
            handler = getattr(self, f"_{token.type}", None)
            if handler:
                handler(token)
        return "\n\n".join(block for block in self.blocks if block.strip()) + "\n"

    def _bullet_list_open(self, token: Token) -> None:
        self.lists.append(_OpenList(None))

    def _ordered_list_open(self, token: Token) -> None:
        self.lists.append(_OpenList(int(token.attrGet("start") or 1)))

    def _bullet_list_close(self, token: Token) -> None:
        self.lists.pop()
        # Text after a list starts a new block, unless an enclosing list carries on.
        self.after_list_item = bool(self.lists)

    _ordered_list_close = _bullet_list_close

    def _list_item_open(self, token: Token) -> None:
        current = self.lists[-1]
        if current.number is None:
            current.marker = "- "
        else:
            current.marker = f"{current.number}. "
            current.number += 1
        self.item_started = True

    def _paragraph_open(self, token: Token) -> None:
        self.tight = token.hidden

    def _heading_open(self, token: Token) -> None:
        self.tight = False

    def _blockquote_open(self, token: Token) -> None:
        self.quote_depth += 1

    def _blockquote_close(self, token: Token) -> None:
        self.quote_depth -= 1

    def _inline(self, token: Token) -> None:
        text = _inline_text(token.children or [])
        if self.table is not None:
            self.table[-1].append(text)
        else:
            self._add_paragraph(text)

    def _table_open(self, token: Token) -> None:
        self.table = []

    def _tr_open(self, token: Token) -> None:
        if self.table is not None:
            self.table.append([])

    def _table_close(self, token: Token) -> None:
        """Each row as `Header: value` lines, a blank line between rows: it reads at any width, where
        columns would not fit 72 characters, let alone a phone."""
        header, *rows = self.table or [[]]
        self.table = None
        if not rows:
            self._add_paragraph(" · ".join(cell for cell in header if cell))
        for row in rows:
            cells = itertools.zip_longest(header, row, fillvalue="")
            self._add_paragraph(
                "\n".join(f"{name}: {value}" if name else value for name, value in cells if value)
            )

    def _fence(self, token: Token) -> None:
        self.blocks.append(textwrap.indent(token.content.rstrip("\n"), "    "))

    _code_block = _fence

    def _html_block(self, token: Token) -> None:
        self._add_paragraph(nh3.clean(token.content, tags=set()).strip())

    def _hr(self, token: Token) -> None:
        self.blocks.append("-" * 20)

    def _add_paragraph(self, text: str) -> None:
        if not text:
            return
        outer = "".join(" " * len(open_list.marker) for open_list in self.lists[:-1])
        if self.lists:
            marker = self.lists[-1].marker
            rest = outer + " " * len(marker)
            first = outer + marker if self.item_started else rest
        else:
            first = rest = ""
        quote = "> " * self.quote_depth
        lines = []
        for line in text.split("\n"):
            lines.append(
                textwrap.fill(
                    line,
                    self.width,
                    initial_indent=quote + first,
                    subsequent_indent=quote + rest,
                    break_long_words=False,
                    break_on_hyphens=False,
                )
            )
            first = rest
        paragraph = "\n".join(lines)
        if self.lists and self.after_list_item and self.tight and self.item_started:
            self.blocks[-1] += "\n" + paragraph
        else:
            self.blocks.append(paragraph)
        self.item_started = False
        self.after_list_item = bool(self.lists)


def _inline_text(children: list[Token]) -> str:
    parts: list[str] = []
    links: list[tuple[str, int]] = []
    hidden_until: str | None = None  # inside inline <script> or <style>: its content is not text
    for child in children:
        if child.type == "html_inline":
            tag = child.content.lower()
            if hidden_until is None and tag.startswith(("<script", "<style")):
                hidden_until = "</script" if tag.startswith("<script") else "</style"
            elif hidden_until and tag.startswith(hidden_until):
                hidden_until = None
            continue
        if hidden_until:
            continue
        if child.type == "text" or child.type == "code_inline":
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
        elif child.type == "link_open":
            links.append((str(child.attrGet("href") or ""), len(parts)))
        elif child.type == "link_close" and links:
            href, start = links.pop()
            label = "".join(parts[start:]).strip()
            target = href.removeprefix("mailto:")
            if label and label != target:
                parts.append(f" ({target})")
            elif not label:
                parts.append(target)
        elif child.type == "image":
            alt = child.content or str(child.attrGet("alt") or "")
            if alt:
                parts.append(f"[{alt}]")
    return re.sub(r" {2,}", " ", "".join(parts)).strip()
