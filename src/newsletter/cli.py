"""The `newsletter` command: parse arguments, call one library function, print the result.

No logic lives here. A mistake the user can fix (a `UserError`) is printed as
a plain message with exit code 1; a list of problems is printed one per line.
"""

from __future__ import annotations

import datetime as dt
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import click

from newsletter import __version__
from newsletter.content.scaffold import create_issue
from newsletter.editor import Editor
from newsletter.errors import ProblemsFound, UserError, display_path
from newsletter.settings import SETTINGS_FILE, Settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from newsletter.audience.service import Audience
    from newsletter.audience.store import Store
    from newsletter.bounces.intake import Intake
    from newsletter.content.model import Issue
    from newsletter.delivery.campaigns import CampaignReport
    from newsletter.delivery.service import Sending
    from newsletter.delivery.worker import WorkerStats
    from newsletter.team import Team


class NewsletterGroup(click.Group):
    """Turns user mistakes into one clear message and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ProblemsFound as error:
            for problem in error.problems:
                click.echo(str(problem))
            count = len(error.problems)
            click.echo(f"{count} problem{'s' if count != 1 else ''} found.", err=True)
            ctx.exit(1)
        except UserError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(1)


def _settings(ctx: click.Context) -> Settings:
    """The Settings a caller passed as `obj` (tests, scripts), else the settings file and NEWSLETTER_*,
    read once per command."""
    if isinstance(ctx.obj, Settings):
        return ctx.obj
    root = ctx.find_root()
    if "settings" not in root.meta:
        root.meta["settings"] = Settings.load(config=root.meta.get("config"))
    return root.meta["settings"]


def _editor(ctx: click.Context) -> Editor:
    """Settings and theme are loaded once per command, when a command needs them."""
    return Editor(_settings(ctx))


def _listen_options(port: int) -> Callable[[Callable[..., object]], object]:
    """`--host` and `--port` for a command that listens (the pages, the preview, the bounce receiver)."""

    def add(command: Callable[..., object]) -> object:
        command = click.option(
            "--port",
            default=port,
            show_default=True,
            type=click.IntRange(0, 65535),
            help="Port (0 picks a free one).",
        )(command)
        return click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")(
            command
        )

    return add


def _out_dir_option(help_text: str, **options: object) -> Callable[[Callable[..., object]], object]:
    """`--out DIR`, the folder a command writes into (required unless a default is given)."""
    options.setdefault("required", "default" not in options)
    return click.option(
        "--out",
        "out_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help=help_text,
        **options,  # type: ignore[arg-type]
    )


@click.group(cls=NewsletterGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="newsletter")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="The settings file (default: $NEWSLETTER_CONFIG, else newsletter.toml here); "
    "relative paths in it are taken from its folder.",
)
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """Draft, check, render and send the network's newsletter."""
    ctx.meta["config"] = config


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--theme", is_flag=True, help="Also copy the theme into FOLDER/templates/, to make it your own."
)
def init(folder: Path, theme: bool) -> None:
    """Start a new network's project folder: settings with a fresh secret key, the vocabulary,
    a list, a segment, an empty member file and a first draft issue."""
    from newsletter.project import init_project

    made = init_project(folder, theme=theme)
    place = display_path(made.folder)
    slug = made.first_issue.parent.name
    click.echo(
        f"Created {place}/ with {SETTINGS_FILE} (a fresh secret key), subscribers/ and a first draft, {slug}."
    )
    if made.theme_copied:
        click.echo(f"The theme is in {place}/templates/: edit it there.")
    click.echo(
        "Next:\n"
        f"  cd {place}\n"
        f"  $EDITOR {SETTINGS_FILE}                 # your network's name, addresses and mail relay\n"
        "  newsletter db upgrade\n"
        "  newsletter subscribers import subscribers/members.csv --list newsletter\n"
        f"  $EDITOR issues/{slug}/issue.yaml && newsletter check {slug} && newsletter preview {slug}\n"
        "Step by step, and running the pages and the worker as services: docs/getting-started.md"
    )


@cli.command()
@click.argument("slug")
@click.option(
    "--like", "like", metavar="SLUG", help="Copy the structure of this earlier issue, with its items emptied."
)
@click.pass_context
def new(ctx: click.Context, slug: str, like: str | None) -> None:
    """Start a draft issue in issues/SLUG/ (a commented skeleton of every section kind)."""
    settings = _settings(ctx)
    like_path = Editor(settings).locate(like) if like else None
    path = create_issue(settings.issues_dir, slug, like_path)
    click.echo(f"Created {display_path(path)}. Edit it, then run: newsletter check {slug}")


@cli.command()
@click.argument("slug")
@click.pass_context
def check(ctx: click.Context, slug: str) -> None:
    """Validate and lint an issue; list every problem as file:line: where: message."""
    checked = _editor(ctx).check(slug)
    for warning in checked.warnings:
        click.echo(f"warning: {warning}", err=True)
    if checked.problems:
        raise ProblemsFound(checked.problems)
    click.echo(checked.summary())


@cli.command()
@click.argument("slug")
@_out_dir_option("Folder to write email.html, email.txt, email.eml, web.html and the pictures into.")
@click.option("--force", is_flag=True, help="Write the files even when the lint finds problems.")
@click.option(
    "--as",
    "as_email",
    metavar="EMAIL",
    help="Write the copy this member gets (their topics, region, format and links); "
    "without it, a sample member's copy of the whole issue.",
)
@click.pass_context
def render(ctx: click.Context, slug: str, out_dir: Path, force: bool, as_email: str | None) -> None:
    """Render an issue to OUT/email.html, OUT/email.txt, OUT/email.eml (the whole message), OUT/web.html
    (its web version) and its picture files, as one member gets it: links filled in, no placeholders."""
    from newsletter.delivery import copies

    editor = _editor(ctx)
    reader = copies.member_reader(_store(ctx), as_email) if as_email else None
    copy = copies.render_copy(editor, slug, out_dir, reader, force=force)
    for problem in (*copy.checked.problems, *copy.checked.warnings):
        click.echo(f"warning: {problem}", err=True)
    click.echo(f"Wrote {', '.join(display_path(path) for path in copy.files)}")
    click.echo(f"  {copy.describe(editor.vocabulary.regions)}")


def _as_member_options(command: Callable[..., object]) -> Callable[..., object]:
    """`--as EMAIL` and `--segment NAME`: whose personal version of the issue to show."""
    command = click.option(
        "--segment",
        metavar="NAME",
        help="Show each distinct email this segment's members will get, with how many get it.",
    )(command)
    return click.option(
        "--as",
        "as_email",
        metavar="EMAIL",
        help="Show the email this member will get (their topics, region and format).",
    )(command)


