"""The editor's desk as library calls: the issues and where each stands, and starting a new one.

The issue files stay the one source of truth for what an issue says (`issues/<slug>/issue.yaml`,
edited at the desk or in a text editor at will); where an issue stands comes from its campaigns in
the ledger, and from the desk's history for the steps before sending (submitted, approved). The
web routes (`web/desk.py`) are thin over these, as the CLI is over `editor` and `delivery`.
"""

from __future__ import annotations

import datetime as dt
import enum
import threading
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlalchemy import select

from newsletter.content.issuefile import version_of
from newsletter.content.loader import ISSUE_FILE, SLUG, not_a_slug
from newsletter.content.scaffold import create_issue
from newsletter.db.models import Campaign, CampaignStatus
from newsletter.delivery import campaigns
from newsletter.delivery.campaigns import SendPlan
from newsletter.delivery.service import Sending
from newsletter.editor import CheckedIssue
from newsletter.errors import FieldProblem, UserError
from newsletter.submissions import review
from newsletter.team import Account, Action, Event, Team


class Stage(enum.StrEnum):
    """Where an issue stands, as the desk lists them."""

    DRAFT = "draft"
    IN_REVIEW = "in review"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"


WORKER = "the worker"  # who the history says sent a campaign
VERSION_MARK = "version "  # how an approval names the file it approved, in its history line
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


def _allow(by: Account, action: Action) -> None:
    """The server's check, whatever the pages show: `PermissionError` when the role may not."""
    if not by.may(action):
        raise PermissionError(f"{by.role.value} may not {action.value}")


def _words(note: str) -> str:
    return " ".join(note.split())[:900]


