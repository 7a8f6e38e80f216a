"""The editor's desk at /desk/: sign in, the issues, the team. Thin over `newsletter.desk` and
`newsletter.team`, which hold the rules (who may do what, single-use links, the last admin).

Every route needs a signed-in account: a page asked for without one redirects to the sign-in page,
a form posted without one is answered 401, and an action the account's role does not allow 403,
whatever the pages show. Every POST checks the CSRF token. The session is a signed, expiring cookie
(HttpOnly, SameSite=Lax, and Secure with the `__Host-` prefix when `base_url` is https) that names
the account and its `session_epoch`, so removing the account or signing out everywhere ends it.
"""

from __future__ import annotations

import calendar as pycalendar
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    get_flashed_messages,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import Forbidden, NotFound, Unauthorized

from newsletter.audience import addresses
from newsletter.audience.service import Audience
from newsletter.content.loader import SLUG
from newsletter.delivery import campaigns
from newsletter.delivery.campaigns import CampaignReport
from newsletter.delivery.service import Sending
from newsletter.desk import Desk, Stage
from newsletter.editor import text_only_page
from newsletter.errors import FieldProblem, Problem, ProblemsFound, UserError
from newsletter.team import (
    ROLE_WORDS,
    SESSION_SECONDS,
    Account,
    AccountProblem,
    Action,
    role_named,
    sign_in_url,
)
from newsletter.web.app import site
from newsletter.web.outbox import Letter
from newsletter.web.pages import too_many
from newsletter.web.ratelimit import Limit
from newsletter.web.security import EMAIL_POLICY

blueprint = Blueprint("desk", __name__, url_prefix="/desk")

SESSION_COOKIE = "newsletter_desk"
SECURE_SESSION_COOKIE = "__Host-" + SESSION_COOKIE
# Sign-in links asked for: per client as generous as the sign-up form; per address a few an hour,
# so nobody can flood a colleague's inbox with links.
SIGN_IN_PER_CLIENT = Limit(30, 600)
SIGN_IN_PER_ADDRESS = Limit(5, 3600)
EXPIRED_FORM = "This form had expired. Please try again."

View = TypeVar("View", bound=Callable[..., Any])


def desk() -> Desk:
    """The app's one `Desk` (its `Sending` loads the theme and vocabulary once), made on first use."""
    found = current_app.extensions.get("newsletter.desk")
    if found is None:
        here = site()
        sending = Sending(here.settings, here.store)  # the app's Store: closed with the app, not here
        found = current_app.extensions["newsletter.desk"] = Desk(here.settings.issues_dir, sending, here.team)
    return cast(Desk, found)


def _cookie_name() -> str:
    return SECURE_SESSION_COOKIE if site().csrf.secure_cookie else SESSION_COOKIE


def signed_in() -> Account | None:
    """The account whose session cookie came with this request (looked up once a request)."""
    if "desk_account" not in g:
        token = request.cookies.get(_cookie_name(), "")
        g.desk_account = site().team.account_for_session(token) if token else None
    return cast(Account | None, g.desk_account)


def requires(action: Action) -> Callable[[View], View]:
    """The view needs a signed-in account allowed `action`; POSTs also a valid CSRF token."""

    def decorate(view: View) -> View:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            account = signed_in()
            if account is None:
                if request.method == "GET":
                    return redirect(url_for("desk.sign_in", next=request.path))
                raise Unauthorized()
            if not account.may(action):
                raise Forbidden()
            if request.method == "POST" and not site().csrf.valid():
                return page("desk/problem.html.j2", 400, heading="That did not work", advice=EXPIRED_FORM)
            return view(*args, **kwargs)

        return cast(View, checked)

    return decorate


def page(template: str, status: int = 200, **values: Any) -> tuple[str, int]:
    return render_template(template, account=signed_in(), stages=Stage, **values), status


def _slug(slug: str) -> str:
    if not SLUG.fullmatch(slug):  # never a path: `..` or `/` cannot name an issue
        raise NotFound()
    return slug