@cli.command()
@click.argument("slug")
@_listen_options(8000)
@_as_member_options
@click.pass_context
def preview(
    ctx: click.Context, slug: str, host: str, port: int, as_email: str | None, segment: str | None
) -> None:
    """Show the email at 375 px and 600 px and its text part, reloading when files are saved;
    with --as or --segment, exactly what that member, or each member of that segment, will get."""
    from newsletter.preview import Personal, make_server, preview_url

    personalise = None
    if as_email or segment:
        from newsletter.delivery.lookahead import describe, foresee

        sending = _sending(ctx)
        profiles, regions = sending.profiles(as_email, segment), sending.store.vocabulary.regions

        def personalise(issue: Issue) -> list[Personal]:
            views = foresee(issue, profiles)
            return [Personal(describe(view, regions), view.issue, view.text_only) for view in views]

    server = make_server(_editor(ctx), slug, host, port, personalise)
    if personalise is not None:
        for number, view in enumerate(server.state.views):
            click.echo(f"  {preview_url(server)}?view={number}  {view.label}")
    click.echo(f"Previewing {slug} at {preview_url(server)} (saving the issue file reloads it; Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Preview stopped.")
    finally:
        server.server_close()


@cli.command()
@_out_dir_option(
    "Folder for everything the demo writes (renders, preview, the sink's Maildir).",
    default=Path("out"),
    show_default=True,
)
@click.option("--serve", is_flag=True, help="Then keep a live preview running (Ctrl-C stops).")
@click.pass_context
def demo(ctx: click.Context, out_dir: Path, serve: bool) -> None:
    """The whole job on embedded defaults: check, render and preview the sample issue, import the
    sample members, send the issue to a segment through a local SMTP sink, and build the archive."""
    from newsletter import demo as demo_run

    settings = _settings(ctx)

    def progress(total: int) -> Callable[[WorkerStats], None]:
        bar = click.progressbar(length=total, label="sending", file=sys.stderr)
        bar.__enter__()
        ctx.call_on_close(lambda: bar.__exit__(None, None, None))
        done = [0]

        def advance(stats: WorkerStats) -> None:
            now = stats.sent + stats.failed + stats.bounced + stats.skipped
            bar.update(now - done[0])
            done[0] = now
            if now >= total:
                bar.__exit__(None, None, None)

        return advance

    demo_run.run(settings, out_dir, click.echo, progress)
    if serve:
        ctx.invoke(preview, slug=demo_run.SAMPLE_ISSUE, host="127.0.0.1", port=8000)
    else:
        click.echo(
            f"Next: newsletter preview {demo_run.SAMPLE_ISSUE} (live, reloads on save); newsletter campaigns; "
            "newsletter serve --debug (the subscriber pages and the archive on http://127.0.0.1:8000)"
        )


def _store(ctx: click.Context) -> Store:
    """The command's one Store (database, vocabulary, segments), opened on first use, closed at the end."""
    from newsletter.audience.store import Store

    root = ctx.find_root()
    store = root.meta.get("newsletter.store")
    if store is None:
        store = root.meta["newsletter.store"] = Store.open(_settings(ctx))
        root.call_on_close(store.close)
    return store


def _audience(ctx: click.Context) -> Audience:
    """The member calls, over the command's Store."""
    from newsletter.audience.service import Audience

    return Audience(_store(ctx))


@cli.group()
def db() -> None:
    """The database: create it or bring it up to date."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create or migrate the database (safe to run any number of times)."""
    store = _store(ctx)
    before, after = store.upgrade()
    where = store.database.display_url()
    if before == after:
        click.echo(f"{where}: already up to date (schema {after})")
    else:
        click.echo(f"{where}: {'created' if before is None else f'migrated from {before}'} at schema {after}")


@cli.group(invoke_without_command=True)
@click.pass_context
def segments(ctx: click.Context) -> None:
    """List the segments in subscribers/segments.yaml with live counts."""
    if ctx.invoked_subcommand is not None:
        return
    audience = _audience(ctx)
    counted = audience.segment_counts()
    if not counted:
        click.echo(f"No segments yet: define them in {audience.segments.file}")
        return
    width = max(len(segment.name) for segment, _ in counted)
    for segment, count in counted:
        click.echo(f"{segment.name:<{width}}  {count:>8,}  {segment.description}")


@segments.command("show")
@click.argument("name")
@click.option(
    "--limit", default=10, show_default=True, type=click.IntRange(0, 1000), help="How many members to list."
)
@click.pass_context
def segments_show(ctx: click.Context, name: str, limit: int) -> None:
    """Count a segment and list a sample of its members."""
    segment, count, sample = _audience(ctx).segment_sample(name, limit)
    click.echo(
        f"{segment.name}: {count:,} members{f' ({segment.description})' if segment.description else ''}"
    )
    for member in sample:
        details = ", ".join(part for part in (member.name, member.organisation, member.region or "") if part)
        click.echo(f"  {member.email}  {details}")


@cli.command("vocabulary")
@click.option("--markdown", is_flag=True, help="Print them as the Markdown tables of docs/editing-issues.md.")
@click.option(
    "--update",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    metavar="FILE",
    help="Rewrite the tables between FILE's vocabulary markers (docs/editing-issues.md).",
)
@click.pass_context
def vocabulary_command(ctx: click.Context, markdown: bool, update: Path | None) -> None:
    """The words an issue may use: topics, regions, sectors and kinds of place, slug and name."""
    from newsletter.vocabulary import VOCABULARY_DOCS, Vocabulary, update_vocabulary_block

    vocabulary = Vocabulary.load(_settings(ctx).vocabulary_dir)
    if update:
        update_vocabulary_block(update, vocabulary)
        click.echo(f"Updated the vocabulary in {display_path(update)}")
    elif markdown:
        click.echo(vocabulary.markdown(), nl=False)
    else:
        for kind in VOCABULARY_DOCS:
            words: dict[str, str] = getattr(vocabulary, kind)
            width = max((len(slug) for slug in words), default=0)
            click.echo(f"{kind.replace('_', ' ')}:")
            for slug, name in words.items():
                click.echo(f"  {slug:<{width}}  {name}")


@cli.command("lists")
@click.pass_context
def lists_command(ctx: click.Context) -> None:
    """The mailing lists, with how many active members each has."""
    for slug, name, count in _audience(ctx).list_counts():
        click.echo(f"{slug:<16} {count:>8,}  {name}")


@cli.group()
def subscribers() -> None:
    """Import, export and look after members."""


