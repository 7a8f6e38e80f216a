"""Members' submissions at the desk: `/desk/submissions` (the queue, newest first) and each one's page,
where an editor adds it to a draft issue, asks the member a question or declines it with a note.

Thin over `Desk` (which checks the role and writes the issue file and the history) and
`submissions.review`. The member hears of each decision by email, sent once the decision is
committed, with a link to their preferences page, where their submissions are listed.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, get_flashed_messages, redirect, request, url_for
from werkzeug.exceptions import NotFound

from newsletter.errors import FieldProblem, UserError
from newsletter.submissions import member, review
from newsletter.team import Action
from newsletter.web.app import site
from newsletter.web.desk import _account, desk, page, requires
from newsletter.web.outbox import Letter

blueprint = Blueprint("desk_submissions", __name__, url_prefix="/desk/submissions")

LETTERS = {  # the decision's email and what it quotes
    "accept": "submission-accepted",
    "ask": "submission-question",
    "decline": "submission-declined",
}


@blueprint.get("/")
@requires(Action.REVIEW)
def queue() -> tuple[str, int]:
    everything = request.args.get("all") == "1"
    return page(
        "desk/submissions.html.j2",
        heading="Members' submissions",
        queued=desk().submissions(open_only=not everything),
        everything=everything,
        age=review.age,
        note=" ".join(get_flashed_messages()),
    )


@blueprint.get("/<int:submission_id>")
@requires(Action.REVIEW)
def submission(submission_id: int) -> tuple[str, int]:
    return submission_page(submission_id)


def submission_page(submission_id: int, status: int = 200, **values: Any) -> tuple[str, int]:
    try:
        found = desk().submission(submission_id)
    except UserError:
        raise NotFound() from None
    try:
        labels = member.labels(member.form_fields(found.submission.kind, site().store.vocabulary))
    except member.UnknownKind:
        labels = {}
    return page(
        "desk/submission.html.j2",
        status,
        labels=labels,
        heading=f"{found.kind_words.capitalize()} from {found.organisation or found.name or 'a former member'}",
        found=found,
        drafts=desk().drafts(),
        waiting=found.submission.status in review.OPEN,
        **values,
    )


@blueprint.post("/<int:submission_id>/<any(accept, ask, decline):decision>")
@requires(Action.REVIEW)
def decide(submission_id: int, decision: str) -> tuple[str, int] | Response:
    account = _account()
    try:
        desk().submission(submission_id)
    except UserError:
        raise NotFound() from None
    try:
        if decision == "accept":
            decided = desk().accept_submission(submission_id, request.form.get("issue", ""), account)
            done = f"Added to {decided.submission.issue_slug}: edit it there like any other item."
        elif decision == "ask":
            decided = desk().ask_about_submission(submission_id, request.form.get("question", ""), account)
            done = "Your question is on its way to the member."
        else:
            decided = desk().decline_submission(submission_id, request.form.get("reason", ""), account)
            done = "Declined; the member is told why."
    except FieldProblem as problem:
        return submission_page(submission_id, 400, errors={problem.field: str(problem)}, typed=request.form)
    except UserError as problem:  # decided meanwhile by someone else, or the draft's file changed
        return submission_page(submission_id, 400, problem=str(problem))
    if not _tell(decided, LETTERS[decision]):
        done += " The email to the member did not go: tell them yourself."
    flash(done)
    return redirect(url_for("desk_submissions.queue"), 303)


def _tell(decided: review.Decided, kind: str) -> bool:
    """Email the member the decision, with a fresh link to their preferences page (where their
    submissions are listed); True when there is nobody left to tell."""
    member = decided.member
    if member is None:
        return True
    here = site()
    token = here.tokens.make("preferences", member.id, member.link_key)
    link = here.url(url_for("subscriber.preferences", token=token))
    title = decided.submission.title
    details = {
        "submission-accepted": (f"“{title}”, in {decided.issue_title}.",),
        "submission-question": (f"About “{title}”:", decided.submission.note),
        "submission-declined": (f"About “{title}”:", decided.submission.note),
    }[kind]
    bounce = here.tokens.make("bounce", member.id, member.link_key)
    return here.outbox.post(Letter(kind, member.email, link, bounce=bounce, details=details))
