"""Editor Markdown -> safe HTML for the email, and -> readable plain text for the text part.

Results are remembered per source text: a campaign renders the same items
into many variants. Both come from the same markdown-it token stream, so the text part says what
the HTML says, with every link written out. Raw HTML in Markdown is allowed
(editors paste it) but passes through nh3, which keeps only harmless tags and
https/mailto links: no `<script>`, no `javascript:`.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

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
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
# http stays so that `newsletter check` can point at it; the lint refuses it before sending.
ALLOWED_SCHEMES = {"https", "http", "mailto"}
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
        url_schemes=ALLOWED_SCHEMES,
        link_rel=None,
    )
    return Markup(cleaned.strip())


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
        self._add_paragraph(_inline_text(token.children or []))

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
