"""Issue -> Edition: Jinja2 fills the theme's MJML, mjml-python compiles it, css-inline inlines it.

CSS inlining uses css-inline rather than premailer: on MJML output premailer
takes ~40 ms against ~2 ms, drops `<!doctype html>` and strips the
`@media` blocks MJML relies on. css-inline is told to leave MJML's own
`<style>` blocks in place (media queries, MSO fixes, dark mode) and to inline
only the theme's `theme.css`.

The plain-text part is rendered from its own templates in `templates/text/`
with the same data, not converted from the HTML, so every link is written out.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import css_inline
import jinja2
from mjml import mjml2html

from newsletter.content.model import Issue
from newsletter.errors import UserError, display_path
from newsletter.render import markdown
from newsletter.render.events import EventFormat
from newsletter.render.fragments import FragmentCache
from newsletter.render.inlining import PieceInliner, interleave, split_at_markers
from newsletter.render.placeholders import PERSONAL_LINKS
from newsletter.settings import Settings
from newsletter.vocabulary import Vocabulary

EMAIL_TEMPLATE = "issue.mjml.j2"
TEXT_TEMPLATE = "issue.txt.j2"
THEME_CSS = "theme.css"


@dataclass(frozen=True)
class Edition:
    """One rendered variant of an issue: what delivery turns into MIME and the lint checks."""

    issue: Issue
    subject: str
    preheader: str
    mjml: str
    html: str
    text: str

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))


class Renderer:
    """The theme's templates and CSS, loaded once and reused for every render."""

    def __init__(self, settings: Settings, vocabulary: Vocabulary) -> None:
        self.settings = settings
        self.vocabulary = vocabulary
        self.theme_dir = settings.theme_dir
        self.email_env = self._environment("email", autoescape=True, markdown_filter=markdown.to_html)
        self.text_env = self._environment("text", autoescape=False, markdown_filter=markdown.to_text)
        css_path = self.theme_dir / "email" / THEME_CSS
        try:
            theme_css = css_path.read_text(encoding="utf-8")
        except OSError as error:
            raise UserError(
                f"{display_path(css_path)}: cannot read the theme's CSS: {error.strerror}"
            ) from None
        self.inliner = css_inline.CSSInliner(
            inline_style_tags=False,
            keep_style_tags=True,
            keep_link_tags=True,
            load_remote_stylesheets=False,
            extra_css=theme_css,
        )
        self.pieces = PieceInliner(self.inliner, _HELD)

    def render(self, issue: Issue, *, with_html: bool = True) -> Edition:
        """Render the full edition (every section) of `issue`; only its text part without `with_html`
        (for members who chose plain text: MJML and inlining are most of a render's cost)."""
        context = self.context(issue)
        mjml_source = html = ""
        if with_html:
            mjml_source = self._render_template(self.email_env, EMAIL_TEMPLATE, context)
            html = self._html(mjml_source)
        text = _tidy_text(self._render_template(self.text_env, TEXT_TEMPLATE, context))
        return Edition(issue, issue.subject, issue.preheader, mjml_source, html, text)

    def context(self, issue: Issue) -> dict[str, object]:
        """What every template sees: the issue, the network, and the personal-link placeholders."""
        return {
            "issue": issue,
            "network_name": self.settings.network_name,
            "postal_address": self.settings.postal_address,
            "links": PERSONAL_LINKS,
            "regions": self.vocabulary.regions,
            "topics": self.vocabulary.topics,
        }

    def _html(self, mjml_source: str) -> str:
        """Compiled and inlined: from pieces inlined before when the layout and texts allow it."""
        layout, contents = hold_text(mjml_source)
        if contents:
            try:
                compiled_layout = _compile_layout(layout)
            except Exception:  # an unusual layout: the whole compile decides
                compiled_layout = None
            if compiled_layout is not None:
                html = self.pieces.inline(compiled_layout, contents)
                if html is not None:
                    return html
        return self.inliner.inline(self.compile_mjml(mjml_source))

    def compile_mjml(self, source: str) -> str:
        """MJML -> HTML with mjml-python (MRML, a Rust port of MJML), `mj-text` contents passed through.

        In MJML an `mj-text` is an ending tag: its content is HTML that the official compiler copies
        into the output untouched. mjml-python parses and re-serialises it instead, which costs a
        third of its time and gets some HTML wrong (`title='say "hi"'` comes out as an attribute
        that ends at the backslash). So each content is swapped for a marker, the layout compiled,
        and the content put back verbatim; anything unexpected falls back to compiling it whole.
        """
        layout, contents = hold_text(source)
        if contents:
            try:
                restored = restore_text(_compile_layout(layout), contents)
            except Exception:  # an unusual layout: the whole compile below decides
                restored = None
            if restored is not None:
                return restored
        try:
            return _mjml_to_html(source)
        except Exception as error:  # mjml-python raises a bare error type for invalid MJML
            raise UserError(
                f"{display_path(self.theme_dir / 'email')}: the theme's MJML does not compile: {error}"
            ) from None

    def _environment(self, kind: str, autoescape: bool, markdown_filter: object) -> jinja2.Environment:
        folder = self.theme_dir / kind
        if not folder.is_dir():
            raise UserError(f"{display_path(folder)}: the theme has no '{kind}' templates folder")
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(folder),
            autoescape=autoescape,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            extensions=[FragmentCache],
        )
        env.filters.update(
            markdown=markdown_filter,
            typographer=markdown.typographer,
            long_date=long_date,
            event_time=event_time,
            image_url=self.image_url,
            underline=underline,
        )
        env.filters.update(EventFormat(self.settings).filters())
        return env

    def _render_template(self, env: jinja2.Environment, name: str, context: dict[str, object]) -> str:
        folder = Path(str(env.loader.searchpath[0]))  # type: ignore[union-attr]
        try:
            return env.get_template(name).render(context)
        except jinja2.TemplateNotFound as error:
            raise UserError(f"{display_path(folder / str(error))}: template not found") from None
        except jinja2.TemplateSyntaxError as error:
            where = display_path(error.filename or folder / name)
            raise UserError(f"{where}:{error.lineno}: template error: {error.message}") from None
        except jinja2.UndefinedError as error:
            raise UserError(
                f"{display_path(folder / name)}: template uses something undefined: {error.message}"
            ) from None

    def image_url(self, source: str, issue: Issue) -> str:
        """An image file next to issue.yaml is published with the archive, under the issue's address."""
        if source.startswith("https://"):
            return source
        return f"{self.settings.base_url.rstrip('/')}/archive/{issue.slug}/{source}"


