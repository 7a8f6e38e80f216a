"""`newsletter demo`: the whole job on embedded defaults, end to end, on this machine only.

Check, render and preview the sample issue; create the SQLite database and
import the sample members; start a local SMTP sink; send the issue to a
segment through the real pipeline (ledger, personalised variants, SMTP); say
where the mail landed and what it looks like; and build the web archive the
emails' "view in browser" links point at. Nothing leaves loopback.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
from collections.abc import Callable
from pathlib import Path

from newsletter.archive.build import build as build_archive
from newsletter.audience.service import Audience
from newsletter.audience.store import Store
from newsletter.db.models import Role
from newsletter.delivery.copies import render_copy
from newsletter.delivery.service import Sending
from newsletter.delivery.worker import WorkerStats
from newsletter.editor import Editor
from newsletter.errors import display_path
from newsletter.preview import write_static_preview
from newsletter.settings import Settings
from newsletter.sink import MaildirSink
from newsletter.team import Team, sign_in_url

SAMPLE_ISSUE = "2023-10"
SAMPLE_MEMBERS = "sample.csv"
DEMO_AUDIENCE = "everyone"
DEMO_ADMIN = "desk.admin@example.org"
LOCAL_DESK = "http://127.0.0.1:8000"  # where `newsletter serve --debug` answers


def run(
    settings: Settings,
    out_dir: Path,
    say: Callable[[str], None],
    progress: Callable[[int], Callable[[WorkerStats], None]] | None = None,
) -> None:
    """Do the whole job, reporting each step through `say`; `progress(total)` gives a per-batch callback."""
    editor = Editor(settings)
    issue_out = out_dir / SAMPLE_ISSUE
    copy = render_copy(editor, SAMPLE_ISSUE, issue_out)  # a sample member's copy; problems stop here
    checked = copy.checked
    say(f"check:    {checked.summary()}")
    say(
        f"render:   {display_path(issue_out / 'email.html')}, {display_path(issue_out / 'email.txt')}, "
        f"{display_path(issue_out / 'email.eml')}: {copy.describe()}"
    )
    page = write_static_preview(checked, settings.theme_dir, issue_out)
    say(f"preview:  open {display_path(page)} in a browser (phone and desktop widths, text part)")

    store = Store.open(settings, editor.vocabulary)
    audience = Audience(store)
    try:
        _, schema = store.upgrade()
        say(f"database: {store.database.display_url()} at schema {schema}")
        sample = settings.vocabulary_dir / SAMPLE_MEMBERS
        say(f"import:   {display_path(sample)}: {audience.import_csv(sample, source='demo: sample members')}")
        for segment, count in audience.segment_counts():
            say(f"segment:  {segment.name:<26} {count:>5}  {segment.description}")
        _send(settings, store, out_dir / "sink", say, progress)
        _desk_admin(settings, store, say)
    finally:
        store.close()
    site = out_dir / "site"
    report = build_archive(settings, site)
    say(f"archive:  {report.summary()}")
    say(f"  open {display_path(site / 'archive' / 'index.html')} in a browser, or serve the whole site")


def _desk_admin(settings: Settings, store: Store, say: Callable[[str], None]) -> None:
    """An admin account for the editor's desk, and a link that signs it in on the local server."""
    team = Team(store.database, settings.secret_key)
    if team.find(DEMO_ADMIN) is None:
        team.add(DEMO_ADMIN, Role.ADMIN, name="Demo admin")
    made = team.sign_in_token(DEMO_ADMIN)
    assert made is not None
    say(
        f"desk:     admin account {DEMO_ADMIN}: run `newsletter serve --debug`, then open\n"
        f"          {sign_in_url(LOCAL_DESK, made[1])}\n"
        f"          (it works once, for 30 minutes; `newsletter editors link {DEMO_ADMIN} --base {LOCAL_DESK}` "
        "prints another)"
    )


def _send(
    settings: Settings,
    store: Store,
    maildir: Path,
    say: Callable[[str], None],
    progress: Callable[[int], Callable[[WorkerStats], None]] | None,
) -> None:
    with MaildirSink(maildir, port=0) as sink:
        local = dataclasses.replace(settings, smtp_url=f"smtp://127.0.0.1:{sink.port}")
        say(f"sink:     an SMTP server on 127.0.0.1:{sink.port} keeping mail in {display_path(maildir)}/")
        sending = Sending(local, store)
        # The demo may run again in the same folder: it re-sends knowingly (`send --resend`), and says so.
        planned = sending.plan(SAMPLE_ISSUE, [DEMO_AUDIENCE], resend=True)
        campaign, size = sending.schedule(planned), planned.to_send
        say(
            f"send:     campaign {campaign.id}: {SAMPLE_ISSUE} to the '{DEMO_AUDIENCE}' segment ({size} members)"
        )
        if planned.already:
            say(
                f"  {planned.already} of them had it from an earlier demo run; an issue goes to each member "
                "once unless sent with --resend, as the demo does"
            )
        stats = sending.work(once=True, progress=progress(size) if progress else None)
        report = sending.status(campaign.id)
        say(
            f"worker:   {stats.sent} sent, {stats.deferred} deferred, {stats.failed} failed, "
            f"{stats.skipped} skipped; campaign {campaign.id} is {report.campaign.status.value}"
        )
        newest = max(
            (path for path in (maildir / "new").iterdir()), key=lambda p: p.stat().st_mtime, default=None
        )
        say(
            f"mail:     {sink.stored} messages stored this run, {sink.count()} in {display_path(maildir)}/new in all"
        )
        if newest is not None:
            message = email.message_from_bytes(newest.read_bytes(), policy=email.policy.default)
            say(f"  one of them: {display_path(newest)}")
            for header in (
                "From",
                "To",
                "Subject",
                "List-Unsubscribe",
                "List-Unsubscribe-Post",
                "Message-ID",
            ):
                say(f"    {header}: {message[header]}")
            parts = [part.get_content_type() for part in message.walk() if not part.is_multipart()]
            say(f"    parts: {', '.join(parts)}")