# --- Signing in ------------------------------------------------------------------------------------------


@blueprint.get("/sign-in")
def sign_in() -> tuple[str, int] | Response:
    if signed_in() is not None:
        return redirect(url_for("desk.issues"))
    return page("desk/sign_in.html.j2", heading="Sign in to the editor's desk", values={}, errors={})


@blueprint.post("/sign-in")
def sign_in_post() -> tuple[str, int] | tuple[str, int, dict[str, str]]:
    here = site()
    email = " ".join(request.form.get("email", "").split())[:320]
    if not here.csrf.valid():
        return page(
            "desk/sign_in.html.j2",
            400,
            heading="Sign in",
            values={"email": email},
            errors={},
            problem=EXPIRED_FORM,
        )
    if not here.limiter.hit("desk-client", request.remote_addr or "", SIGN_IN_PER_CLIENT):
        return too_many(SIGN_IN_PER_CLIENT)
    try:
        address = addresses.normalise(email)
    except addresses.InvalidAddress as error:
        return page(
            "desk/sign_in.html.j2",
            400,
            heading="Sign in",
            values={"email": email},
            errors={"email": str(error)},
        )
    if not here.limiter.hit("desk-address", addresses.key(address), SIGN_IN_PER_ADDRESS):
        return too_many(SIGN_IN_PER_ADDRESS)
    made = here.team.sign_in_token(address)
    # The same work and the same page whether or not the address has an account (`Letter.send`), so
    # nobody learns from this form who is on the team.
    url = sign_in_url(here.settings.base_url, made[1]) if made else sign_in_url(here.settings.base_url, "-")
    if not here.outbox.post(Letter("desk", address, url, send=made is not None)):
        return page(
            "desk/problem.html.j2",
            503,
            heading="We could not send the link just now",
            advice="Please try again in a few minutes.",
        )
    return page("desk/sign_in_sent.html.j2", heading="Check your email", email=address)


@blueprint.get("/sign-in/<token>")
def sign_in_link(token: str) -> tuple[str, int]:
    """Opening the link only shows a button: mail scanners that fetch links must not use it up."""
    account = site().team.peek(token)
    if account is None:
        return _dead_link()
    return page("desk/sign_in_confirm.html.j2", heading="Sign in", who=account, token=token)


@blueprint.post("/sign-in/<token>")
def sign_in_link_post(token: str) -> tuple[str, int] | Response:
    here = site()
    if not here.csrf.valid():
        return page("desk/problem.html.j2", 400, heading="That did not work", advice=EXPIRED_FORM)
    account = here.team.redeem(token)
    if account is None:
        return _dead_link()
    response = redirect(url_for("desk.issues"))
    response.set_cookie(
        _cookie_name(),
        here.team.session_token(account),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="Lax",
        secure=here.csrf.secure_cookie,
        path="/",
    )
    return response


def _dead_link() -> tuple[str, int]:
    return page(
        "desk/problem.html.j2",
        410,
        heading="This sign-in link no longer works",
        advice="Links work once, for 30 minutes, and a newer link replaces an older one. Ask for a new one.",
        sign_in=True,
    )


@blueprint.post("/sign-out")
def sign_out() -> tuple[str, int] | Response:
    if not site().csrf.valid():
        return page("desk/problem.html.j2", 400, heading="That did not work", advice=EXPIRED_FORM)
    account = signed_in()
    if account is not None and request.form.get("everywhere"):
        site().team.sign_out_everywhere(account)
    response = redirect(url_for("desk.sign_in"))
    response.delete_cookie(_cookie_name(), path="/", secure=site().csrf.secure_cookie, samesite="Lax")
    return response


# --- Issues ----------------------------------------------------------------------------------------------


@blueprint.get("/")
@requires(Action.DRAFT)
def issues() -> tuple[str, int]:
    listed = desk().issues()
    return page("desk/issues.html.j2", heading="Issues", issues=listed, values={}, errors={})