@subscribers.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--list", "lists", multiple=True, metavar="LIST", help="Also put everyone in the file on this list."
)
@click.option("--source", help="Where the consent came from (recorded per member); default: import:FILE.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to list rows not imported (default: FILE-import-report.csv beside the file).",
)
@click.pass_context
def subscribers_import(
    ctx: click.Context, file: Path, lists: tuple[str, ...], source: str | None, report_path: Path | None
) -> None:
    """Import members from a CSV file (email, name, organisation, sector, region, place, topics, lists)."""
    audience = _audience(ctx)
    size = file.stat().st_size if file.is_file() else 0
    with click.progressbar(length=size, label=f"Importing {display_path(file)}", file=sys.stderr) as bar:
        position = [0]

        def advance(done: int) -> None:
            bar.update(done - position[0])
            position[0] = done

        summary = audience.import_csv(file, lists, source, report_path, advance)
    click.echo(str(summary))
    if summary.attribute_columns:
        click.echo(f"Extra columns kept as attributes: {', '.join(summary.attribute_columns)}")
    if summary.report:
        click.echo(f"Rows not imported, each with its line and reason: {display_path(summary.report)}")


@subscribers.command("export")
@click.option("--segment", help="Only this segment's members (default: everyone, whatever their status).")
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: standard output).",
)
@click.pass_context
def subscribers_export(ctx: click.Context, segment: str | None, out_file: Path | None) -> None:
    """Export members as CSV with status, lists and topics, safe to open in a spreadsheet."""
    audience = _audience(ctx)
    if out_file is None:
        audience.export_csv(sys.stdout, segment)
        return
    partial = out_file.with_name(out_file.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8-sig", newline="") as out:
            count = audience.export_csv(out, segment)
    except BaseException:
        partial.unlink(missing_ok=True)  # a failed export leaves no file behind, and the old one as it was
        raise
    partial.replace(out_file)
    click.echo(f"Wrote {count:,} members to {display_path(out_file)}", err=True)


@subscribers.command("show")
@click.argument("email")
@click.pass_context
def subscribers_show(ctx: click.Context, email: str) -> None:
    """Everything held about one member: details, lists, topics, consent history."""
    view = _audience(ctx).member(email)
    member = view.subscriber
    rows = [
        ("email", member.email),
        ("status", member.status.value),
        ("name", member.name),
        ("organisation", member.organisation),
        ("sector", member.sector or ""),
        ("region", member.region or ""),
        ("place", member.place),
        ("language", member.language),
        ("format", member.format.value),
        ("joined", f"{member.created_at:%Y-%m-%d %H:%M} UTC"),
        ("lists", ", ".join(slug if on else f"{slug} (left)" for slug, on in view.lists) or "none"),
        ("topics", ", ".join(view.topics) or "none (gets everything)"),
    ]
    rows += [(f"attribute {key}", str(value)) for key, value in sorted(member.attributes.items())]
    if view.suppressed:
        rows.append(("suppressed", view.suppressed))
    for label, value in rows:
        click.echo(f"{label:<14} {value}")
    click.echo("consent history:")
    for entry in view.consent:
        extra = f" [{entry.wording_version}]" if entry.wording_version else ""
        client = f" from {entry.ip_address}" if entry.ip_address else ""
        click.echo(
            f"  {entry.created_at:%Y-%m-%d %H:%M} UTC  {entry.action}  via {entry.source}{extra}{client}"
        )


@subscribers.command("unsubscribe")
@click.argument("email")
@click.option("--list", "list_slug", metavar="LIST", help="Only leave this list (default: everything).")
@click.pass_context
def subscribers_unsubscribe(ctx: click.Context, email: str, list_slug: str | None) -> None:
    """Unsubscribe a member who asked, recorded in their consent history."""
    click.echo(_audience(ctx).unsubscribe(email, list_slug))


@subscribers.command("erase")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def subscribers_erase(ctx: click.Context, email: str, yes: bool) -> None:
    """Erase everything held about a member (UK GDPR); only a hash remains to keep them unmailed."""
    if not yes:
        click.confirm(f"Erase everything held about {email}? This cannot be undone", abort=True)
    click.echo(_audience(ctx).erase(email))


def _sending(ctx: click.Context) -> Sending:
    from newsletter.delivery.service import Sending

    return Sending(_settings(ctx), _store(ctx))


def _describe(report: CampaignReport) -> str:
    campaign = report.campaign
    when = f"{campaign.send_at:%Y-%m-%d %H:%M} UTC"
    done = f"{report.done:,}/{report.total:,} done" if report.total else "recipients fixed when it starts"
    return (
        f"{campaign.id:>4}  {report.state:<9}  {campaign.issue_slug:<10}  to {', '.join(campaign.audiences)}"
        f"  at {when}  {done}"
    )


@cli.command()
@click.argument("slug")
@click.option(
    "--to",
    "audiences",
    multiple=True,
    metavar="AUDIENCE",
    help="A segment or list name (repeat for several).",
)
@click.option(
    "--at",
    "at",
    metavar="'YYYY-MM-DD HH:MM'",
    help="When to send, in the configured time zone (default: now).",
)
@click.option(
    "--test", "tests", multiple=True, metavar="ADDRESS", help="Send one [TEST] copy to this address only."
)
@click.option(
    "--as",
    "as_email",
    metavar="EMAIL",
    help="With --test: send the copy this member will get (their topics, region and format).",
)
@click.option(
    "--resend",
    is_flag=True,
    help="Also send to members an earlier campaign already sent this issue to (normally left out).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.pass_context
def send(
    ctx: click.Context,
    slug: str,
    audiences: tuple[str, ...],
    at: str | None,
    tests: tuple[str, ...],
    as_email: str | None,
    resend: bool,
    yes: bool,
) -> None:
    """Send an issue to segments or lists, now or at a time; or test-send it to a few addresses.

    An issue goes to each member once: members an earlier campaign sent it to are left out
    unless --resend. On a terminal it shows who and when and asks first; --yes skips that.
    """
    sending = _sending(ctx)
    if tests:
        if audiences or at or resend:
            raise UserError("--test sends only to the given addresses: leave out --to, --at and --resend")
        for address, result in sending.send_test(slug, list(tests), as_email).items():
            click.echo(f"test copy to {address}: {result}")
        return
    if as_email:
        raise UserError("--as goes with --test (a copy of what that member gets); `preview --as` shows it")
    planned = sending.plan(slug, list(audiences), at, resend)
    when = f"{at} {sending.settings.timezone}" if at else "now"
    click.echo(
        f'{planned.slug}: "{planned.subject}"\n'
        f"  to {', '.join(planned.audiences)}: {planned.to_send:,} member{'s' if planned.to_send != 1 else ''}"
        f" as of now\n  sending {when} ({planned.send_at:%Y-%m-%d %H:%M} UTC)"
    )
    if planned.already and not planned.resend:
        click.echo(
            f"  {planned.already:,} member{'s' if planned.already != 1 else ''} of the audience already got "
            f"{planned.slug} from an earlier campaign and will not get it again (--resend sends to them too)"
        )
    elif planned.already:
        click.echo(
            f"  --resend: {planned.already:,} of them already got {planned.slug} and will get it again"
        )
    if not yes and sys.stdin.isatty():
        click.confirm("Send it?", abort=True)
    campaign = sending.schedule(planned)
    click.echo(f"Campaign {campaign.id} scheduled. A running `newsletter worker` sends it.")


@cli.command("campaigns")
@click.pass_context
def campaigns_command(ctx: click.Context) -> None:
    """Every campaign, newest first, with its status and progress."""
    reports = _sending(ctx).campaigns()
    if not reports:
        click.echo("No campaigns yet: newsletter send SLUG --to AUDIENCE")
    for report in reports:
        click.echo(_describe(report))


@cli.command()
@click.argument("campaign_id", type=int)
@click.option(
    "--failed",
    is_flag=True,
    help="List who was deferred, failed or bounced, with the relay's reply and the attempts.",
)
@click.pass_context
def status(ctx: click.Context, campaign_id: int, failed: bool) -> None:
    """Where a campaign stands: counts by delivery status, rate, time left, and whether a worker is on it."""
    sending = _sending(ctx)
    report = sending.status(campaign_id)
    click.echo(_describe(report))
    for name, count in sorted(report.counts.items()):
        later = (
            f"  ({report.bounced_later:,} came back after sending)"
            if name == "bounced" and report.bounced_later
            else ""
        )
        click.echo(f"  {name:<9} {count:>8,}{later}")
    if report.complained:
        click.echo(f"  complained {report.complained:>7,}  (reported as spam by the member; among the sent)")
    if report.rate_per_second:
        click.echo(f"  rate      {report.rate_per_second:8.1f} messages/s over the last minute")
    activity = report.activity
    if activity is not None and activity.stale_leases:
        assert activity.stale_until is not None
        click.echo(
            f"  {activity.stale_leases:,} messages are held by a worker that has stopped renewing its lease "
            f"(it has probably stopped); any worker may send them from {activity.stale_until:%H:%M:%S} UTC"
        )
    if activity is not None and not activity.fresh_leases and activity.relay_trouble is not None:
        moment, reply = activity.relay_trouble
        click.echo(
            f"  nothing is sending: the relay did not answer at {moment:%Y-%m-%d %H:%M} UTC ({reply}); a running "
            "worker tries it again every minute at most and sends as soon as it answers (none running? start "
            "`newsletter worker`)"
        )
    elif report.no_worker and activity is not None:
        click.echo(
            f"  no worker is running: {activity.due_now:,} messages are waiting and nothing is sending them; "
            "start `newsletter worker`"
        )
    elif report.no_worker:
        click.echo(
            f"  no worker is running: it was due at {report.campaign.send_at:%Y-%m-%d %H:%M} UTC and nothing "
            "has started it; start `newsletter worker`"
        )
    elif activity is not None and not activity.live_leases and activity.next_attempt_at:
        click.echo(f"  waiting to retry deferred messages from {activity.next_attempt_at:%Y-%m-%d %H:%M} UTC")
    elif report.seconds_left is not None:
        click.echo(
            f"  time left about {report.seconds_left / 60:.0f} min"
            if report.seconds_left >= 90
            else f"  time left about {report.seconds_left:.0f} s"
        )
    if failed:
        troubles = sending.troubles(campaign_id)
        if not troubles:
            click.echo("Nobody deferred, failed or bounced.")
        for trouble in troubles:
            click.echo(
                f"  {trouble.email}  {trouble.status}  after {trouble.attempts} attempt"
                f"{'s' if trouble.attempts != 1 else ''}  {trouble.updated_at:%Y-%m-%d %H:%M} UTC: "
                f"{trouble.last_reply}"
            )


class _ProgressDisplay:
    """How `worker` shows progress: a bar redrawn in place on a terminal, a log line otherwise."""

    WIDTH = 30

    def __init__(self, terminal: bool) -> None:
        self.terminal = terminal
        self.logged: dict[int, str] = {}  # the last line logged per campaign: a log repeats nothing

    def show(self, report: CampaignReport, finished: bool) -> None:
        campaign, total, done = report.campaign, report.total, report.done
        counts = report.counts
        trouble = ", ".join(
            f"{counts[name]:,} {name}" for name in ("deferred", "failed", "bounced") if counts.get(name)
        )
        head = f"campaign {campaign.id} ({campaign.issue_slug})"
        if finished:
            self._line(
                f"{head}: {campaign.status.value}: {counts.get('sent', 0):,} sent"
                f"{', ' + trouble if trouble else ''} of {total:,}",
                end=True,
            )
            return
        share = done / total if total else 0.0
        rate = f", {report.rate_per_second:.1f}/s" if report.rate_per_second else ""
        figures = f"{done:,}/{total:,} done ({share:.0%}){', ' + trouble if trouble else ''}{rate}"
        if campaign.status.value != "sending":
            figures += f" [{campaign.status.value}]"
        if self.terminal:
            filled = round(share * self.WIDTH)
            self._line(f"{head} [{'#' * filled}{'-' * (self.WIDTH - filled)}] {figures}")
        elif self.logged.get(campaign.id) != figures:  # a paused campaign is not logged every few seconds
            self.logged[campaign.id] = figures
            self._line(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC {head}: {figures}", end=True)

    def note(self, text: str) -> None:
        """What the worker says it is waiting for: a line of its own, dated in a log."""
        if self.terminal:
            self._line(text, end=True)
        else:
            self._line(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC {text}")

    def _line(self, text: str, end: bool = False) -> None:
        if self.terminal:
            click.echo(f"\r\x1b[K{text}", nl=end, err=True)
        else:
            click.echo(text, err=True)


def _steer_command(action: str, help_text: str) -> None:
    @cli.command(action, help=help_text)
    @click.argument("campaign_id", type=int)
    @click.pass_context
    def command(ctx: click.Context, campaign_id: int) -> None:
        campaign = _sending(ctx).steer(campaign_id, action)
        click.echo(f"Campaign {campaign.id} is now {campaign.status.value}")


_steer_command("pause", "Stop sending a campaign (within a second); `resume` carries on without re-sending.")
_steer_command("resume", "Carry on with a paused campaign.")
_steer_command("cancel", "Stop a campaign for good; nobody else is sent it.")


@cli.command()
@click.argument("campaign_id", type=int)
@click.pass_context
def retry(ctx: click.Context, campaign_id: int) -> None:
    """Send a campaign's failed messages again (not bounced ones): a finished campaign sends again."""
    retried = _sending(ctx).retry(campaign_id)
    campaign = retried.campaign
    count = f"{retried.queued:,} failed message{'s' if retried.queued != 1 else ''}"
    if campaign.status.value == "paused":
        then = f"it is paused: `newsletter resume {campaign.id}` sends them"
    elif retried.reopened:
        then = "it is sending again, and a running `newsletter worker` sends them"
    else:
        then = "a running `newsletter worker` sends them"
    click.echo(f"Campaign {campaign.id}: {count} queued again (attempts counted afresh); {then}")
    if retried.left_failed:
        click.echo(
            f"  {retried.left_failed:,} left failed: another campaign has sent {campaign.issue_slug} to "
            f"{'that member' if retried.left_failed == 1 else 'those members'} since"
        )


@cli.command()
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@click.option(
    "--lease",
    "lease_seconds",
    default=120.0,
    show_default=True,
    type=click.FloatRange(1),
    help="Seconds a worker holds the rows it is sending; rows of a worker that died are due again after this.",
)
@click.option(
    "--retry",
    "retry_base_seconds",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0),
    help="First wait before retrying a deferred message (doubles each time, at most an hour).",
)
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes sharing the work; more use more CPU cores (one process sends on one core).",
)
@click.option(
    "--wait",
    "once_wait_seconds",
    default=600.0,
    show_default=True,
    type=click.FloatRange(0),
    help="With --once: the most seconds to wait, in all, for a relay that is down or for messages another "
    "worker holds, before exiting 1 with what is left.",
)
@click.pass_context
def worker(
    ctx: click.Context,
    once: bool,
    lease_seconds: float,
    retry_base_seconds: float,
    processes: int,
    once_wait_seconds: float,
) -> None:
    """Run the scheduler and deliver due campaigns until stopped (SIGTERM or Ctrl-C finish cleanly).

    When the relay cannot be reached, it waits (1, 2, 4... s, at most a minute between tries) and
    counts no attempt against anyone; --once exits 1 if messages are still left after --wait seconds."""
    import signal
    import threading

    from newsletter.delivery.service import ProgressWatch

    sending = _sending(ctx)
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        click.echo("Stopping after the messages in flight...", err=True)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    options = {
        "lease_seconds": lease_seconds,
        "retry_base_seconds": retry_base_seconds,
        "once_wait_seconds": once_wait_seconds,
    }
    terminal = sys.stderr.isatty()
    display = _ProgressDisplay(terminal)
    watch = ProgressWatch(sending, display.show)
    watching = threading.Event()
    watch.run_every(1.0 if terminal else 5.0, watching)
    try:
        if processes > 1:
            stats = sending.work_in_processes(processes, once=once, stop=stop, **options)
        else:
            stats = sending.work(once=once, stop=stop, notice=display.note, **options)
    finally:
        watching.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    watch.poll()
    click.echo(
        f"Worker done: {stats.sent:,} sent, {stats.deferred:,} deferred, {stats.failed:,} failed, "
        f"{stats.bounced:,} bounced, {stats.skipped:,} skipped"
    )
    if stats.unfinished:
        raise UserError(stats.unfinished)


@cli.command()
@_listen_options(8025)
@click.option(
    "--maildir", type=click.Path(file_okay=False, path_type=Path), default=Path("sink"), show_default=True
)
def sink(host: str, port: int, maildir: Path) -> None:
    """A local SMTP server that keeps every message it receives in a Maildir, for trying things out."""
    from newsletter.sink import MaildirSink

    with MaildirSink(maildir, host, port) as server:
        click.echo(
            f"Sink listening on {host}:{server.port}, storing mail in {display_path(maildir)} (Ctrl-C stops)"
        )
        server.serve_forever()


@cli.group(invoke_without_command=True)
@click.option(
    "--since",
    "days",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0),
    metavar="DAYS",
    help="Only what came back in the last DAYS days.",
)
@click.option("--review", is_flag=True, help="List the reports that could not be classified instead.")
@click.pass_context
def bounces(ctx: click.Context, days: float, review: bool) -> None:
    """Bounces and complaints: take them in, see them, undo a wrong suppression.

    With no command: the recent bounces and complaints, newest first (who, when, which campaign, the
    code and the server's words, and what was done)."""
    if ctx.invoked_subcommand is not None:
        return
    from newsletter.bounces.history import Bounces

    events = Bounces(_store(ctx)).recent(days, review)
    what = "reports that could not be classified" if review else "bounces or complaints"
    if not events:
        click.echo(f"No {what} in the last {days:g} days.")
        return
    for event in events:
        campaign = f"  {event.campaign}" if event.campaign else ""
        code = f"  {event.status}" if event.status else ""
        undone = "  [undone]" if event.undone else ""
        click.echo(
            f"{event.received_at:%Y-%m-%d %H:%M} UTC  {event.kind:<9}  {event.who}{campaign}{code}  via {event.source}"
            f"{undone}"
        )
        if event.diagnostic:
            click.echo(f"    said: {event.diagnostic}")
        click.echo(f"    done: {event.action}")


@bounces.command("undo")
@click.argument("email")
@click.pass_context
def bounces_undo(ctx: click.Context, email: str) -> None:
    """Restore a member a bounce or complaint suppressed by mistake (recorded in their consent history)."""
    from newsletter.bounces.history import Bounces

    click.echo(Bounces(_store(ctx)).undo(email))


def _intake(ctx: click.Context) -> tuple[Intake, Callable[[bytes], bool]]:
    """The intake over this command's Store, and the is-it-a-report test for its domain."""
    from newsletter.bounces.intake import Intake, looks_like_report

    store = _store(ctx)
    store.ready()
    intake = Intake(store, _settings(ctx))
    return intake, lambda raw: looks_like_report(raw, intake.domain)


@bounces.command("receive")
@_listen_options(8026)
@click.option("--lmtp", is_flag=True, help="Speak LMTP instead of SMTP (Postfix's lmtp: transport).")
@click.pass_context
def bounces_receive(ctx: click.Context, host: str, port: int, lmtp: bool) -> None:
    """Take reports for bounces+*@DOMAIN from the relay over SMTP or LMTP (docs/bounces.md)."""
    from newsletter.bounces.receive import BounceReceiver

    intake, _ = _intake(ctx)
    domain = intake.domain
    with BounceReceiver(intake.process, domain, host, port, lmtp=lmtp) as server:
        click.echo(
            f"Taking bounces for bounces+*@{domain} over {server.protocol} on {host}:{server.port} (Ctrl-C stops)"
        )
        server.serve_forever()
    taken = f"{server.accepted:,} report{'' if server.accepted == 1 else 's'} taken in"
    click.echo(f"{taken}, {server.retried:,} answered 451 for a retry")


@bounces.command("read")
@click.option(
    "--maildir", type=click.Path(file_okay=False, path_type=Path), help="A Maildir the reports arrive in."
)
@click.option(
    "--imap", metavar="imaps://USER@HOST[:PORT]/FOLDER", help="An IMAP folder the reports arrive in."
)
@click.pass_context
def bounces_read(ctx: click.Context, maildir: Path | None, imap: str | None) -> None:
    """Process the reports waiting in a mailbox: each is moved to its Processed or Review folder;
    every other message is left exactly as it was, and nothing is deleted."""
    from newsletter.bounces.mailbox import read_imap, read_maildir

    if (maildir is None) == (imap is None):
        raise UserError("Say where the reports are: --maildir DIR or --imap imaps://user@host/FOLDER (one).")
    intake, looks_like_report = _intake(ctx)

    def note(text: str) -> None:
        click.echo(f"warning: {text}", err=True)

    if maildir is not None:
        tally = read_maildir(maildir, intake.process_many, looks_like_report, note)
    else:
        settings = _settings(ctx)
        tally = read_imap(
            imap or "",
            settings.imap_password,
            settings.imap_ca_file,
            intake.process_many,
            looks_like_report,
            note,
        )
    click.echo(tally.summary())
    if tally.failed:
        ctx.exit(1)


@cli.group()
def archive() -> None:
    """The web archive of past issues: by date, topic and place, with search and a feed."""


@archive.command("build")
@_out_dir_option("Folder to write the site into (as OUT/archive/...); serve OUT at the site's root.")
@click.pass_context
def archive_build(ctx: click.Context, out_dir: Path) -> None:
    """Build the static archive: issues marked `archive: true` or sent from here; drafts never."""
    from newsletter.archive.build import build

    report = build(_settings(ctx), out_dir)
    for note in report.notes:
        click.echo(f"warning: {note}", err=True)
    click.echo(report.summary())


@cli.command()
@_listen_options(8000)
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256), help="Worker threads.")
@click.option(
    "--proxies",
    default=0,
    show_default=True,
    type=click.IntRange(0, 10),
    help="How many reverse proxies stand in front (their X-Forwarded-For/-Proto are then trusted).",
)
@click.option("--debug", is_flag=True, help="Flask's debug server with tracebacks: never in production.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, threads: int, proxies: int, debug: bool) -> None:
    """Serve the subscriber pages (sign up, confirm, preferences, unsubscribe, my data) with waitress."""
    from newsletter.web.server import serve as run_server

    run_server(_settings(ctx), host, port, debug=debug, threads=threads, proxies=proxies, announce=click.echo)


@cli.command()
@click.option("--check", is_flag=True, help="Look each record up and say what is missing or wrong.")
@click.option(
    "--nameserver",
    metavar="HOST[:PORT]",
    help="With --check: ask this DNS server instead of the system's (a private zone, a test).",
)
@click.option(
    "--timeout",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.1, max=60),
    help="With --check: seconds to wait for each answer.",
)
@click.pass_context
def dns(ctx: click.Context, check: bool, nameserver: str | None, timeout: float) -> None:
    """The DNS records to publish so the mail authenticates (DKIM, SPF, DMARC, the bounce MX), each with
    why; with --check, whether each one is published and right (docs/deliverability.md)."""
    from newsletter.delivery import dnsrecords

    settings = _settings(ctx)
    if not check:
        if nameserver is not None:
            raise UserError("--nameserver goes with --check.")
        records = dnsrecords.expected(settings)
        if not any(record.kind == "dkim" for record in records):
            click.echo(f"# {dnsrecords.no_dkim_advice()}\n")
        click.echo(
            "# Publish these records in your DNS (or ask whoever runs it). Then: newsletter dns --check\n"
        )
        for record in records:
            click.echo(f"# {record.why}")
            for line in textwrap.wrap(record.advice, 100):
                click.echo(f"#   {line}")
            click.echo(record.line())
            click.echo()
        return
    findings = dnsrecords.check(settings, dnsrecords.make_resolver(nameserver, timeout))
    for finding in findings:
        record = finding.record
        click.echo(f"{finding.status:<8} {record.name} {record.type}: {finding.message}")
        if finding.failed and record.value:
            click.echo(f"         publish: {record.line()}")
    failed = sum(finding.failed for finding in findings)
    if failed:
        click.echo(f"{failed} of {len(findings)} records missing, wrong or not answered.", err=True)
        ctx.exit(1)
    click.echo(f"All {len(findings)} records are published.")


