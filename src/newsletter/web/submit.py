"""The form where members share their work with the editors (`/submit`), thin over
`submissions/member.py`.

A member arrives by their own signed link (`/submit/<token>`: every issue's footer, their preferences
page, or an email they ask for at `/submit`), chooses what they are sharing, and fills that kind's
fields. Asking for a link answers the same whoever the address belongs to, and does the same work
(`Letter.send`), so the page tells nobody who is a member. Nothing is stored on GET.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request, url_for
from sqlalchemy.orm import Session

from newsletter.audience import addresses, members, membership
from newsletter.audience.membership import LinkProblem
from newsletter.db.models import Subscriber, new_link_key
from newsletter.submissions import member as submissions
from newsletter.web import forms
from newsletter.web.app import LINK_PROBLEMS, site
from newsletter.web.outbox import Letter
from newsletter.web.pages import NOT_SENT, PRESS_AGAIN, RETRY_AFTER, absolute, page, too_many
from newsletter.web.ratelimit import Limit

blueprint = Blueprint("submit", __name__)

PER_MEMBER = Limit(submissions.SUBMISSIONS_A_DAY, submissions.DAY)
TOO_MANY_TODAY = (
    f"You have already shared {submissions.SUBMISSIONS_A_DAY} things today, the most we take from one "
    "member in a day, so this one was not sent. Please send it tomorrow: copy what you wrote if you "
    "need to keep it."
)

# The form's name for the kind of thing shared: not `kind`, which a place update's own field is called.
WHAT = "what"

Reply = tuple[str, int] | tuple[str, int, dict[str, str]]


@blueprint.errorhandler(LinkProblem)
def link_problem(problem: LinkProblem) -> tuple[str, int]:
    """The app's words for a link that does not work, and a way to ask for a new one."""
    code, heading, advice = LINK_PROBLEMS[problem.kind]
    return render_template("submit_link.html.j2", heading=heading, advice=advice, code=code), code


# --- Asking for a link -----------------------------------------------------------------------------------


@blueprint.get("/submit")
def ask() -> tuple[str, int]:
    return ask_page()


def ask_page(
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    problem: str = "",
) -> tuple[str, int]:
    return page("submit_ask.html.j2", status, values=values or {}, errors=errors or {}, problem=problem)


@blueprint.post("/submit")
def ask_post() -> Reply:
    """Email a member their link; the same page, and the same work, for any address (rate limited per
    client and per inbox, as sign-ups are)."""
    here = site()
    checked = forms.Checked()
    if not here.csrf.valid():
        forms.text(request.form, "email", checked, forms.MAX_EMAIL)
        return ask_page(checked.values, status=400, problem=PRESS_AGAIN)
    if not here.limiter.hit("client", request.remote_addr or "", here.limits.per_client):
        return too_many(here.limits.per_client)
    address = forms.email(request.form, "email", checked)
    if not checked.ok:
        return ask_page(checked.values, checked.errors, 400)
    if not here.limiter.hit("address", addresses.key(address), here.limits.per_address):
        return too_many(here.limits.per_address)
    with here.store.session() as session:
        found = members.find(session, address)
        mailed = found is not None and submissions.may_submit(found)
        member_id, key = (found.id, found.link_key) if found is not None and mailed else (0, new_link_key())
    token = here.tokens.make("submit", member_id, key)
    bounce = here.tokens.make("bounce", member_id, key)  # VERP, as campaigns: a bounce counts against them
    letter = Letter("submit", address, absolute("submit.form", token=token), send=mailed, bounce=bounce)
    if not here.outbox.post(letter):
        body, status = ask_page(checked.values, status=503, problem=NOT_SENT)
        return body, status, RETRY_AFTER
    return page("submit_sent.html.j2", email=address)


# --- The form --------------------------------------------------------------------------------------------


def submitter(session: Session, token: str) -> Subscriber:
    """The member the link names, who may submit; `LinkProblem` for a link that names nobody, and
    `NotAllowed` for a member who may not (`submissions.may_submit`)."""
    found = membership.member_for(session, site().tokens, "submit", token).member
    if not submissions.may_submit(found):
        raise submissions.NotAllowed(found.status.value)
    return found


@blueprint.errorhandler(submissions.NotAllowed)
def not_allowed(_refused: submissions.NotAllowed) -> tuple[str, int]:
    return page("submit_closed.html.j2", 403)


@blueprint.get("/submit/<token>")
def form(token: str) -> tuple[str, int]:
    """Choose what to share, then (`?what=`) that kind's fields."""
    here = site()
    with here.store.session() as session:
        member = submitter(session, token)
    kind = request.args.get(WHAT)
    if kind is None:
        return choose_page(token)
    if kind not in submissions.KINDS:
        return choose_page(token, 400, error="Choose one of these.")
    return form_page(member, token, kind, {}, {}, credit=True)


def choose_page(token: str, status: int = 200, error: str = "") -> tuple[str, int]:
    return page("submit_choose.html.j2", status, token=token, kinds=submissions.KINDS, error=error)


def form_page(
    member: Subscriber,
    token: str,
    kind: str,
    values: dict[str, Any],
    errors: dict[str, str],
    *,
    credit: bool,
    status: int = 200,
    problem: str = "",
) -> tuple[str, int]:
    fields = submissions.form_fields(kind, site().store.vocabulary)
    return page(
        "submit_form.html.j2",
        status,
        token=token,
        kind=submissions.KINDS[kind],
        fields=fields,
        labels={"": "This form", **submissions.labels(fields)},
        values=values,
        errors=errors,
        credit=credit,
        organisation=member.organisation,
        problem=problem,
    )


@blueprint.post("/submit/<token>")
def form_post(token: str) -> Reply:
    """Check the answers (each problem at its field, what was typed shown again), then count the
    submission against the member's daily limit and store it for the editors."""
    here = site()
    vocabulary = here.store.vocabulary
    kind = request.form.get(WHAT, "")
    with here.store.session() as session:
        member = submitter(session, token)
        if kind not in submissions.KINDS:
            return choose_page(token, 400, error="Choose one of these.")
        values = submissions.form_values(kind, request.form, vocabulary)
        credit = request.form.get("credit") == "yes"
        if not here.csrf.valid():
            return form_page(member, token, kind, values, {}, credit=credit, status=400, problem=PRESS_AGAIN)
        _fields, errors = submissions.validate(kind, values, vocabulary)
        if errors:
            return form_page(member, token, kind, values, errors, credit=credit, status=400)
        if not here.limiter.hit("submit-member", str(member.id), PER_MEMBER):
            body, status = form_page(
                member, token, kind, values, {}, credit=credit, status=429, problem=TOO_MANY_TODAY
            )
            return body, status, {"Retry-After": str(PER_MEMBER.seconds)}
        sent = submissions.submit(session, member, kind, values, credit, vocabulary)
        title, preferences = sent.title, here.tokens.make("preferences", member.id, member.link_key)
    return page(
        "submit_done.html.j2",
        title=title,
        again=url_for("submit.form", token=token),
        preferences=url_for("subscriber.preferences", token=preferences, _anchor="submissions"),
    )