@blueprint.post("/issues")
@requires(Action.DRAFT)
def new_issue() -> tuple[str, int] | Response:
    slug = request.form.get("slug", "").strip()
    like = request.form.get("like", "").strip() or None
    account = signed_in()
    assert account is not None
    try:
        desk().start(slug, like, account)
    except UserError as error:
        listed = desk().issues()
        values = {"slug": slug, "like": like or ""}
        return page(
            "desk/issues.html.j2",
            400,
            heading="Issues",
            issues=listed,
            values=values,
            errors={"slug": str(error)},
        )
    return redirect(url_for("desk.issue", slug=slug))


@blueprint.get("/issues/<slug>")
@requires(Action.DRAFT)
def issue(slug: str) -> tuple[str, int]:
    return issue_page(_slug(slug))


def issue_page(slug: str, status: int = 200, **values: Any) -> tuple[str, int]:
    """The issue's page: where it stands, what the signed-in account may do next, its history."""
    here = site()
    listed = {summary.slug: summary for summary in desk().issues()}
    if slug not in listed:
        raise NotFound()
    if "problems" not in values:
        values["problems"] = _problems(slug)
    values.setdefault("note", " ".join(get_flashed_messages()))
    values.setdefault("errors", {})
    values.setdefault("chosen", {})
    audience = Audience(here.store)
    return page(
        "desk/issue.html.j2",
        status,
        heading=listed[slug].title or slug,
        issue=listed[slug],
        history=desk().history(slug),
        campaigns=[report for report in desk().sending.campaigns() if report.campaign.issue_slug == slug],
        segments=audience.segment_counts(),
        lists=audience.list_counts(),
        timezone=here.settings.timezone,
        **values,
    )


def _problems(slug: str) -> list[Problem]:
    """What `newsletter check` finds in the issue: a draft that does not load yet has problems too."""
    try:
        return desk().check(slug).problems
    except ProblemsFound as found:
        return found.problems


def _account() -> Account:
    account = signed_in()
    assert account is not None  # `requires` let the request through
    return account


def _step(slug: str, done: str, act: Callable[[], object]) -> tuple[str, int] | Response:
    """Do one review step; back to the issue's page (by a redirect) saying so, or with what stopped it."""
    try:
        act()
    except ProblemsFound as found:
        return issue_page(slug, 400, problems=found.problems, problem=f"Not {done}: fix these first.")
    except UserError as error:
        return issue_page(slug, 400, problem=str(error))
    flash(f"{slug} {done}.")
    return redirect(url_for("desk.issue", slug=slug))


@blueprint.post("/issues/<slug>/submit")
@requires(Action.SUBMIT)
def submit(slug: str) -> tuple[str, int] | Response:
    slug = _slug(slug)
    return _step(
        slug, "submitted for review", lambda: desk().submit(slug, _account(), request.form.get("note", ""))
    )


@blueprint.post("/issues/<slug>/approve")
@requires(Action.APPROVE)
def approve(slug: str) -> tuple[str, int] | Response:
    slug = _slug(slug)
    return _step(slug, "approved", lambda: desk().approve(slug, _account()))


@blueprint.post("/issues/<slug>/send-back")
@requires(Action.APPROVE)
def send_back(slug: str) -> tuple[str, int] | Response:
    slug = _slug(slug)
    note = request.form.get("note", "")
    try:
        desk().send_back(slug, _account(), note)
    except UserError as error:
        return issue_page(slug, 400, errors={"note": str(error)})
    flash(f"{slug} sent back to its drafters.")
    return redirect(url_for("desk.issue", slug=slug))