@cli.group("dkim")
def dkim_group() -> None:
    """DKIM keys: the signature Gmail and Yahoo check on every message (docs/deliverability.md)."""


@dkim_group.command("keygen")
@click.option(
    "--selector", required=True, help="The key's name in DNS (SELECTOR._domainkey.DOMAIN), e.g. nl2026."
)
@click.option("--ed25519", is_flag=True, help="An Ed25519 key, signed with beside the RSA one (RFC 8463).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the key (default: dkim/SELECTOR.private.pem).",
)
@click.pass_context
def dkim_keygen(ctx: click.Context, selector: str, ed25519: bool, out: Path | None) -> None:
    """Write a new private key (RSA-2048, or Ed25519), readable only by you, and print its DNS record and
    the settings that use it. An existing file is never overwritten."""
    from newsletter.delivery import dnsrecords
    from newsletter.delivery.dkim import dkim_domain, generate_key, valid_selector

    valid_selector(selector)
    domain = dkim_domain(_settings(ctx))
    kind = "ed25519" if ed25519 else "rsa"
    path = out or Path("dkim") / f"{selector}.private.pem"
    key = generate_key(path, kind)
    described = "Ed25519" if ed25519 else "RSA-2048"
    click.echo(
        f"Wrote a new {described} private key to {display_path(path)} (mode 0600: keep it secret, back it up)."
    )
    click.echo("\nPublish this DNS record:")
    click.echo(f'{selector}._domainkey.{domain} TXT "{key.dns_record()}"')
    click.echo(f"\nThen set these in {SETTINGS_FILE} (in place of the commented-out lines):")
    for line in dnsrecords.keygen_settings(selector, path, kind):
        click.echo(line)
    if ed25519:
        click.echo(
            "(An Ed25519 key signs beside the RSA key of dkim_selector/dkim_private_key, not instead of it.)"
        )
    click.echo("\n`newsletter dns --check` says when the record can be seen in DNS.")


