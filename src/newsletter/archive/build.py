"""`newsletter archive build --out DIR`: the archive as static files under DIR/archive/.

Everything is rendered and written into a temporary folder beside the
target first, then swapped in with renames: a build that fails (an invalid
issue, a broken template) leaves the previous archive exactly as it was, and a
web server never sees half an archive. Only DIR/archive/ is replaced, so DIR
may hold other things (the rest of a site).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.archive.site import ArchiveSite, load_site
from newsletter.errors import UserError, display_path
from newsletter.settings import Settings

FOLDER = "archive"


@dataclass(frozen=True)
class BuildReport:
    """What a build wrote, for the command to print."""

    out_dir: Path
    issues: int
    pages: int
    drafts: int
    search_bytes: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"Archive built in {display_path(self.out_dir / FOLDER)}: {self.issues} issue{'s' if self.issues != 1 else ''}, "
            f"{self.pages} files, search index {self.search_bytes / 1024:.0f} KB, "
            f"{self.drafts} draft{'s' if self.drafts != 1 else ''} left out, {self.seconds:.1f} s"
        )


def build(settings: Settings, out_dir: Path, sent: dict[str, str] | None = None) -> BuildReport:
    """Load the published issues and write the whole archive into `out_dir/archive/`."""
    started = time.perf_counter()
    site = load_site(settings, sent)
    write_site(site, out_dir)
    return BuildReport(
        out_dir=out_dir,
        issues=len(site.issues),
        pages=len(site.pages),
        drafts=site.collection.drafts,
        search_bytes=len(site.render("archive/search.json")),
        seconds=time.perf_counter() - started,
        notes=list(site.collection.notes),
    )


def write_site(site: ArchiveSite, out_dir: Path) -> None:
    """Write every page into a fresh folder beside `out_dir/archive`, then swap it in."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{display_path(out_dir)}: is a file, not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".archive-new-", dir=out_dir))
    except OSError as error:
        raise UserError(f"{display_path(out_dir)}: cannot write here: {error.strerror}") from None
    try:
        for path, content in site:
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        _swap(staging / FOLDER, out_dir / FOLDER)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap(new: Path, target: Path) -> None:
    """Put `new` where `target` is, keeping the old one until the new one is in place."""
    old = None
    if target.exists():
        old = target.with_name(f".archive-old-{time.time_ns()}")
        target.rename(old)
    try:
        new.rename(target)
    except OSError:
        if old is not None:
            old.rename(target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