@blueprint.post("/issues/<slug>/test-send")
@requires(Action.TEST_SEND)
def test_send(slug: str) -> tuple[str, int] | Response:
    slug = _slug(slug)
    as_email = " ".join(request.form.get("as_email", "").split()) or None
    try:
        results = desk().test_send(slug, _account(), as_email)
    except ProblemsFound as found:
        return issue_page(slug, 400, problems=found.problems, problem="Not sent: fix these first.")
    except UserError as error:
        return issue_page(slug, 400, errors={"as_email": str(error)}, chosen={"as_email": as_email or ""})
    [(address, result)] = results.items()
    flash(f"Test copy to {address}: {result}")
    return redirect(url_for("desk.issue", slug=slug))


@blueprint.get("/issues/<slug>/reach")
@requires(Action.DRAFT)
def reach(slug: str) -> Response:
    """How many members the ticked segments and lists reach, each once: the schedule form's script
    shows it as boxes are ticked (the confirmation page says it without scripts)."""
    slug = _slug(slug)
    audiences = [name for name in request.args.getlist("to") if name]
    try:
        members, already = campaigns.reach(site().store, slug, audiences) if audiences else (0, 0)
    except UserError as error:
        return jsonify({"error": str(error)})
    return jsonify({"members": members, "already": already, "new": members - already})


@blueprint.post("/issues/<slug>/schedule")
@requires(Action.SCHEDULE)
def schedule(slug: str) -> tuple[str, int] | Response:
    """First the confirmation (count, subject, time), then, confirmed, the campaign."""
    slug = _slug(slug)
    audiences = [name for name in request.form.getlist("to") if name]
    when = f"{request.form.get('when_date', '').strip()} {request.form.get('when_time', '').strip()}".strip()
    chosen = {
        "to": audiences,
        "when_date": request.form.get("when_date", ""),
        "when_time": request.form.get("when_time", ""),
    }
    try:
        if request.form.get("confirmed") != "yes":
            planned = desk().plan(slug, audiences, when, _account())
            return page(
                "desk/confirm.html.j2",
                heading=f"Schedule {slug}?",
                slug=slug,
                planned=planned,
                chosen=chosen,
                when_local=when,
                timezone=site().settings.timezone,
            )
        campaign = desk().schedule(slug, audiences, when, _account())
    except ProblemsFound as found:
        return issue_page(slug, 400, problems=found.problems, problem="Not scheduled: fix these first.")
    except FieldProblem as problem:
        return issue_page(slug, 400, errors={problem.field: str(problem)}, chosen=chosen)
    except UserError as error:
        return issue_page(slug, 400, problem=str(error), chosen=chosen)
    flash(f"Campaign {campaign.id} scheduled.")
    return redirect(url_for("desk.campaign", campaign_id=campaign.id))


# --- Calendar --------------------------------------------------------------------------------------------


@blueprint.get("/calendar")
@requires(Action.DRAFT)
def calendar() -> tuple[str, int]:
    """The month's sends, scheduled and past, day by day in the network's time zone."""
    zone = ZoneInfo(site().settings.timezone)
    today = dt.datetime.now(zone).date()
    asked = request.args.get("month", "")
    try:
        first = dt.datetime.strptime(asked, "%Y-%m").date() if asked else today.replace(day=1)
    except ValueError:
        first = today.replace(day=1)
    days: dict[dt.date, list[CampaignReport]] = {}
    for report in desk().sending.campaigns():
        local = report.campaign.send_at.replace(tzinfo=dt.UTC).astimezone(zone)
        days.setdefault(local.date(), []).append(report)
    weeks = pycalendar.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month)
    previous = (first - dt.timedelta(days=1)).replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return page(
        "desk/calendar.html.j2",
        heading=f"Sends in {first:%B %Y}",
        weeks=weeks,
        month=first.month,
        days=days,
        today=today,
        previous=previous.strftime("%Y-%m"),
        following=following.strftime("%Y-%m"),
        zone=site().settings.timezone,
    )