@cli.command("report")
@click.argument("what", metavar="ID|audience|compare")
@click.option(
    "--last",
    type=click.IntRange(min=1),
    default=None,
    help="With compare: how many of the latest campaigns to set side by side (12 unless given).",
)
@click.option(
    "--csv",
    "table_name",
    metavar="TABLE",
    default=None,
    help="Write one table of the report as CSV instead (as the desk's downloads; e.g. domains, links, months).",
)
@click.pass_context
def report_command(ctx: click.Context, what: str, last: int | None, table_name: str | None) -> None:
    """What campaign ID reached (counts, unsubscribes after it, per recipient domain, over time, the
    relay's most common replies, who got which content, clicks per section and link when counted); with
    `audience` how the membership changed month by month; with `compare` the last campaigns side by
    side, oldest first, their rates as percentages. Counted from what sending and consent already keep:
    nothing is recorded about anyone for it."""
    store = _store(ctx)
    store.ready()
    if what not in ("audience", "compare") and not what.isdigit():
        raise UserError(
            f"report {what!r}: give a campaign's number (`newsletter campaigns` lists them), "
            "'audience' or 'compare'"
        )
    if last is not None and what != "compare":
        raise UserError("--last goes with `newsletter report compare`")
    if table_name is not None:
        _report_table(store, what, last, table_name)
        return
    if what == "compare":
        _compare_report(store, last)
        return
    if what == "audience":
        _audience_report(store)
        return
    _campaign_report(store, int(what))


