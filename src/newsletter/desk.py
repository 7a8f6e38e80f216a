"""The editor's desk as library calls: the issues and where each stands, and starting a new one.

The issue files stay the one source of truth for what an issue says (`issues/<slug>/issue.yaml`,
edited at the desk or in a text editor at will); where an issue stands comes from its campaigns in
the ledger, and from the desk's history for the steps before sending (submitted, approved). The
web routes (`web/desk.py`) are thin over these, as the CLI is over `editor` and `delivery`.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlalchemy import select

from newsletter.content.loader import ISSUE_FILE, SLUG, not_a_slug
from newsletter.content.scaffold import create_issue
from newsletter.db.database import Database
from newsletter.db.models import Campaign, CampaignStatus
from newsletter.errors import UserError
from newsletter.team import Account, Action, Team


class Stage(enum.StrEnum):
    """Where an issue stands, as the desk lists them."""

    DRAFT = "draft"
    IN_REVIEW = "in review"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"


# What the desk's history says moved an issue along before it had campaigns.
REVIEW_ACTIONS = {"submitted": Stage.IN_REVIEW, "approved": Stage.APPROVED, "sent back": Stage.DRAFT}
CAMPAIGN_STAGES = {
    CampaignStatus.SCHEDULED: Stage.SCHEDULED,
    CampaignStatus.SENDING: Stage.SENDING,
    CampaignStatus.PAUSED: Stage.SENDING,
    CampaignStatus.SENT: Stage.SENT,
}


@dataclass(frozen=True)
class IssueSummary:
    """One line of the desk's list of issues."""

    slug: str
    title: str
    date: dt.date | None
    stage: Stage
    changed: dt.datetime  # the file's last change (UTC)


def _heading(path: Path) -> tuple[str, dt.date | None]:
    """The title and date an issue file gives, read leniently: a draft may not load yet."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return "", None
    if not isinstance(data, dict):
        return "", None
    title = data.get("title")
    issue_date = data.get("date")
    return (str(title) if title else ""), (issue_date if isinstance(issue_date, dt.date) else None)


class Desk:
    """The issues in `issues_dir`, with the team's history and the campaigns in `database`."""

    def __init__(self, issues_dir: Path, database: Database, team: Team) -> None:
        self.issues_dir = issues_dir
        self.database = database
        self.team = team

    def issues(self) -> list[IssueSummary]:
        """Every issue, newest first (by its date, then its name)."""
        stages = self._stages()
        found = []
        if self.issues_dir.is_dir():
            for folder in self.issues_dir.iterdir():
                path = folder / ISSUE_FILE
                if not path.is_file():
                    continue
                title, issue_date = _heading(path)
                changed = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).replace(tzinfo=None)
                found.append(
                    IssueSummary(
                        folder.name, title, issue_date, stages.get(folder.name, Stage.DRAFT), changed
                    )
                )
        return sorted(found, key=lambda issue: (issue.date or dt.date.min, issue.slug), reverse=True)

    def stage(self, slug: str) -> Stage:
        return self._stages().get(slug, Stage.DRAFT)

    def start(self, slug: str, like: str | None, by: Account) -> Path:
        """A new draft `slug`, laid out like the issue `like` or from the skeleton (`newsletter new`)."""
        if not by.may(Action.DRAFT):
            raise PermissionError("drafting")
        like_path = None
        if like:
            if not SLUG.fullmatch(like):  # a name, never a path: the pages pass what a browser sent
                raise not_a_slug(like)
            like_path = self.issues_dir / like / ISSUE_FILE
            if not like_path.is_file():
                raise UserError(f"like: there is no issue {like!r} to copy the layout of")
        path = create_issue(self.issues_dir, slug, like_path)
        self.team.record(by, "drafted", issue_slug=slug, details=f"laid out like {like}" if like else "")
        return path

    def _stages(self) -> dict[str, Stage]:
        """Each issue's stage: its furthest campaign, else the last review step in the history."""
        stages: dict[str, Stage] = {}
        for event in reversed(self.team.history(limit=10_000)):  # oldest first: the last step wins
            if event.issue_slug and event.action in REVIEW_ACTIONS:
                stages[event.issue_slug] = REVIEW_ACTIONS[event.action]
        order = list(Stage)
        with self.database.session() as session:
            for slug, status in session.execute(select(Campaign.issue_slug, Campaign.status)):
                stage = CAMPAIGN_STAGES.get(status)
                if stage and (slug not in stages or order.index(stage) > order.index(stages[slug])):
                    stages[slug] = stage
        return stages