class Desk:
    """The issues in `issues_dir`, with the team's history, and campaigns through `sending`."""

    def __init__(self, issues_dir: Path, sending: Sending, team: Team) -> None:
        self.issues_dir = issues_dir
        self.sending = sending
        self.database = sending.store.database
        self.team = team
        self._lock = threading.Lock()
        self._checked: dict[str, tuple[tuple[str, int], CheckedIssue]] = {}

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
        _allow(by, Action.DRAFT)
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

    # --- review: submit, approve, send back ---------------------------------------------------------

    def submit(self, slug: str, by: Account, note: str = "") -> None:
        """Send a draft for review; it must pass `newsletter check` (raises `ProblemsFound`)."""
        _allow(by, Action.SUBMIT)
        self._require(slug, {Stage.DRAFT}, "submitted")
        self.check(slug).raise_for_problems()
        self.team.record(by, "submitted", issue_slug=slug, details=_words(note))

    def approve(self, slug: str, by: Account) -> None:
        """Approve the issue as its file is now: a later change to the file needs approving again."""
        _allow(by, Action.APPROVE)
        self._require(slug, {Stage.IN_REVIEW}, "approved")
        self.check(slug).raise_for_problems()
        self.team.record(by, "approved", issue_slug=slug, details=f"{VERSION_MARK}{self.version(slug)}")

    def send_back(self, slug: str, by: Account, note: str) -> None:
        """Return an issue in review (or approved) to its drafters, saying what to change."""
        _allow(by, Action.APPROVE)
        if not note.strip():
            raise UserError("note: say what needs changing, so the drafters know what to do")
        self._require(slug, {Stage.IN_REVIEW, Stage.APPROVED}, "sent back")
        self.team.record(by, "sent back", issue_slug=slug, details=_words(note))

    # --- sending ---------------------------------------------------------------------------------------

    def test_send(self, slug: str, by: Account, as_email: str | None = None) -> dict[str, str]:
        """A [TEST] copy to the signed-in editor, as a given member would get it when `as_email`."""
        _allow(by, Action.TEST_SEND)
        results = self.sending.send_test(slug, [by.email], as_email or None)
        self.team.record(
            by,
            "test-sent",
            issue_slug=slug,
            details=f"to {by.email}" + (f" as {as_email}" if as_email else ""),
        )
        return results

    def plan(self, slug: str, audiences: list[str], at: str, by: Account) -> SendPlan:
        """What scheduling would do (count, subject, time), nothing written: the editor confirms it.
        Only an approved issue whose file has not changed since can be scheduled."""
        _allow(by, Action.SCHEDULE)
        if self.stage(slug) is not Stage.APPROVED:
            raise UserError(
                f"{slug}: only an approved issue can be scheduled; it is {self.stage(slug).value}"
            )
        if not audiences:
            raise FieldProblem("to", "choose at least one segment or list to send it to")
        known = set(self.sending.store.segments.by_name) | set(self.sending.store.vocabulary.lists)
        unknown = [name for name in audiences if name not in known]
        if unknown:
            raise FieldProblem("to", f"no segment or list called {', '.join(unknown)}")
        if not at.strip():
            raise FieldProblem("when", "give the day and the time to send it")
        timezone = self.sending.settings.timezone
        try:
            campaigns.refuse_past(campaigns.parse_when(at, timezone, "when"), at, timezone, name="when")
        except UserError as error:
            raise FieldProblem("when", str(error)) from None
        return self.sending.plan(slug, audiences, at)

    def schedule(self, slug: str, audiences: list[str], at: str, by: Account) -> Campaign:
        """Schedule the approved issue to `audiences` at `at` (the network's time zone)."""
        planned = self.plan(slug, audiences, at, by)
        campaign = self.sending.schedule(planned)
        self.team.record(
            by,
            "scheduled",
            issue_slug=slug,
            campaign_id=campaign.id,
            details=f"to {', '.join(planned.audiences)} ({planned.to_send:,} members)",
        )
        return campaign

    # --- members' submissions --------------------------------------------------------------------------

    def submissions(self, open_only: bool = True) -> list[review.Queued]:
        """Members' submissions, newest first: those waiting for an editor, or all of them."""
        with self.database.session() as session:
            return review.queue(session, open_only)

    def submission(self, submission_id: int) -> review.Queued:
        with self.database.session() as session:
            return review.find(session, submission_id)

    def accept_submission(self, submission_id: int, slug: str, by: Account) -> review.Decided:
        """Add a member's submission to the draft `slug` as an item of its kind (credited to their
        organisation unless they said not to); only a draft takes new items."""
        _allow(by, Action.REVIEW)
        if not SLUG.fullmatch(slug) or not (self.issues_dir / slug / ISSUE_FILE).is_file():
            raise FieldProblem("issue", "choose a draft issue to add it to")
        stage = self.stage(slug)
        if stage is not Stage.DRAFT:
            raise FieldProblem("issue", f"{slug} is {stage.value}: only a draft takes new items")
        with self.database.session() as session:
            decided = review.accept(
                session, submission_id, self.issues_dir / slug / ISSUE_FILE, slug, by.email
            )
            session.commit()
        self.team.record(
            by, "added a member's submission", issue_slug=slug, details=_words(decided.submission.title)
        )
        return decided

    def ask_about_submission(self, submission_id: int, question: str, by: Account) -> review.Decided:
        """Ask the member a question about their submission (they are emailed it)."""
        _allow(by, Action.REVIEW)
        with self.database.session() as session:
            decided = review.ask(session, submission_id, question, by.email)
            session.commit()
        return decided

    def decline_submission(self, submission_id: int, reason: str, by: Account) -> review.Decided:
        """Decline a member's submission, saying why (they are emailed it)."""
        _allow(by, Action.REVIEW)
        with self.database.session() as session:
            decided = review.decline(session, submission_id, reason, by.email)
            session.commit()
        return decided

    def drafts(self) -> list[IssueSummary]:
        """The issues a submission can still go into, newest first."""
        return [issue for issue in self.issues() if issue.stage is Stage.DRAFT]

    def steer(self, campaign_id: int, action: Action, by: Account) -> Campaign:
        """Pause, resume or cancel a campaign, and say so in its issue's history."""
        _allow(by, action)
        words = {Action.PAUSE: "pause", Action.RESUME: "resume", Action.CANCEL: "cancel"}
        campaign = self.sending.steer(campaign_id, words[action])
        done = {Action.PAUSE: "paused", Action.RESUME: "resumed", Action.CANCEL: "cancelled"}[action]
        self.team.record(by, done, issue_slug=campaign.issue_slug, campaign_id=campaign_id)
        return campaign

    def history(self, slug: str) -> list[Event]:
        """What was done to the issue, newest first: the desk's steps, and each campaign's sending as
        the ledger tells it (the worker writes no history of its own: the ledger is its record)."""
        events = self.team.history(issue_slug=slug)
        with self.database.session() as session:
            campaigns_of = session.scalars(select(Campaign).where(Campaign.issue_slug == slug)).all()
            for campaign in campaigns_of:
                if campaign.started_at is not None:
                    events.append(
                        Event(
                            campaign.started_at,
                            WORKER,
                            "sending started",
                            slug,
                            campaign.id,
                            f"campaign {campaign.id}",
                        )
                    )
                if campaign.finished_at is not None and campaign.status is CampaignStatus.SENT:
                    report = self.sending.status(campaign.id)
                    events.append(
                        Event(
                            campaign.finished_at,
                            WORKER,
                            "sent",
                            slug,
                            campaign.id,
                            f"campaign {campaign.id}: {report.state}, {report.done:,} of {report.total:,}",
                        )
                    )
        return sorted(events, key=lambda event: event.at, reverse=True)

    def check(self, slug: str) -> CheckedIssue:
        """`newsletter check` of the issue, done once for each state of its folder: the issue's page,
        its preview and the preview's frames after a save all ask, and a check renders the whole
        issue. Raises `ProblemsFound` for an issue that does not load, as `Editor.check` does."""
        path = self.path(slug)
        stamp = (version_of(path), max(p.stat().st_mtime_ns for p in path.parent.rglob("*") if p.is_file()))
        with self._lock:
            cached = self._checked.get(slug)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        checked = self.sending.editor.check(slug)
        with self._lock:
            self._checked[slug] = (stamp, checked)
        return checked

    # --- helpers -------------------------------------------------------------------------------------

    def path(self, slug: str) -> Path:
        if not SLUG.fullmatch(slug):
            raise not_a_slug(slug)
        path = self.issues_dir / slug / ISSUE_FILE
        if not path.is_file():
            raise UserError(f"there is no issue {slug!r}")
        return path

    def version(self, slug: str) -> str:
        """The issue file's version, as approval records it and the editing form carries it."""
        return version_of(self.path(slug))

    def _require(self, slug: str, stages: set[Stage], doing: str) -> None:
        stage = self.stage(slug)
        if stage not in stages:
            raise UserError(f"{slug} is {stage.value}: it cannot be {doing} now")

    def _current_version(self, slug: str) -> str | None:
        try:
            return self.version(slug)
        except UserError:
            return None

    def _stages(self) -> dict[str, Stage]:
        """Each issue's stage: its furthest campaign, else the last review step in the history (an
        approval counts only while the file is as it was approved)."""
        stages: dict[str, Stage] = {}
        approved: dict[str, str] = {}
        for event in reversed(self.team.history(limit=10_000)):  # oldest first: the last step wins
            if event.issue_slug and event.action in REVIEW_ACTIONS:
                stages[event.issue_slug] = REVIEW_ACTIONS[event.action]
                if event.action == "approved":
                    approved[event.issue_slug] = event.details.removeprefix(VERSION_MARK)
        for slug, version in approved.items():  # changed since it was approved: to be reviewed again
            if stages.get(slug) is Stage.APPROVED and self._current_version(slug) != version:
                stages[slug] = Stage.IN_REVIEW
        order = list(Stage)
        with self.database.session() as session:
            for slug, status in session.execute(select(Campaign.issue_slug, Campaign.status)):
                stage = CAMPAIGN_STAGES.get(status)
                if stage and (slug not in stages or order.index(stage) > order.index(stages[slug])):
                    stages[slug] = stage
        return stages