def _report_table(store: Store, what: str, last: int | None, name: str) -> None:
    """`report ... --csv TABLE`: one of the report's tables as CSV, the desk's download of it."""
    from newsletter.reports import figures
    from newsletter.reports.audience import audience_report
    from newsletter.reports.campaign import campaign_detail
    from newsletter.reports.compare import LAST, compare_campaigns
    from newsletter.reports.tables import find

    with store.session() as session:
        if what == "compare":
            shown = figures.compare_figures(compare_campaigns(session, last or LAST))
        elif what == "audience":
            shown = figures.audience_figures(audience_report(session))
        else:
            shown = figures.campaign_figures(campaign_detail(session, int(what)))
    tables = [figure.table for figure in shown]
    table = find(tables, name)
    if table is None:
        names = ", ".join(dict.fromkeys(table.name for table in tables))
        raise UserError(f"--csv {name}: this report's tables are {names}")
    click.echo(table.csv(), nl=False)


def _campaign_report(store: Store, campaign_id: int) -> None:
    """`report ID`: counts, per domain, over time, replies, then content variants and clicks."""
    from newsletter.reports.campaign import campaign_detail

    with store.session() as session:
        detail = campaign_detail(session, campaign_id)
    report = detail.report
    click.echo(_describe(report))
    click.echo(f"  subject   {report.campaign.subject}")
    for name, count in sorted(report.counts.items()):
        click.echo(f"  {name:<12} {count:>8,}")
    click.echo(f"  {'bounced later':<12} {report.bounced_later:>8,}  (reports that came back after sending)")
    click.echo(f"  {'complained':<12} {report.complained:>8,}")
    click.echo(f"  {'unsubscribed':<12} {detail.unsubscribed:>8,}  (members it reached who left since)")
    click.echo("\nBy recipient domain:")
    click.echo(
        f"  {'domain':<32} {'messages':>8} {'sent':>8} {'deferred':>8} {'failed':>7} {'bounced':>7}  accepted after"
    )
    for line in detail.domains:
        after = (
            f"{line.median_accept_seconds:,.0f} s (median)" if line.median_accept_seconds is not None else "-"
        )
        click.echo(
            f"  {line.domain:<32} {line.messages:>8,} {line.sent:>8,} {line.deferred:>8,} {line.failed:>7,}"
            f" {line.bounced:>7,}  {after}"
        )
    if detail.over_time:
        click.echo("\nAccepted over time (UTC, a line a minute, the total by then):")
        top = detail.over_time[-1][1]
        chart = sys.stdout.isatty()
        for minute, total in detail.over_time:
            bar = "#" * max(1, round(40 * total / top)) if chart else ""
            click.echo(f"  {minute:%Y-%m-%d %H:%M}  {total:>8,}  {bar}".rstrip())
    if detail.replies:
        click.echo("\nThe relay's most common replies:")
        for reply, count in detail.replies:
            click.echo(f"  {count:>8,}  {reply}")
    if detail.variants:
        click.echo("\nWho got which content (each distinct email it made, and to how many members):")
        for description, members in detail.variants:
            click.echo(f"  {members:>8,}  {description}")
    if not detail.clicks_counted:
        click.echo("\nClicks were not counted for this campaign (count_clicks was off when it started).")
        return
    click.echo("\nClicks per section (how often its links were followed; never by whom):")
    for section, clicks in detail.sections:
        click.echo(f"  {clicks:>8,}  {section}")
    click.echo("\nClicks per link, in the issue's order:")
    for link in detail.links:
        click.echo(f"  {link.clicks:>8,}  {link.text} ({link.section})  {link.url}")


