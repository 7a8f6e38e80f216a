"""`{% cache KEY, ... %}...{% endcache %}`: a Jinja block rendered once per key and then reused.

Delivery renders an issue once per variant (members who chose different
topics or live in another region get different sections and orders), yet
most sections come out the same in every variant. The theme wraps each
section in `{% cache issue.slug, section %}`: sections are frozen dataclasses
compared by value, so an unchanged section is rendered once however many
variants carry it, and a changed one (other items, another order) is a new
key. Everything a cached block shows must come from its key or from what is
the same for the whole Renderer (network name, vocabulary, link placeholders).

At most `MAX_FRAGMENTS` blocks are kept (least recently used go first).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar

from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser

MAX_FRAGMENTS = 2048


class FragmentCache(Extension):
    """The `cache` tag; each Environment keeps its own fragments."""

    tags: ClassVar[set[str]] = {"cache"}

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        environment.extend(fragments=OrderedDict())

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        keys = [parser.parse_expression()]
        while parser.stream.skip_if("comma"):
            keys.append(parser.parse_expression())
        body = parser.parse_statements(("name:endcache",), drop_needle=True)
        call = self.call_method("_fragment", [nodes.Tuple(keys, "load")])
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _fragment(self, key: tuple[Any, ...], caller: Callable[[], str]) -> str:
        fragments: OrderedDict[tuple[Any, ...], str] = self.environment.fragments  # type: ignore[attr-defined]
        try:
            found = fragments.get(key)
        except TypeError:  # a key that cannot be hashed is never cached
            return caller()
        if found is not None:
            fragments.move_to_end(key)
            return found
        rendered = caller()
        fragments[key] = rendered
        if len(fragments) > MAX_FRAGMENTS:
            fragments.popitem(last=False)
        return rendered