_BLANK_LINES = re.compile(r"\n{3,}")
_TEXT_OPEN, _TEXT_CLOSE, _HELD = "<mj-text", "</mj-text>", "nl-held-text-"


@lru_cache(maxsize=256)
def _compile_layout(layout: str) -> str:
    """A layout compiled once: an issue's variants mostly differ in their texts, not their layout."""
    return _mjml_to_html(layout)


def _mjml_to_html(source: str) -> str:
    """mjml-python's HTML with the body's content in one main landmark (see `with_main_landmark`)."""
    return with_main_landmark(mjml2html(source, disable_comments=True))


_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_MAIN_ROLE = re.compile(r"""\brole\s*=\s*["']?main\b""", re.IGNORECASE)


def with_main_landmark(html: str) -> str:
    """Everything in `<body>` (the hidden preheader, the email, its footer) inside one `role="main"`.

    A page with no main landmark leaves screen-reader users no way to jump to
    the content, and axe reports every piece of it as outside any region. MJML
    cannot write a role on its wrappers (mrml drops unknown attributes, and an
    `mj-raw` must hold whole elements), so the compiled body is wrapped here, in
    a `div` with the role as MJML writes its own (`role="article"`). HTML that
    already has a main landmark, or no body, is returned as it is.
    """
    opening = _BODY_OPEN.search(html)
    closing = html.rfind("</body>")
    if opening is None or closing < opening.end() or _MAIN_ROLE.search(html):
        return html
    start = opening.end()
    return f'{html[:start]}<div role="main">{html[start:closing]}</div>{html[closing:]}'


def hold_text(source: str) -> tuple[str, list[str]]:
    """MJML with each `mj-text`'s content replaced by a numbered marker, and the contents, trimmed as
    MJML trims them. A source that already holds marker text is returned whole, nothing held."""
    if _HELD in source:
        return source, []
    pieces = source.split(_TEXT_CLOSE)  # each piece but the last ends with an opening tag and its content
    contents: list[str] = []
    for number, piece in enumerate(pieces[:-1]):
        start = piece.rfind(_TEXT_OPEN)
        tag_end = piece.find(">", start)
        if start < 0 or tag_end < 0 or piece[start + len(_TEXT_OPEN)] not in " \t\r\n>":
            return source, []  # not the shape the theme writes: compile it whole
        contents.append(piece[tag_end + 1 :].strip())
        pieces[number] = f"{piece[: tag_end + 1]}{_HELD}{number}x"
    return _TEXT_CLOSE.join(pieces), contents


def restore_text(html: str, contents: list[str]) -> str | None:
    """Compiled HTML with each held content back where its marker is; None unless every marker
    came through exactly once and in order."""
    pieces = split_at_markers(html, _HELD, len(contents))
    return None if pieces is None else interleave(pieces, contents)


def long_date(value: dt.date) -> str:
    """`2023-10-20` -> `20 October 2023`, as British readers write it."""
    return f"{value.day} {value:%B %Y}"


def event_time(value: dt.datetime) -> str:
    """`2023-10-05 10:00` -> `Thursday 5 October 2023, 10:00`; a whole-day event shows no time."""
    day = f"{value:%A} {long_date(value)}"
    return day if value.time() == dt.time() else f"{day}, {value:%H:%M}"


def underline(text: str, char: str = "=") -> str:
    """A plain-text heading: the text with a rule of the same length under it."""
    return f"{text}\n{char * len(text)}"


def _tidy_text(text: str) -> str:
    """Trim trailing spaces and collapse runs of blank lines the templates leave behind."""
    # Line by line: a regex for trailing spaces would stop at every space of the text.
    text = "\n".join([line.rstrip(" \t") for line in text.split("\n")])
    return _BLANK_LINES.sub("\n\n", text).strip() + "\n"