def _compare_report(store: Store, last: int | None) -> None:
    """`report compare`: the last campaigns that started, a line each, oldest first."""
    from newsletter.reports.compare import compare_campaigns

    with store.session() as session:
        lines = compare_campaigns(session) if last is None else compare_campaigns(session, last)
    if not lines:
        click.echo("No campaign has started yet: `newsletter campaigns` lists them.")
        return

    def rate(value: float | None, digits: int = 1) -> str:
        return "-" if value is None else f"{value:.{digits}%}"

    click.echo(
        f"The last {len(lines)} campaigns that started, oldest first:"
        if len(lines) > 1
        else "The only campaign that started:"
        if last is None
        else "The last campaign that started:"
    )
    click.echo(
        f"  {'id':>4}  {'started (UTC)':<16}  {'issue':<12} {'recipients':>10} {'reached':>14}"
        f" {'bounced':>14} {'failed':>7} {'complained':>14} {'unsubscribed':>14} {'clicks':>14}"
    )
    for line in lines:
        clicks = "-" if line.clicks is None else f"{line.clicks:,}"
        click.echo(
            f"  {line.id:>4}  {line.started_at:%Y-%m-%d %H:%M}  {line.issue_slug:<12} {line.recipients:>10,}"
            f" {line.reached:>7,} {rate(line.reach_rate):>6} {line.bounced:>7,} {rate(line.bounce_rate):>6}"
            f" {line.failed:>7,} {line.complained:>7,} {rate(line.complaint_rate, 2):>6}"
            f" {line.unsubscribed:>7,} {rate(line.unsubscribe_rate, 2):>6} {clicks:>7} {rate(line.click_rate):>6}"
        )
    click.echo(
        "Rates: reached of the recipients; bounced of the reached; complained, unsubscribed and clicks of "
        "the delivered (reached less bounced). Clicks count clicks, not people; - where there is nothing "
        "to count (clicks not counted)."
    )


