"""The archive served by the web app at /archive/: the same `ArchiveSite` the static build writes.

No second implementation: a request looks its path up in the site's pages
and returns the bytes the static build would have written. The site is laid
out again only when something it is made from changes (an issue file, an
image, the theme, the vocabulary, or the set of sent campaigns); that check
runs at most every `recheck_seconds`, so a busy archive costs a few `stat`s.
If a changed issue no longer validates, the last good archive keeps being
served and the problems are logged for the editor.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, redirect, request

from newsletter.archive.collect import sent_campaigns
from newsletter.archive.site import ArchiveSite, archive_day, load_site
from newsletter.errors import UserError
from newsletter.render.web import THEME_FOLDER
from newsletter.settings import Settings

RECHECK_SECONDS = 2.0


class SiteCache:
    """The current `ArchiveSite`, rebuilt when its inputs change; safe to share between threads."""

    def __init__(self, settings: Settings, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self.settings = settings
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._site: ArchiveSite | None = None
        self._fingerprint: str | None = None
        self._checked_at = float("-inf")

    def site(self) -> ArchiveSite | None:
        """The archive as it is now, or the last good one if the newest inputs do not build."""
        with self._lock:
            now = time.monotonic()
            if self._site is not None and now - self._checked_at < self.recheck_seconds:
                return self._site
            self._checked_at = now
            sent, note = sent_campaigns(self.settings)
            fingerprint = self._inputs(sent)
            if fingerprint != self._fingerprint:
                try:
                    self._site = load_site(self.settings, sent)
                except UserError as error:
                    current_app.logger.error(
                        "archive not updated, still serving the last good one:\n%s", error
                    )
                else:
                    if note:
                        current_app.logger.warning("archive: %s", note)
                self._fingerprint = fingerprint
            return self._site

    def _inputs(self, sent: dict[str, str]) -> str:
        """A digest of every file the archive is made from (name, size, time) and the sent campaigns."""
        digest = hashlib.sha256()
        folders = (
            self.settings.issues_dir,
            self.settings.theme_dir / THEME_FOLDER,
            self.settings.vocabulary_dir,
        )
        for folder in folders:
            for path in sorted(_files(folder)):
                stat = path.stat()
                digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        for slug in sorted(sent):
            digest.update(f"{slug}\0{hashlib.sha256(sent[slug].encode()).hexdigest()}\n".encode())
        digest.update(f"{archive_day(self.settings)}\n".encode())  # the events page: upcoming becomes past
        return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    try:
        return [path for path in folder.rglob("*") if path.is_file()]
    except OSError:
        return []


def archive_blueprint(settings: Settings, recheck_seconds: float = RECHECK_SECONDS) -> Blueprint:
    """The archive's routes under /archive/: register with `app.register_blueprint(...)`."""
    blueprint = Blueprint("archive", __name__, url_prefix="/archive")
    cache = SiteCache(settings, recheck_seconds)

    @blueprint.get("/", defaults={"subpath": ""})
    @blueprint.get("/<path:subpath>")
    def page(subpath: str) -> Response:
        site = cache.site()
        if site is None:
            abort(503, "The archive is not available: its issue files do not validate yet.")
        path = f"archive/{subpath}"
        if path.endswith("/"):
            path += "index.html"
        if path not in site.pages:
            if f"{path}/index.html" in site.pages:
                # Pages link relatively: a folder must be addressed with its trailing slash.
                return redirect(f"{request.path}/", code=308)  # type: ignore[return-value]
            abort(404)
        response = Response(site.render(path), content_type=site.pages[path].content_type)
        response.cache_control.public = True
        response.cache_control.max_age = 300
        response.add_etag()
        return response.make_conditional(request)

    return blueprint
