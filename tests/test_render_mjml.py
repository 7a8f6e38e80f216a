"""The MJML compile step: `mj-text` contents pass through verbatim, as MJML defines them to."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from mjml import mjml2html

from newsletter.errors import UserError
from newsletter.render.edition import hold_text, with_main_landmark

SHELL = "<mjml><mj-body><mj-section><mj-column>{}</mj-column></mj-section></mj-body></mjml>"


class _Attributes(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.found.append(dict(attrs))


def _links(html: str) -> list[dict[str, str | None]]:
    parser = _Attributes()
    parser.feed(html)
    return parser.found


def _visible(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_a_single_quoted_attribute_holding_double_quotes_stays_valid(editor):
    source = SHELL.format("""<mj-text><a title='say "hi"' href="https://example.org/">hello</a></mj-text>""")
    html = editor.renderer.compile_mjml(source)
    assert _links(html) == [{"title": 'say "hi"', "href": "https://example.org/"}]


def test_the_sample_compiles_to_the_same_page_with_every_content_verbatim(editor, sample):
    source = sample.edition.mjml
    held = editor.renderer.compile_mjml(source)
    whole = mjml2html(source, disable_comments=True)
    assert _visible(held) == _visible(whole)
    layout, contents = hold_text(source)
    assert len(contents) == source.count("</mj-text>") > 10
    assert all(content in held for content in contents)
    assert layout.count("nl-held-text-") == len(contents)


@pytest.mark.parametrize(
    "body",
    [
        "<mj-text>nl-held-text-0x is written here by hand</mj-text>",  # marker text in the source
        '<mj-text css-class="a" /><mj-text>after an empty one</mj-text>',
        "<mj-text>one</mj-text><mj-text>two</mj-text><mj-button href='https://example.org/'>go</mj-button>",
    ],
    ids=["marker-in-source", "empty-mj-text", "several"],
)
def test_unusual_sources_compile_as_a_whole_compile_would(editor, body):
    source = SHELL.format(body)
    assert _visible(editor.renderer.compile_mjml(source)) == _visible(
        mjml2html(source, disable_comments=True)
    )


def test_invalid_mjml_is_still_a_clear_theme_error(editor):
    with pytest.raises(UserError, match="the theme's MJML does not compile"):
        editor.renderer.compile_mjml("<mjml><mj-body><mj-section><mj-text>unclosed")


def test_the_compiled_body_is_wrapped_in_one_main_landmark(editor):
    html = editor.renderer.compile_mjml(SHELL.format("<mj-text>hello</mj-text>"))
    body = re.search(r"<body[^>]*>(.*)</body>", html, re.DOTALL)
    assert body and body.group(1).startswith('<div role="main">') and body.group(1).endswith("</div>")
    assert html.count('role="main"') == 1
    assert with_main_landmark(html) == html  # one is enough


def test_html_without_a_body_is_left_alone():
    assert with_main_landmark("<p>a fragment</p>") == "<p>a fragment</p>"