def _audience_report(store: Store) -> None:
    """`report audience`: members now by status, the last twelve months, sectors, regions, sources."""
    from newsletter.reports.audience import audience_report

    with store.session() as session:
        report = audience_report(session)
    click.echo(
        "Members now: "
        + ", ".join(f"{count:,} {status}" for status, count in sorted(report.by_status.items()))
    )
    click.echo(
        f"\n  {'month':<8} {'joined':>7} {'confirmed':>9} {'left':>6} {'bounced':>7} {'complained':>10} {'members':>8}"
    )
    top = max((month.members for month in report.months), default=0) or 1
    chart = sys.stdout.isatty()
    for month in report.months:
        bar = "  " + "#" * max(1, round(30 * month.members / top)) if chart and month.members > 0 else ""
        click.echo(
            f"  {month.month:<8} {month.joined:>7,} {month.confirmed:>9,} {month.unsubscribed:>6,} "
            f"{month.bounced:>7,} {month.complained:>10,} {month.members:>8,}{bar}"
        )
    for title, rows in (
        ("sector", report.by_sector),
        ("region", report.by_region),
        ("consent source", report.sources),
    ):
        click.echo(
            f"\nBy {title}:"
            if title != "consent source"
            else "\nWhere consent came from (sign-ups and imports):"
        )
        for name, count in rows:
            click.echo(f"  {count:>8,}  {name}")


@cli.command("submissions")
@click.option(
    "--all", "everything", is_flag=True, help="Every submission, not only those waiting for an editor."
)
@click.pass_context
def submissions_command(ctx: click.Context, everything: bool) -> None:
    """What members shared for the newsletter, newest first: those waiting for an editor, or with --all
    every one and what became of it. Editors decide at the desk (`newsletter serve`, /desk/submissions/)."""
    from newsletter.submissions import review

    store = _store(ctx)
    store.ready()
    with store.session() as session:
        queued = review.queue(session, open_only=not everything)
    if not queued:
        click.echo("No submissions yet." if everything else "Nothing is waiting for an editor.")
        return
    for found in queued:
        submission = found.submission
        who = ", ".join(part for part in (found.name, found.organisation) if part) or "a former member"
        where = f" ({submission.issue_slug})" if submission.issue_slug else ""
        click.echo(
            f"{submission.id:>4}  {submission.created_at:%Y-%m-%d %H:%M}  {submission.status.value + where:<20}"
            f"  {found.kind_words}: {submission.title}  from {who}"
        )


def _team(ctx: click.Context) -> Team:
    """The desk's accounts, over the command's Store (its database must be up to date)."""
    from newsletter.team import Team

    store = _store(ctx)
    store.ready()
    return Team(store.database, _settings(ctx).secret_key)


@cli.group()
def editors() -> None:
    """The team's accounts on the editor's desk (`newsletter serve`, /desk/): contributors draft and
    submit issues; editors also approve, test-send, schedule, pause, resume and cancel; admins also
    manage accounts. Everyone signs in with a single-use link emailed to them (`editors link` prints one)."""


@editors.command("add")
@click.argument("email")
@click.option(
    "--role",
    "role_name",
    required=True,
    help="contributor, editor or admin.",
)
@click.option("--name", default="", help="How the desk names them (default: their address).")
@click.pass_context
def editors_add(ctx: click.Context, email: str, role_name: str, name: str) -> None:
    """Give EMAIL an account with a role."""
    from newsletter.team import role_named

    account = _team(ctx).add(email, role_named(role_name), name=name)
    click.echo(f"Added {account.email} as {account.role.value}.")
    click.echo(f"They sign in at {_settings(ctx).base_url.rstrip('/')}/desk/ with a link emailed to them,")
    click.echo(f"or with the one `newsletter editors link {account.email}` prints.")


@editors.command("list")
@click.pass_context
def editors_list(ctx: click.Context) -> None:
    """Every account: role, address, name, last sign-in."""
    accounts = _team(ctx).accounts()
    if not accounts:
        click.echo("No accounts yet: `newsletter editors add EMAIL --role admin` adds the first.")
        return
    for account in accounts:
        last = account.signed_in_at.strftime("%Y-%m-%d %H:%M UTC") if account.signed_in_at else "never"
        name = f" ({account.name})" if account.name else ""
        click.echo(f"{account.role.value:<12} {account.email}{name}  signed in: {last}")


@editors.command("role")
@click.argument("email")
@click.argument("role_name", metavar="ROLE")
@click.pass_context
def editors_role(ctx: click.Context, email: str, role_name: str) -> None:
    """Give EMAIL's account another ROLE (contributor, editor or admin)."""
    from newsletter.team import role_named

    account = _team(ctx).change_role(email, role_named(role_name))
    click.echo(f"{account.email} is now {account.role.value}.")


@editors.command("remove")
@click.argument("email")
@click.pass_context
def editors_remove(ctx: click.Context, email: str) -> None:
    """Delete EMAIL's account and end its sessions; what they did stays in the desk's history."""
    _team(ctx).remove(email)
    click.echo(f"Removed the account of {email.strip()}.")


@editors.command("link")
@click.argument("email")
@click.option(
    "--base",
    metavar="URL",
    help="The desk's address, when it is not base_url (such as http://127.0.0.1:8000 for `serve --debug`).",
)
@click.pass_context
def editors_link(ctx: click.Context, email: str, base: str | None) -> None:
    """Print a single-use sign-in link for EMAIL's account (it works for 30 minutes and replaces any
    link sent before): for the first admin, or when email does not arrive."""
    from newsletter.team import sign_in_url

    made = _team(ctx).sign_in_token(email)
    if made is None:
        raise UserError(f"{email.strip()}: no account has this address (`editors list` shows them)")
    account, token = made
    click.echo(f"Sign-in link for {account.email} (single use, 30 minutes):")
    click.echo(sign_in_url(base or _settings(ctx).base_url, token))


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="newsletter")
