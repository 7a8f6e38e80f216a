"""Which issues the archive publishes: those marked `archive: true`, and those a campaign has sent.

The database is optional. A project with no database file (or one not yet
upgraded, or a server that cannot be reached) still builds its archive from
the files alone, with a note saying so. Drafts never appear. A draft that does
not validate yet is left alone (work in progress must not block the archive),
but an issue that is to be published and does not validate stops the build
with the loader's `file:line` messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from newsletter.content.loader import ISSUE_FILE, load_issue
from newsletter.content.model import Issue
from newsletter.errors import ProblemsFound, UserError, display_path
from newsletter.settings import Settings
from newsletter.vocabulary import Vocabulary
from newsletter.yamlfile import load_yaml

CONNECT_TIMEOUT_SECONDS = 5


@dataclass
class Collection:
    """The published issues, newest first, and what the build should tell the editor."""

    issues: list[Issue] = field(default_factory=list)
    folders: dict[str, Path] = field(default_factory=dict)  # slug -> the folder its images live in
    drafts: int = 0
    notes: list[str] = field(default_factory=list)


def sent_campaigns(settings: Settings) -> tuple[dict[str, str], str | None]:
    """slug -> the issue text of its latest sent campaign; and a note if the database was not read.

    A SQLite file that does not exist is not created: no database means no campaigns.
    """
    from newsletter.db.database import Database
    from newsletter.db.models import Campaign, CampaignStatus

    try:
        url = make_url(settings.database_url)
    except SQLAlchemyError:
        return {}, f"database_url {settings.database_url!r} is not a database address; sent issues not read"
    if url.get_backend_name() == "sqlite" and (not url.database or not Path(url.database).is_file()):
        return {}, None
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        # A server that is down should cost the build seconds, not the minutes of a TCP timeout.
        url = url.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_SECONDS)})
    try:
        database = Database(url.render_as_string(hide_password=False))
    except UserError as error:
        return {}, f"{error}; sent issues not read"
    try:
        with database.engine.connect() as connection:
            if not inspect(connection).has_table(Campaign.__tablename__):
                return {}, None
            rows = connection.execute(
                select(Campaign.issue_slug, Campaign.issue_source)
                .where(Campaign.status == CampaignStatus.SENT)
                .order_by(Campaign.id)
            ).all()
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        return {}, f"cannot read campaigns from {database.display_url()} ({reason}); sent issues not read"
    finally:
        database.dispose()
    return {slug: source for slug, source in rows}, None


def collect(settings: Settings, vocabulary: Vocabulary, sent: dict[str, str] | None = None) -> Collection:
    """Load every published issue; raise `ProblemsFound` if one that is to be published is invalid.

    `sent` stands in for the database's sent campaigns (slug -> issue text).
    """
    issues_dir = settings.issues_dir
    if not issues_dir.is_dir():
        raise UserError(
            f"{display_path(issues_dir)}: no issues folder here; run this in the project folder "
            "or set issues_dir in newsletter.toml"
        )
    collection = Collection()
    if sent is None:
        sent, note = sent_campaigns(settings)
        if note:
            collection.notes.append(note)
    problems = []
    paths = {path.parent.name: path for path in sorted(issues_dir.glob(f"*/{ISSUE_FILE}"))}
    for slug, path in paths.items():
        try:
            issue = load_issue(path, vocabulary)
        except ProblemsFound as error:
            if slug in sent or _maybe_archived(path):
                problems.extend(error.problems)
            else:
                collection.drafts += 1
            continue
        if issue.archive or slug in sent:
            collection.issues.append(issue)
            collection.folders[slug] = path.parent
        else:
            collection.drafts += 1
    # A sent issue whose folder has since gone is published from the text the campaign kept.
    for slug in sorted(set(sent) - set(paths)):
        path = issues_dir / slug / ISSUE_FILE
        try:
            collection.issues.append(load_issue(path, vocabulary, text=sent[slug]))
        except ProblemsFound as error:
            problems.extend(error.problems)
    if problems:
        raise ProblemsFound(problems)
    collection.issues.sort(key=lambda issue: (issue.date, issue.slug), reverse=True)
    return collection


def _maybe_archived(path: Path) -> bool:
    """Whether an issue that does not validate says (or might say) `archive: true`.

    Only a file that clearly leaves `archive` false counts as a draft; unreadable YAML does not.
    """
    try:
        data = load_yaml(path).data
    except UserError:
        return True
    return not isinstance(data, dict) or data.get("archive", False) is not False