# --- Preview ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewChoice:
    """Whose email the preview shows: the whole issue, one member's (`as_email`), or one of the
    distinct emails a segment's members get (`segment`, `view`)."""

    as_email: str = ""
    segment: str = ""
    view: int = 0

    @classmethod
    def from_request(cls) -> PreviewChoice:
        view = request.args.get("view", "0")
        return cls(
            " ".join(request.args.get("as", "").split())[:320],
            request.args.get("segment", "").strip()[:100],
            int(view) if view.isdigit() and len(view) < 6 else 0,
        )

    def query(self, **extra: str) -> dict[str, str]:
        values = {"as": self.as_email, "segment": self.segment, "view": str(self.view), **extra}
        return {name: value for name, value in values.items() if value and value != "0"}


@dataclass(frozen=True)
class Shown:
    """What the preview shows: a label per version, the chosen version's HTML and text, the findings."""

    labels: list[str]
    html: str
    text: str
    text_only: bool
    problems: list[Problem]
    warnings: list[Problem]


def _shown(slug: str, choice: PreviewChoice) -> Shown:
    """The issue as delivery will render it for the chosen reader, and what `check` says of it."""
    editor = desk().sending.editor
    checked = desk().check(slug)
    if not (choice.as_email or choice.segment):
        edition = checked.edition
        return Shown(
            ["the whole issue"], edition.html, edition.text, False, checked.problems, checked.warnings
        )
    views = desk().sending.foresee(
        checked.issue, as_email=choice.as_email or None, segment=choice.segment or None
    )
    view = views[choice.view] if choice.view < len(views) else views[0]
    edition = editor.renderer.render(view.issue, with_html=not view.text_only)
    labels = [
        f"{found.label} ({found.members:,} member{'s' if found.members != 1 else ''})" for found in views
    ]
    return Shown(labels, edition.html, edition.text, view.text_only, checked.problems, checked.warnings)


@blueprint.get("/issues/<slug>/preview")
@requires(Action.DRAFT)
def preview(slug: str) -> tuple[str, int]:
    slug = _slug(slug)
    choice = PreviewChoice.from_request()
    errors: dict[str, str] = {}
    try:
        shown = _shown(slug, choice)
    except ProblemsFound as found:
        return issue_page(
            slug, 400, problems=found.problems, problem="The issue does not load yet: fix these first."
        )
    except UserError as error:
        errors["as" if choice.as_email else "segment"] = str(error)
        shown = _shown(slug, PreviewChoice())
        choice = PreviewChoice()
    segments = [segment for segment, _ in Audience(site().store).segment_counts()]
    return page(
        "desk/preview.html.j2",
        400 if errors else 200,
        heading=f"Preview of {slug}",
        slug=slug,
        shown=shown,
        choice=choice,
        segments=segments,
        errors=errors,
    )


@blueprint.get("/issues/<slug>/preview/email.html")
@requires(Action.DRAFT)
def preview_email(slug: str) -> Response:
    """The email itself, for the preview's frames: light, or with its dark-mode rules applied."""
    slug = _slug(slug)
    try:
        shown = _shown(slug, PreviewChoice.from_request())
    except UserError:
        raise NotFound() from None
    html = shown.html if not shown.text_only else text_only_page("These members")
    return email_response(html)


def email_response(html: str) -> Response:
    """An email for a frame of the desk's own pages: under its own policy (`EMAIL_POLICY`: its styles,
    no script, sandboxed), and with `?dark=1` as a reader whose device is set to dark sees it."""
    if request.args.get("dark"):
        html = html.replace("@media (prefers-color-scheme: dark)", "@media all")
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = EMAIL_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


# --- Campaigns -------------------------------------------------------------------------------------------


def _report(campaign_id: int) -> CampaignReport:
    try:
        return desk().sending.status(campaign_id)
    except UserError:
        raise NotFound() from None


@blueprint.get("/campaigns/<int:campaign_id>")
@requires(Action.DRAFT)
def campaign(campaign_id: int) -> tuple[str, int]:
    report = _report(campaign_id)
    return page(
        "desk/campaign.html.j2",
        heading=f"Campaign {campaign_id}: {report.campaign.issue_slug}",
        report=report,
        progress=progress_of(report),
        troubles=desk().sending.troubles(campaign_id),
        note=" ".join(get_flashed_messages()),
    )


