"""The `newsletter` command: parse arguments, call one library function, print the result.

No logic lives here. A mistake the user can fix (a `UserError`) is printed as
a plain message with exit code 1; a list of problems is printed one per line.
"""

from __future__ import annotations

from pathlib import Path

import click

from newsletter import __version__
from newsletter.content.scaffold import create_issue
from newsletter.editor import Editor, write_edition
from newsletter.errors import ProblemsFound, UserError, display_path
from newsletter.settings import Settings

SAMPLE_ISSUE = "2023-10"


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


def _editor(ctx: click.Context) -> Editor:
    """Settings and theme are loaded once per command, when a command needs them."""
    return Editor(ctx.obj if isinstance(ctx.obj, Settings) else Settings.load())


@click.group(cls=NewsletterGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="newsletter")
def cli() -> None:
    """Draft, check, render and send the network's newsletter."""


@cli.command()
@click.argument("slug")
@click.option(
    "--like", "like", metavar="SLUG", help="Copy the structure of this earlier issue, with its items emptied."
)
@click.pass_context
def new(ctx: click.Context, slug: str, like: str | None) -> None:
    """Start a draft issue in issues/SLUG/ (a commented skeleton of every section kind)."""
    settings = ctx.obj if isinstance(ctx.obj, Settings) else Settings.load()
    like_path = Editor(settings).locate(like) if like else None
    path = create_issue(settings.issues_dir, slug, like_path)
    click.echo(f"Created {display_path(path)}. Edit it, then run: newsletter check {slug}")


@cli.command()
@click.argument("slug")
@click.pass_context
def check(ctx: click.Context, slug: str) -> None:
    """Validate and lint an issue; list every problem as file:line: where: message."""
    checked = _editor(ctx).check(slug)
    if checked.problems:
        raise ProblemsFound(checked.problems)
    click.echo(checked.summary())


@cli.command()
@click.argument("slug")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write email.html and email.txt into.",
)
@click.option("--force", is_flag=True, help="Write the files even when the lint finds problems.")
@click.pass_context
def render(ctx: click.Context, slug: str, out_dir: Path, force: bool) -> None:
    """Render an issue to OUT/email.html and OUT/email.txt."""
    checked = _editor(ctx).render_to(slug, out_dir, force=force)
    for problem in checked.problems:
        click.echo(f"warning: {problem}", err=True)
    click.echo(f"Wrote {display_path(out_dir / 'email.html')} and {display_path(out_dir / 'email.txt')}")


@cli.command()
@click.argument("slug")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0 picks a free one).",
)
@click.pass_context
def preview(ctx: click.Context, slug: str, host: str, port: int) -> None:
    """Show the email at 375 px and 600 px and its text part, reloading when files are saved."""
    from newsletter.preview import make_server, preview_url

    server = make_server(_editor(ctx), slug, host, port)
    click.echo(f"Previewing {slug} at {preview_url(server)} (saving the issue file reloads it; Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Preview stopped.")
    finally:
        server.server_close()


@cli.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Folder for everything the demo writes.",
)
@click.option("--serve", is_flag=True, help="Then keep a live preview running (Ctrl-C stops).")
@click.pass_context
def demo(ctx: click.Context, out_dir: Path, serve: bool) -> None:
    """The whole job on embedded defaults: check, render and preview the sample issue."""
    from newsletter.preview import write_static_preview

    editor = _editor(ctx)
    checked = editor.check(SAMPLE_ISSUE)
    if checked.problems:
        raise ProblemsFound(checked.problems)
    click.echo(f"check:   {checked.summary()}")
    issue_out = out_dir / SAMPLE_ISSUE
    write_edition(checked.edition, issue_out)
    click.echo(f"render:  {display_path(issue_out / 'email.html')}, {display_path(issue_out / 'email.txt')}")
    page = write_static_preview(checked, editor.settings.theme_dir, issue_out)
    click.echo(f"preview: open {display_path(page)} in a browser (phone and desktop widths, text part)")
    if serve:
        ctx.invoke(preview, slug=SAMPLE_ISSUE, host="127.0.0.1", port=8000)
    else:
        click.echo(f"Live preview that reloads on save: newsletter preview {SAMPLE_ISSUE}")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="newsletter")
