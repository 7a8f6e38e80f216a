"""The team that makes the newsletter: desk accounts, what each role may do, and the desk's history.

The rules about the team are written once, here, and the CLI and the desk both call them:
  - what each role may do (`PERMISSIONS`, asked through `may`): the desk checks it on the server
    for every route, whatever its pages show;
  - an account is named by its address, one account an address whatever its case;
  - the team always keeps an admin: the last one can be neither removed nor made something else;
  - signing in is by a single-use link (`sign_in_token`, `redeem`): there are no passwords to choose,
    reuse, leak or reset, and an editor already proves they hold the address each time. A new link
    replaces any earlier one; using it clears it; it works for `SIGN_IN_SECONDS`.
  - a session (`session_token`, `account_for_session`) names the account and its `session_epoch`:
    removing the account ends it, and `sign_out_everywhere` raises the epoch.
Tokens are itsdangerous signatures with `secret_key`, each salted by its purpose and timed.
"""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from dataclasses import dataclass

from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from newsletter.audience.addresses import InvalidAddress, key, normalise
from newsletter.db.database import Database
from newsletter.db.models import DeskEvent, Editor, Role, utcnow
from newsletter.errors import UserError

SIGN_IN_SECONDS = 30 * 60  # a sign-in link works for half an hour
SESSION_SECONDS = 12 * 3600  # a working day: then the desk asks for a new link
COMMAND_LINE = "command line"  # the `actor` of what `newsletter editors` does
MAX_NAME = 200


class Action(enum.StrEnum):
    """What can be done at the desk, each allowed to some roles (`PERMISSIONS`)."""

    DRAFT = "draft"  # start an issue, edit it, preview it
    SUBMIT = "submit"  # send a draft for review
    APPROVE = "approve"  # approve an issue in review, or send it back with a note
    TEST_SEND = "test-send"
    SCHEDULE = "schedule"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    MANAGE_TEAM = "manage-team"  # add, change and remove accounts
    REPORTS = "reports"  # read the campaign and audience reports, download their tables
    REVIEW = "review"  # accept members' submissions into a draft, ask about them, decline them


_CONTRIBUTOR = frozenset({Action.DRAFT, Action.SUBMIT})
_EDITOR = _CONTRIBUTOR | {
    Action.APPROVE,
    Action.TEST_SEND,
    Action.SCHEDULE,
    Action.PAUSE,
    Action.RESUME,
    Action.CANCEL,
    Action.REPORTS,
    Action.REVIEW,
}
PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.CONTRIBUTOR: _CONTRIBUTOR,
    Role.EDITOR: frozenset(_EDITOR),
    Role.ADMIN: frozenset(_EDITOR | {Action.MANAGE_TEAM}),
}
ROLE_WORDS = {
    Role.CONTRIBUTOR: "drafts issues and submits them for review",
    Role.EDITOR: "also approves, test-sends, schedules, pauses, resumes and cancels, reviews members' "
    "submissions and reads the reports",
    Role.ADMIN: "also adds, changes and removes accounts",
}


class AccountProblem(UserError):
    """What is wrong with an account's details, and which of them (`field`: email, name or role)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def may(role: Role, action: Action) -> bool:
    """Whether `role` may do `action`: the one place that says so."""
    return action in PERMISSIONS[role]


def sign_in_url(base_url: str, token: str) -> str:
    """Where a sign-in link points: the desk of `newsletter serve` at `base_url`."""
    return f"{base_url.rstrip('/')}/desk/sign-in/{token}"


def role_named(text: str) -> Role:
    """The role called `text`, or a `UserError` naming the roles there are."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        names = ", ".join(role.value for role in Role)
        raise AccountProblem("role", f"role {text!r}: not a role; the roles are {names}") from None


@dataclass(frozen=True)
class Account:
    """One desk account as the pages and the CLI see it."""

    id: int
    email: str
    name: str
    role: Role
    session_epoch: int
    signed_in_at: dt.datetime | None
    created_at: dt.datetime

    @property
    def label(self) -> str:
        """How the desk names them: their name, or their address when they gave none."""
        return self.name or self.email

    def may(self, action: Action) -> bool:
        return may(self.role, action)

    @classmethod
    def of(cls, row: Editor) -> Account:
        return cls(row.id, row.email, row.name, row.role, row.session_epoch, row.signed_in_at, row.created_at)