@blueprint.get("/campaigns/<int:campaign_id>/progress")
@requires(Action.DRAFT)
def campaign_progress(campaign_id: int) -> Response:
    """The figures the campaign page shows, for its script to update them without a reload."""
    response = jsonify(progress_of(_report(campaign_id)))
    response.headers["Cache-Control"] = "no-store"
    return response


def progress_of(report: CampaignReport) -> dict[str, Any]:
    """What a campaign's page shows of its progress, in words and numbers."""
    left = report.seconds_left
    return {
        "state": report.state,
        "status": report.campaign.status.value,
        "total": report.total,
        "done": report.done,
        "counts": report.counts,
        "rate": f"{report.rate_per_second:,.1f} a second" if report.rate_per_second else "–",
        "left": f"about {max(1, round(left / 60))} minutes" if left else "–",
        "finished": report.campaign.status.value in ("sent", "cancelled"),
    }


@blueprint.post("/campaigns/<int:campaign_id>/<any(pause, resume, cancel):action>")
@requires(Action.DRAFT)  # each action's own permission is checked below, on the server
def steer(campaign_id: int, action: str) -> tuple[str, int] | Response:
    wanted = Action(action)
    account = _account()
    if not account.may(wanted):
        raise Forbidden()
    try:
        desk().steer(campaign_id, wanted, account)
    except UserError as error:
        flash(str(error))
    return redirect(url_for("desk.campaign", campaign_id=campaign_id))


# --- The team --------------------------------------------------------------------------------------------


def _team_page(status: int = 200, **values: Any) -> tuple[str, int]:
    values.setdefault("values", {})
    values.setdefault("errors", {})
    values.setdefault("note", " ".join(get_flashed_messages()))
    return page(
        "desk/team.html.j2",
        status,
        heading="The team",
        accounts=site().team.accounts(),
        roles=ROLE_WORDS,
        **values,
    )


@blueprint.get("/team")
@requires(Action.MANAGE_TEAM)
def team() -> tuple[str, int]:
    return _team_page()


@blueprint.post("/team")
@requires(Action.MANAGE_TEAM)
def team_add() -> tuple[str, int] | Response:
    values = {name: request.form.get(name, "").strip() for name in ("email", "name", "role")}
    try:
        added = site().team.add(
            values["email"], role_named(values["role"]), name=values["name"], by=signed_in()
        )
    except AccountProblem as problem:
        return _team_page(400, values=values, errors={problem.field: str(problem)})
    return _done(f"Added {added.email} as {added.role.value}. They can now ask for a sign-in link.")


@blueprint.post("/team/<int:account_id>/role")
@requires(Action.MANAGE_TEAM)
def team_role(account_id: int) -> tuple[str, int] | Response:
    here = site()
    target = here.team.get(account_id)
    if target is None:
        raise NotFound()
    try:
        changed = here.team.change_role(
            target.email, role_named(request.form.get("role", "")), by=signed_in()
        )
    except UserError as error:
        return _team_page(400, problem=str(error))
    return _done(f"{changed.email} is now {changed.role.value}.")


@blueprint.post("/team/<int:account_id>/remove")
@requires(Action.MANAGE_TEAM)
def team_remove(account_id: int) -> tuple[str, int] | Response:
    here = site()
    target = here.team.get(account_id)
    if target is None:
        raise NotFound()
    try:
        here.team.remove(target.email, by=signed_in())
    except UserError as error:
        return _team_page(400, problem=str(error))
    return _done(f"Removed the account of {target.email}.")


def _done(note: str) -> Response:
    """After a change, back to the team page by a redirect (reloading it then repeats nothing)."""
    flash(note)
    return redirect(url_for("desk.team"))
