"""The theme's CSS inlined once per piece of an email, not once per email.

Delivery renders an issue once per variant, and inlining the theme's CSS into
the whole email is most of a variant's render (css-inline parses and writes
some 50 KB each time). Yet a variant is a compiled layout (held `mj-text`
markers in place of the texts, see `edition.hold_text`) plus texts that other
variants share. So the first time a layout is seen, or a text in a given
place of it, the whole email is inlined once with every text between two
comments; the inlined layout and each inlined text are then kept, and a later
variant made of pieces already seen is put together from them. The result is
byte for byte what inlining the whole email gives (a test checks this on the
sample's variants): a text's inlined form depends on the text and on where it
sits in its layout, and both are in the key. This holds for theme rules that
select elements by what and where they are (types, classes, ancestors),
which is what `theme.css` is for; a rule that looked at what an element
contains (`:empty`, `:has()`) could differ.
"""

from __future__ import annotations

import css_inline

SENTINEL = "nl-inline-"
MAX_PIECES = 4096  # kept texts (and layouts) at most; all forgotten at once when full


class PieceInliner:
    """Inlines emails given as a compiled layout with numbered markers and the texts that go in them."""

    def __init__(self, inliner: css_inline.CSSInliner, marker: str) -> None:
        self.inliner = inliner
        self.marker = marker
        self.layouts: dict[str, list[str]] = {}
        self.texts: dict[tuple[str, int, str], str] = {}

    def inline(self, layout: str, texts: list[str]) -> str | None:
        """The inlined email, or None when the layout's markers are not exactly `texts`' numbers."""
        pieces = split_at_markers(layout, self.marker, len(texts))
        if pieces is None:
            return None
        kept_layout = self.layouts.get(layout)
        if kept_layout is not None:
            kept_texts = [self.texts.get((layout, number, text)) for number, text in enumerate(texts)]
            if None not in kept_texts:
                return interleave(kept_layout, kept_texts)  # type: ignore[arg-type]
        opens = [f"<!--{SENTINEL}{number}-->" for number in range(len(texts))]
        closes = [f"<!--/{SENTINEL}{number}-->" for number in range(len(texts))]
        marked = interleave(
            pieces, [f"{o}{text}{c}" for o, text, c in zip(opens, texts, closes, strict=True)]
        )
        inlined = self.inliner.inline(marked)
        bounds = [mark for pair in zip(opens, closes, strict=True) for mark in pair]
        parts = _between(inlined, bounds)
        if parts is None:  # the texts did not stay between their comments: no pieces to keep
            return self.inliner.inline(interleave(pieces, texts))
        inlined_layout, inlined_texts = parts[0::2], parts[1::2]
        if len(self.texts) + len(texts) > MAX_PIECES or len(self.layouts) >= MAX_PIECES:
            self.layouts.clear()
            self.texts.clear()
        self.layouts[layout] = inlined_layout
        for number, (text, inlined_text) in enumerate(zip(texts, inlined_texts, strict=True)):
            self.texts[(layout, number, text)] = inlined_text
        return interleave(inlined_layout, inlined_texts)


def split_at_markers(document: str, marker: str, count: int) -> list[str] | None:
    """`document` cut at markers `{marker}0x` ... `{marker}{count - 1}x` (left out), each there once
    and in order; None otherwise."""
    pieces = document.split(marker)
    if len(pieces) != count + 1:
        return None
    for number in range(1, count + 1):
        number_text = f"{number - 1}x"
        if not pieces[number].startswith(number_text):
            return None
        pieces[number] = pieces[number][len(number_text) :]
    return pieces


def _between(document: str, marks: list[str]) -> list[str] | None:
    """`document` cut at each of `marks` (each holding SENTINEL), found once each and in this order (the
    marks left out)."""
    # Each mark holds SENTINEL: as many SENTINELs as marks, each mark found after the one before, means
    # each is there once. One count for them all (counting each mark scanned the document once a mark).
    if document.count(SENTINEL) != len(marks):
        return None
    pieces: list[str] = []
    position = 0
    for mark in marks:
        found = document.find(mark, position)
        if found < 0:
            return None
        pieces.append(document[position:found])
        position = found + len(mark)
    pieces.append(document[position:])
    return pieces


def interleave(outer: list[str], inner: list[str]) -> str:
    """outer[0] inner[0] outer[1] inner[1] ... outer[-1]."""
    out = [outer[0]]
    for text, after in zip(inner, outer[1:], strict=True):
        out += [text, after]
    return "".join(out)