@dataclass(frozen=True)
class Event:
    """One line of the desk's history."""

    at: dt.datetime
    actor: str
    action: str
    issue_slug: str | None
    campaign_id: int | None
    details: str


class Team:
    """The team's accounts and history in the database; tokens signed with `secret_key`."""

    def __init__(self, database: Database, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("the team's links need a secret key")
        self.database = database
        self._sign_in = URLSafeTimedSerializer(secret_key, salt="desk-sign-in")
        self._session = URLSafeTimedSerializer(secret_key, salt="desk-session")

    # --- accounts ------------------------------------------------------------------------------------

    def add(self, email: str, role: Role, *, name: str = "", by: Account | None = None) -> Account:
        """A new account; `UserError` when the address is not one, or already has an account."""
        address = _address(email)
        name = " ".join(name.split())
        if len(name) > MAX_NAME:
            raise AccountProblem("name", f"name: at most {MAX_NAME} characters ({len(name)} given)")
        with self.database.session() as session:
            if session.scalar(select(Editor.id).where(Editor.email_key == key(address))) is not None:
                raise AccountProblem("email", f"{address}: already has an account")
            row = Editor(email=address, email_key=key(address), name=name, role=role, session_epoch=0)
            session.add(row)
            session.flush()
            _record(session, by, "account added", details=f"{address} as {role.value}")
            session.commit()
            return Account.of(row)

    def accounts(self) -> list[Account]:
        """Every account, admins first, then by address."""
        order = {Role.ADMIN: 0, Role.EDITOR: 1, Role.CONTRIBUTOR: 2}
        with self.database.session() as session:
            rows = [Account.of(row) for row in session.scalars(select(Editor))]
        return sorted(rows, key=lambda account: (order[account.role], account.email.lower()))

    def find(self, email: str) -> Account | None:
        """The account for an address (any case), or None (also for what is not an address)."""
        try:
            address = normalise(email)
        except InvalidAddress:
            return None
        with self.database.session() as session:
            row = session.scalar(select(Editor).where(Editor.email_key == key(address)))
            return Account.of(row) if row else None

    def get(self, account_id: int) -> Account | None:
        with self.database.session() as session:
            row = session.get(Editor, account_id)
            return Account.of(row) if row else None

    def change_role(self, email: str, role: Role, *, by: Account | None = None) -> Account:
        """Give an account another role; the last admin stays one."""
        with self.database.session() as session:
            row = self._row(session, email)
            if row.role is Role.ADMIN and role is not Role.ADMIN:
                self._keep_an_admin(session, row)
            before, row.role = row.role, role
            if before is not role:
                _record(session, by, "role changed", details=f"{row.email}: {before.value} to {role.value}")
            session.commit()
            return Account.of(row)

    def remove(self, email: str, *, by: Account | None = None) -> None:
        """Delete an account (its sessions end with it); its history stays, under its address."""
        with self.database.session() as session:
            row = self._row(session, email)
            if row.role is Role.ADMIN:
                self._keep_an_admin(session, row)
            _record(session, by, "account removed", details=f"{row.email} ({row.role.value})")
            session.delete(row)
            session.commit()

    def sign_out_everywhere(self, account: Account) -> None:
        """End every session of the account, on every browser."""
        with self.database.session() as session:
            session.execute(
                update(Editor).where(Editor.id == account.id).values(session_epoch=Editor.session_epoch + 1)
            )
            session.commit()

    # --- signing in ----------------------------------------------------------------------------------

    def sign_in_token(self, email: str) -> tuple[Account, str] | None:
        """A new single-use sign-in token for the account with this address (None: no such account).
        Any earlier link of theirs stops working."""
        account = self.find(email)
        if account is None:
            return None
        nonce = secrets.token_urlsafe(24)
        with self.database.session() as session:
            session.execute(
                update(Editor)
                .where(Editor.id == account.id)
                .values(sign_in_nonce=nonce, sign_in_sent_at=utcnow())
            )
            session.commit()
        return account, self._sign_in.dumps([account.id, nonce])

    def redeem(self, token: str) -> Account | None:
        """The account a sign-in token opens, using it up; None when it is not ours, has expired, was
        used already or replaced by a newer one, or its account is gone."""
        try:
            account_id, nonce = self._sign_in.loads(token, max_age=SIGN_IN_SECONDS)
        except (BadData, TypeError, ValueError):
            return None
        if not isinstance(account_id, int) or not isinstance(nonce, str):
            return None
        with self.database.session() as session:
            # One UPDATE that clears the nonce it matches: two tabs using one link cannot both get in.
            used = session.execute(
                update(Editor)
                .where(Editor.id == account_id, Editor.sign_in_nonce == nonce)
                .values(sign_in_nonce=None, signed_in_at=utcnow())
            )
            if used.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = session.get(Editor, account_id)
            assert row is not None
            _record(session, Account.of(row), "signed in")
            session.commit()
            return Account.of(row)

    def peek(self, token: str) -> Account | None:
        """The account a sign-in token would open, without using it (the page that asks to confirm)."""
        try:
            account_id, nonce = self._sign_in.loads(token, max_age=SIGN_IN_SECONDS)
        except (BadData, TypeError, ValueError):
            return None
        with self.database.session() as session:
            row = session.get(Editor, account_id) if isinstance(account_id, int) else None
            if row is None or row.sign_in_nonce is None or row.sign_in_nonce != nonce:
                return None
            return Account.of(row)

    def session_token(self, account: Account) -> str:
        return self._session.dumps([account.id, account.session_epoch])

    def account_for_session(self, token: str) -> Account | None:
        """The signed-in account a session cookie names, or None (expired, signed out, removed)."""
        try:
            account_id, epoch = self._session.loads(token, max_age=SESSION_SECONDS)
        except (BadData, TypeError, ValueError):
            return None
        account = self.get(account_id) if isinstance(account_id, int) else None
        if account is None or account.session_epoch != epoch:
            return None
        return account

    # --- history -------------------------------------------------------------------------------------

    def record(
        self,
        by: Account | None,
        action: str,
        *,
        issue_slug: str | None = None,
        campaign_id: int | None = None,
        details: str = "",
    ) -> None:
        """Add a line to the desk's history (`by` None: the command line)."""
        with self.database.session() as session:
            _record(session, by, action, issue_slug=issue_slug, campaign_id=campaign_id, details=details)
            session.commit()

    def history(self, issue_slug: str | None = None, limit: int = 200) -> list[Event]:
        """What was done, newest first: about one issue, or about everything."""
        query = select(DeskEvent).order_by(DeskEvent.at.desc(), DeskEvent.id.desc()).limit(limit)
        if issue_slug is not None:
            query = query.where(DeskEvent.issue_slug == issue_slug)
        with self.database.session() as session:
            return [
                Event(row.at, row.actor, row.action, row.issue_slug, row.campaign_id, row.details)
                for row in session.scalars(query)
            ]

    # --- helpers -------------------------------------------------------------------------------------

    def _row(self, session: Session, email: str) -> Editor:
        address = _address(email)
        row = session.scalar(select(Editor).where(Editor.email_key == key(address)))
        if row is None:
            raise UserError(f"{address}: no account has this address (`editors list` shows them)")
        return row

    @staticmethod
    def _keep_an_admin(session: Session, row: Editor) -> None:
        admins = session.scalar(select(func.count()).select_from(Editor).where(Editor.role == Role.ADMIN))
        if (admins or 0) <= 1:
            raise UserError(f"{row.email}: is the only admin; make someone else an admin first")


def _address(email: str) -> str:
    try:
        return normalise(email)
    except InvalidAddress as error:
        raise AccountProblem("email", f"{email!r}: not an email address: {error}") from None


def _record(
    session: Session,
    by: Account | None,
    action: str,
    *,
    issue_slug: str | None = None,
    campaign_id: int | None = None,
    details: str = "",
) -> None:
    session.add(
        DeskEvent(
            editor_id=by.id if by else None,
            actor=by.email if by else COMMAND_LINE,
            action=action,
            issue_slug=issue_slug,
            campaign_id=campaign_id,
            details=details[:1000],
        )
    )
