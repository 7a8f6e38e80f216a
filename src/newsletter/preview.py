"""`newsletter preview`: the email at phone and desktop widths, and its text part, side by side.

A small local HTTP server (stdlib, loopback by default). It re-renders when
any file of the issue, the theme or the vocabulary changes, and the page
polls for that, so saving `issue.yaml` updates the preview within a second.
A mistake in the file keeps the last good render on screen and lists the
problems above it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jinja2

from newsletter.content.model import Issue
from newsletter.editor import CheckedIssue, Editor, text_only_page
from newsletter.errors import ProblemsFound, UserError

PAGE = "index.html.j2"


@dataclass(frozen=True)
class Personal:
    """One member's (or a group of members') version of the issue, as delivery will personalise it."""

    label: str  # who gets it, and what they do not get
    issue: Issue
    text_only: bool


# Given the issue as it is now on disk, the versions to show (`preview --as` / `--segment`).
Personalise = Callable[[Issue], list[Personal]]


@dataclass(frozen=True)
class View:
    """One pane set of the preview: a label, the email's HTML and its text part."""

    label: str
    html: str
    text: str


STATIC = {"/preview.css": "text/css; charset=utf-8", "/preview.js": "text/javascript; charset=utf-8"}


class PreviewState:
    """The latest render of one issue, redone whenever a watched file's mtime changes."""

    def __init__(self, editor: Editor, slug: str, personalise: Personalise | None = None) -> None:
        self.editor = editor
        self.slug = slug
        self.personalise = personalise
        self.views: list[View] = []
        self.issue_dir = editor.locate(slug).parent
        self.lock = threading.Lock()
        self.stamp = ("", "")
        self.html = "<!doctype html><p>Not rendered yet.</p>"
        self.text = ""
        self.problems: list[str] = []
        self.summary = ""
        self.rendered_at = 0.0

    def watched_stamp(self) -> tuple[str, str]:
        """The newest change to the issue, and to the theme and vocabulary (which need a new Editor)."""
        settings = self.editor.settings
        return _newest(self.issue_dir), _newest(settings.theme_dir, settings.vocabulary_dir)

    def current(self) -> PreviewState:
        """Re-render if anything changed on disk since the last render."""
        with self.lock:
            stamp = self.watched_stamp()
            if stamp != self.stamp:
                if stamp[1] != self.stamp[1] and self.stamp[1]:
                    # The theme's CSS and cached section fragments are loaded once per Editor: start afresh.
                    self.editor = Editor(self.editor.settings)
                self._render()
                self.stamp = stamp
        return self

    def _render(self) -> None:
        self.rendered_at = time.time()
        try:
            checked = self.editor.check(self.slug)
        except ProblemsFound as error:
            self.problems = [str(problem) for problem in error.problems]
            self.summary = f"{len(self.problems)} problem(s); showing the last good render"
            return
        except UserError as error:
            self.problems = [str(error)]
            self.summary = "cannot render; showing the last good render"
            return
        self.html, self.text = checked.edition.html, checked.edition.text
        self.views = self._views(checked)
        self.problems = [str(problem) for problem in checked.problems]
        self.summary = checked.summary() if not self.problems else f"{len(self.problems)} problem(s) to fix"

    def _views(self, checked: CheckedIssue) -> list[View]:
        """The whole issue, or each personal version asked for, rendered the way delivery renders it."""
        if self.personalise is None:
            return [View("the whole issue", checked.edition.html, checked.edition.text)]
        views = []
        for personal in self.personalise(checked.issue):
            edition = self.editor.renderer.render(personal.issue, with_html=not personal.text_only)
            page = text_only_page(personal.label) if personal.text_only else edition.html
            views.append(View(personal.label, page, edition.text))
        return views

    def view(self, number: int) -> View:
        """View `number` (from 0), or the first when there is no such view any more."""
        views = self.current().views or [View("", self.html, self.text)]
        return views[number] if 0 <= number < len(views) else views[0]


def _view_number(query: str) -> int:
    values = parse_qs(query).get("view", ["0"])
    return int(values[0]) if values[0].isdigit() else 0


def _newest(*folders: Path) -> str:
    return str(
        max((p.stat().st_mtime_ns for folder in folders for p in folder.rglob("*") if p.is_file()), default=0)
    )


class PreviewServer(ThreadingHTTPServer):
    """The preview's HTTP server, holding the state it serves."""

    daemon_threads = True
    state: PreviewState


def make_server(
    editor: Editor,
    slug: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    personalise: Personalise | None = None,
) -> PreviewServer:
    """Build (not start) the preview server; port 0 picks a free port.

    With `personalise`, the page offers each version it returns (`?view=N`) instead of the whole issue.
    """
    state = PreviewState(editor, slug, personalise).current()
    page, static = _preview_files(editor.settings.theme_dir, slug=slug, live=True)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path, number = parts.path, _view_number(parts.query)
            if path == "/":
                self._send(page, "text/html; charset=utf-8")
            elif path in STATIC:
                self._send(static[path], STATIC[path])
            elif path == "/email.html":
                self._send(state.view(number).html.encode(), "text/html; charset=utf-8")
            elif path == "/email.txt":
                self._send(state.view(number).text.encode(), "text/plain; charset=utf-8")
            elif path == "/state":
                now = state.current()
                body = {
                    "stamp": now.stamp,
                    "problems": now.problems,
                    "summary": now.summary,
                    "rendered_at": now.rendered_at,
                    "views": [view.label for view in now.views],
                }
                self._send(json.dumps(body).encode(), "application/json")
            else:
                self._send(b"Not found", "text/plain", HTTPStatus.NOT_FOUND)

        def _send(self, body: bytes, content_type: str, status: HTTPStatus = HTTPStatus.OK) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Keep the editor's terminal quiet: one line per render is printed by the CLI instead."""

    try:
        server = PreviewServer((host, port), Handler)
    except OSError as error:
        raise UserError(f"cannot listen on {host}:{port}: {error.strerror}; try another --port") from None
    server.state = state
    return server


def write_static_preview(checked: CheckedIssue, theme_dir: Path, out_dir: Path) -> Path:
    """A self-contained preview page next to a rendered `email.html`, for opening without a server."""
    problems = [str(problem) for problem in checked.problems]
    page, static = _preview_files(
        theme_dir,
        slug=checked.issue.slug,
        live=False,
        text=checked.edition.text,
        problems=problems,
        summary=checked.summary(),
    )
    for name, content in static.items():
        (out_dir / name.lstrip("/")).write_bytes(content)
    target = out_dir / "preview.html"
    target.write_bytes(page)
    return target


def _preview_files(theme_dir: Path, **context: object) -> tuple[bytes, dict[str, bytes]]:
    """The preview page rendered with `context`, and the theme's preview CSS and script."""
    preview_dir = theme_dir / "preview"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(preview_dir), autoescape=True)
    try:
        page = env.get_template(PAGE).render(context).encode()
        static = {path: (preview_dir / path.lstrip("/")).read_bytes() for path in STATIC}
    except (jinja2.TemplateError, OSError) as error:
        raise UserError(f"{preview_dir}: the theme's preview page is missing or broken: {error}") from None
    return page, static


def preview_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"
