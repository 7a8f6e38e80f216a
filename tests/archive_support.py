"""Small issues for the archive tests, a link checker for built sites, and a loopback static server."""

from __future__ import annotations

import functools
import html.parser
import http.server
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

from newsletter.settings import Settings


def settings_for(project: Path, repo_root: Path, database_url: str | None = None) -> Settings:
    """Settings for issues in `project`, the repository's theme and vocabulary, and no database unless
    one is given (the archive then publishes `archive: true` issues only)."""
    return Settings(
        issues_dir=project / "issues",
        theme_dir=repo_root / "templates",
        vocabulary_dir=repo_root / "subscribers",
        database_url=database_url or f"sqlite:///{project / 'no-database-here.sqlite3'}",
    )


def issue_yaml(
    title: str,
    date: str,
    *,
    archive: bool = True,
    places: tuple[tuple[str, str, str, str], ...] = (),
    publications: tuple[tuple[str, str, str], ...] = (),
    story: tuple[str, str, str] | None = None,
) -> str:
    """An issue file: `places` as (place, region, text, topics), `publications` as (title, date, topics),
    `story` as (title, body, topics); topics written as YAML lists such as `[housing]`."""
    lines = [
        f"title: {title}",
        f"date: {date}",
        f"subject: {title}",
        f"preheader: What happened in {title}",
        "editor: Test Editor",
        f"archive: {'true' if archive else 'false'}",
        "sections:",
    ]
    if story:
        lines += [
            "  - kind: story",
            f"    title: {story[0]}",
            "    body: |",
            f"      {story[1]}",
            f"    topics: {story[2]}",
        ]
    if publications:
        lines += ["  - kind: publications", "    items:"]
        for name, day, topics in publications:
            slug = name.lower().replace(" ", "-")
            lines += [
                f"      - title: {name}",
                f"        url: https://reports.example.org/{slug}",
                "        summary: |",
                f"          A report called {name}.",
                f"        date: {day}",
                f"        topics: {topics}",
            ]
    if places:
        lines += ["  - kind: places", "    items:"]
        for place, region, text, topics in places:
            lines += [
                f"      - place: {place}",
                f"        region: {region}",
                "        kind: Marmot Region",
                "        updates: |",
                f"          {text}",
                f"        topics: {topics}",
            ]
    return "\n".join(lines) + "\n"


def write(project: Path, slug: str, text: str) -> Path:
    path = project / "issues" / slug / "issue.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.duplicate_ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.links.append(value)
            elif name == "id" and value:
                if value in self.ids:
                    self.duplicate_ids.append(value)
                self.ids.add(value)


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def duplicate_ids(root: Path) -> list[str]:
    """Ids used twice in one page (anchors would be ambiguous), as `page: id`."""
    return [
        f"{page.relative_to(root)}: {value}"
        for page in sorted(root.rglob("*.html"))
        for value in _parse(page).duplicate_ids
    ]


# Pages of the web app that the archive links to: not files of the build, served beside it at the root.
APP_PAGES = frozenset({"/subscribe"})


def resolve(page_url: str, link: str) -> str:
    """The site path a relative `link` on the page at `page_url` leads to, as a browser resolves it."""
    base = page_url.rsplit("/", 1)[0] + "/"
    target_url = link if link.startswith("/") else base + link
    resolved: list[str] = []
    for segment in target_url.split("/"):
        if segment == "..":
            if len(resolved) > 1:
                resolved.pop()
        elif segment != ".":
            resolved.append(segment)
    return "/".join(resolved) or "/"


def broken_links(root: Path) -> list[str]:
    """Every internal href/src in every HTML file under `root` that does not resolve to a file (and,
    with a #fragment, to an element with that id), as if `root` were served at `/` beside the web
    app (whose `APP_PAGES` are not files)."""
    broken = []
    parsed: dict[Path, _Links] = {}
    for page in sorted(root.rglob("*.html")):
        links = parsed.setdefault(page, _parse(page))
        page_url = "/" + page.relative_to(root).as_posix()
        for link in links.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc:
                continue  # external (https:, mailto:): not ours to check
            if parts.path:
                target_url = resolve(page_url, parts.path)
                if target_url in APP_PAGES:
                    continue
                target = root / unquote(target_url).lstrip("/")
                if target_url.endswith("/") or target.is_dir():
                    target = target / "index.html"
            else:
                target = page
            if not target.is_file():
                broken.append(f"{page.relative_to(root)}: {link}")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = parsed.setdefault(target, _parse(target)).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(root)}: {link} (no such id)")
    return broken


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def end_headers(self) -> None:
        # The strictest policy a host might set: the archive must work without inline code or other sites.
        self.send_header("Content-Security-Policy", "default-src 'self'")
        super().end_headers()


@contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    """Serve `root` at http://127.0.0.1:PORT/ (stdlib http.server in a thread) under CSP default-src 'self'."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
