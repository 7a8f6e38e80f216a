"""The subscriber pages. Each reads its input, calls `audience.membership` in one transaction, and
renders a page or sends an email. Nothing changes on GET: mail scanners in NHS and council networks
open every link, so confirming, saving, unsubscribing and erasing happen only on a POST.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.exceptions import BadRequest

from newsletter.audience import addresses, members, membership
from newsletter.audience.membership import Client, Link, LinkProblem, Reply
from newsletter.db.models import Status, Subscriber
from newsletter.submissions import member as submissions
from newsletter.web import forms
from newsletter.web.app import site
from newsletter.web.outbox import Letter
from newsletter.web.ratelimit import Limit

blueprint = Blueprint("subscriber", __name__)

ALREADY_CONFIRMED = "This address is already confirmed: there is nothing more to do."
# When a form's CSRF token is missing or stale (a page left open for hours, cookies cleared).
PRESS_AGAIN = "The page had expired, so nothing was changed. Please press the button again."
ONE_CLICK = "One-Click"
UNSUBSCRIBED = "You are unsubscribed"
NO_MORE_EMAIL = (
    "You will not receive any more emails from us."  # RFC 8058: the body is List-Unsubscribe=One-Click
)
# When the relay refuses an email or cannot be reached: the same words whoever the address belongs to.
NOT_SENT = "We could not send you an email just now, so nothing was saved. Please try again in a few minutes."
RETRY_AFTER = {"Retry-After": "300"}  # with 503: when trying again is worth it
# What each sign-up reply emails a link to: (token purpose, page).
SIGN_UP_LINKS = {
    Reply.CONFIRM: ("confirm", "subscriber.confirm"),
    Reply.ALREADY: ("preferences", "subscriber.preferences"),
}


def client() -> Client:
    agent = request.user_agent.string
    return Client(ip_address=request.remote_addr, user_agent=agent or None)


def page(template: str, status: int = 200, **values: Any) -> tuple[str, int]:
    return render_template(template, **values), status


def absolute(endpoint: str, **values: Any) -> str:
    return site().url(url_for(endpoint, **values))


def link(purpose: str, token: str) -> Link:
    """The member behind the URL's token, for a page that only shows them (read in its own session)."""
    with site().store.session() as session:
        return membership.member_for(session, site().tokens, purpose, token)


def too_many(limit: Limit) -> tuple[str, int, dict[str, str]]:
    body, status = page(
        "error.html.j2",
        429,
        code=429,
        heading="Too many tries",
        advice=(
            f"Please wait {limit.minutes()} minutes and try again. If you were trying to join, check your "
            "inbox (and spam folder) first: the email may already be there."
        ),
    )
    return body, status, {"Retry-After": str(limit.seconds)}


# --- Sign up ---------------------------------------------------------------------------------------------


@blueprint.get("/")
def home() -> Response:
    return redirect(url_for("subscriber.subscribe"))  # type: ignore[return-value]


@blueprint.get("/health")
def health() -> tuple[str, int, dict[str, str]]:
    """For a load balancer or uptime check: the process answers (the database is not touched)."""
    return "ok\n", 200, {"Content-Type": "text/plain; charset=utf-8"}


def subscribe_form(
    checked: forms.Checked | None = None, status: int = 200, problem: str = ""
) -> tuple[str, int]:
    vocabulary = site().store.vocabulary
    checked = checked or forms.Checked(
        values={"lists": ["newsletter"] if "newsletter" in vocabulary.lists else []}
    )
    return page(
        "subscribe.html.j2",
        status,
        values=checked.values,
        errors=checked.errors,
        problem=problem,
        vocabulary=vocabulary,
        consent=site().consent,
    )


@blueprint.get("/subscribe")
def subscribe() -> tuple[str, int]:
    return subscribe_form()


@blueprint.post("/subscribe")
def subscribe_post() -> tuple[str, int] | tuple[str, int, dict[str, str]]:
    here = site()
    if not here.csrf.valid():
        _, _, checked = forms.sign_up(request.form, here.store.vocabulary)
        checked.errors.clear()
        return subscribe_form(
            checked, 400, problem="This form had expired. Please check it and send it again."
        )
    if request.form.get("website"):  # the honeypot: people never see it, so only robots fill it in
        return sent_page(request.form.get("email", ""))
    if not here.limiter.hit("client", request.remote_addr or "", here.limits.per_client):
        return too_many(here.limits.per_client)
    address, profile, checked = forms.sign_up(request.form, here.store.vocabulary)
    if not checked.ok:
        return subscribe_form(checked, 400)
    if not here.limiter.hit("address", addresses.key(address), here.limits.per_address):
        return too_many(here.limits.per_address)
    with here.store.session() as session:
        outcome = membership.sign_up(session, address, profile, here.consent.version, client())
    if not sign_up_email(outcome):  # what the sign-up wrote is taken back (`withdraw_sign_up`)
        body, status = subscribe_form(checked, 503, problem=NOT_SENT)
        return body, status, RETRY_AFTER
    return sent_page(address)


def sign_up_email(outcome: membership.SignUp) -> bool:
    """Hand the outbox what the sign-up calls for (after its transaction committed, so the link works);
    False when it did not go, or the relay could not say in time, and then the sign-up is withdrawn
    once the email has certainly not gone.

    Every sign-up does the same work here, so its time does not tell who is a member: an address that
    is never mailed gets a letter too, built like the others and not sent (`Letter.send`)."""
    here = site()
    mailed = outcome.reply != Reply.NOTHING
    kind = outcome.reply.value if mailed else Reply.CONFIRM.value
    purpose, endpoint = SIGN_UP_LINKS[Reply(kind)]
    token = here.tokens.make(purpose, outcome.subscriber_id or 0, outcome.link_key)
    bounce = here.tokens.make("bounce", outcome.subscriber_id or 0, outcome.link_key)  # VERP, as campaigns
    letter = Letter(kind, outcome.email, absolute(endpoint, token=token), send=mailed, bounce=bounce)
    store = here.store

    def withdraw() -> None:
        with store.session() as session:
            membership.withdraw_sign_up(session, outcome)

    return here.outbox.post(letter, withdraw)


def sent_page(address: str) -> tuple[str, int]:
    """The same page whoever the address belongs to: nobody can learn from it who is a member."""
    return page("sent.html.j2", email=" ".join(str(address).split())[: forms.MAX_EMAIL])


# --- Confirm ---------------------------------------------------------------------------------------------


@blueprint.get("/confirm/<token>")
def confirm(token: str) -> tuple[str, int]:
    """The button, while the sign-up the link was sent for waits (`membership.confirmable`)."""
    here = site()
    with here.store.session() as session:
        found = membership.member_for(session, here.tokens, "confirm", token)
        waiting = membership.confirmable(session, found)
    if not waiting:
        return done_page("You are subscribed", ALREADY_CONFIRMED, found.member)
    return confirm_page(found.member, token)


def confirm_page(member: Subscriber, token: str, status: int = 200, problem: str = "") -> tuple[str, int]:
    return page("confirm.html.j2", status, email=member.email, token=token, problem=problem)


@blueprint.post("/confirm/<token>")
def confirm_post(token: str) -> tuple[str, int]:
    """Confirms the sign-up the link was sent for, once; a link already used, or overtaken by a later
    sign-up or by leaving, answers "already used" (410) and changes nothing."""
    here = site()
    with here.store.session() as session:
        found = membership.member_for(session, here.tokens, "confirm", token)
        member = found.member
        if membership.confirmable(session, found) and not here.csrf.valid():
            return confirm_page(member, token, 400, problem=PRESS_AGAIN)
        confirmed = membership.confirm(session, found, client())
    if not confirmed:
        return done_page("You are subscribed", ALREADY_CONFIRMED, member)
    return done_page(
        "You are subscribed",
        f"Thank you: your subscription is confirmed. The next newsletter will come to {member.email}.",
        member,
    )


def done_page(
    heading: str, message: str, member: Subscriber | None = None, status: int = 200
) -> tuple[str, int]:
    """A short page saying what happened, with a fresh link to the member's preferences."""
    preferences = None
    if member is not None:
        preferences = url_for(
            "subscriber.preferences", token=site().tokens.make("preferences", member.id, member.link_key)
        )
    return page("done.html.j2", status, heading=heading, message=message, preferences=preferences)


# --- Preferences -----------------------------------------------------------------------------------------


NOTES = {
    "saved": "Your changes are saved.",
    "unchanged": "Nothing was changed.",
    "email": "We have sent a link to your new address. Open it within 2 days to start using that address.",
    "revoked": "Your old links no longer open this page. We have emailed you this new link: keep that email.",
}
PROBLEMS = {
    # New links were made (the old ones stay stopped: that is what was asked) but the email did not go.
    "unsent": "Your old links no longer open this page, but we could not email you this new link just now. "
    "Bookmark this page, or press “Send me a new link” again in a few minutes.",
}
ADDRESS_NOT_SENT = (
    "We could not send a link to your new address just now, so nothing was changed. "
    "Please try again in a few minutes."
)


@blueprint.get("/preferences/<token>")
def preferences(token: str) -> tuple[str, int]:
    here = site()
    with here.store.session() as session:
        member = membership.member_for(session, here.tokens, "preferences", token).member
        current = membership.current_profile(session, member)
    values = current.as_details()
    done = request.args.get("done", "")
    return preferences_page(
        member, token, forms.Checked(values=values), note=NOTES.get(done), problem=PROBLEMS.get(done, "")
    )


def preferences_page(
    member: Subscriber,
    token: str,
    checked: forms.Checked,
    status: int = 200,
    note: str | None = None,
    email_checked: forms.Checked | None = None,
    problem: str = "",
) -> tuple[str, int]:
    here = site()
    with here.store.session() as session:
        sent = submissions.of_member(session, member)
    may_submit = submissions.may_submit(member)
    return page(
        "preferences.html.j2",
        status,
        member=member,
        token=token,
        values=checked.values,
        errors=checked.errors,
        email_values=(email_checked or forms.Checked()).values,
        email_errors=(email_checked or forms.Checked()).errors,
        vocabulary=here.store.vocabulary,
        note=note,
        problem=problem,
        unsubscribe_token=here.tokens.make("unsubscribe", member.id, member.link_key),
        data_token=here.tokens.make("data", member.id, member.link_key),
        submit_token=here.tokens.make("submit", member.id, member.link_key) if may_submit else None,
        submissions=sent,
        submission_kinds=submissions.KINDS,
        submission_status=submissions.STATUS_WORDS,
    )


@blueprint.post("/preferences/<token>")
def preferences_post(token: str) -> Any:
    """Save the form, ask for a new address, or ask for new links (`action`)."""
    here = site()
    action = request.form.get("action", "save")
    if action not in ("save", "email", "revoke"):
        raise BadRequest("unknown action")
    with here.store.session() as session:
        member = membership.member_for(session, here.tokens, "preferences", token).member
        if not here.csrf.valid():
            values = membership.current_profile(session, member).as_details()
            return preferences_page(
                member,
                token,
                forms.Checked(values=values),
                400,
                problem="The page had expired, so nothing was changed. Please make your changes again.",
            )
        if action == "save":
            response = save_preferences(session, member, token)
        elif action == "email":
            response = change_address(session, member, token)
        else:
            response = new_links(session, member)
    for send, not_sent in g.pop("after_commit", []):  # mail only what the database now holds
        if not send():
            response = not_sent()
    return response


def after_commit(send: Callable[[], bool], not_sent: Callable[[], Any]) -> None:
    """Run `send` once the request's transaction has committed; if it returns False (the email did
    not go), answer with what `not_sent` returns instead of the page that says it went."""
    g.setdefault("after_commit", []).append((send, not_sent))


def save_preferences(session: Session, member: Subscriber, token: str) -> Any:
    checked = forms.Checked()
    profile = forms.profile(request.form, site().store.vocabulary, checked, with_format=True)
    if not checked.ok:
        return preferences_page(member, token, checked, 400)
    changed = membership.update_preferences(session, member, profile, client())
    done = "saved" if changed else "unchanged"
    return redirect(url_for("subscriber.preferences", token=token, done=done), 303)


def change_address(session: Session, member: Subscriber, token: str) -> Any:
    """Keep the new address and email a link to it (rate limited like sign-ups: it mails an address
    the visitor typed). A suppressed address is never mailed; the page does not say so."""
    here = site()
    checked = forms.Checked()
    new = forms.email(request.form, "new_email", checked)
    if not checked.ok:
        values = membership.current_profile(session, member).as_details()
        return preferences_page(member, token, forms.Checked(values=values), 400, email_checked=checked)
    if addresses.key(new) == member.email_key:
        return redirect(url_for("subscriber.preferences", token=token, done="unchanged"), 303)
    if not here.limiter.hit("address", addresses.key(new), here.limits.per_address):
        return too_many(here.limits.per_address)
    send_to = membership.request_email_change(session, member, new)
    if send_to is not None:
        link = absolute(
            "subscriber.change_email", token=here.tokens.make("email", member.id, member.link_key)
        )
        member_id, typed, store = member.id, checked.values, here.store

        def forget() -> None:  # the link did not go: the waiting change is forgotten
            with store.session() as session:
                waiting = session.get(Subscriber, member_id)
                if waiting is not None:
                    membership.withdraw_email_change(session, waiting, send_to)

        after_commit(
            # From the plain address, not VERP: a bounce here is about the new address, which is not
            # yet the member's, and must not count against the address they have now.
            lambda: here.outbox.post(Letter("email", send_to, link), forget),
            lambda: address_not_sent(member_id, token, typed),
        )
    return redirect(url_for("subscriber.preferences", token=token, done="email"), 303)


def address_not_sent(member_id: int, token: str, typed: dict[str, Any]) -> tuple[str, int, dict[str, str]]:
    """The link to a new address did not go (the change is forgotten): show the form again as typed."""
    with site().store.session() as session:
        member = session.get(Subscriber, member_id)
        if member is None:  # erased in the meantime
            raise LinkProblem("gone")
        values = membership.current_profile(session, member).as_details()
        body, status = preferences_page(
            member,
            token,
            forms.Checked(values=values),
            503,
            email_checked=forms.Checked(values=typed),
            problem=ADDRESS_NOT_SENT,
        )
    return body, status, RETRY_AFTER


def new_links(session: Session, member: Subscriber) -> Any:
    """Revoke the member's links, email them the new one, and take them to it."""
    here = site()
    if not here.limiter.hit("address", member.email_key, here.limits.per_address):
        return too_many(here.limits.per_address)
    membership.revoke_links(session, member, client())
    fresh = here.tokens.make("preferences", member.id, member.link_key)
    link, address = absolute("subscriber.preferences", token=fresh), member.email
    bounce = here.tokens.make("bounce", member.id, member.link_key)
    after_commit(
        lambda: here.outbox.post(Letter("links", address, link, bounce=bounce)),
        lambda: redirect(url_for("subscriber.preferences", token=fresh, done="unsent"), 303),
    )
    return redirect(url_for("subscriber.preferences", token=fresh, done="revoked"), 303)


# --- A new address ---------------------------------------------------------------------------------------


@blueprint.get("/email/<token>")
def change_email(token: str) -> tuple[str, int]:
    found = link("email", token)
    return change_email_page(found, token)


def change_email_page(found: Link, token: str, status: int = 200, problem: str = "") -> tuple[str, int]:
    member = found.member
    new = membership.waiting_address(found)
    return page("email.html.j2", status, old=member.email, new=new, token=token, problem=problem)


@blueprint.post("/email/<token>")
def change_email_post(token: str) -> tuple[str, int]:
    here = site()
    with here.store.session() as session:
        found = membership.member_for(session, here.tokens, "email", token)
        if not here.csrf.valid():
            return change_email_page(found, token, 400, problem=PRESS_AGAIN)
        try:
            new = membership.confirm_email_change(session, found, client())
        except membership.AddressRefused as refused:
            return page(
                "done.html.j2",
                409,
                heading="We could not change your address",
                message=str(refused).capitalize() + ".",
                preferences=None,
            )
        member = found.member
    return done_page("Your address is changed", f"From now on our emails go to {new}.", member)


# --- Unsubscribe -----------------------------------------------------------------------------------------


def unsubscribe_page(found: Link, token: str, status: int = 200, problem: str = "") -> tuple[str, int]:
    here = site()
    member = found.member
    with here.store.session() as session:
        view = members.describe(session, member)
    names = here.store.vocabulary.lists
    on = [(slug, names.get(slug, slug)) for slug, subscribed in view.lists if subscribed]
    preferences = None
    if membership.link_is_current(member, found.issued_at):  # an older link must not get round a revocation
        preferences = url_for(
            "subscriber.preferences", token=here.tokens.make("preferences", member.id, member.link_key)
        )
    return page(
        "unsubscribe.html.j2",
        status,
        member=member,
        token=token,
        lists=on,
        preferences=preferences,
        problem=problem,
        unsubscribed=member.status == Status.UNSUBSCRIBED,
    )


@blueprint.get("/unsubscribe/<token>")
def unsubscribe(token: str) -> tuple[str, int]:
    return unsubscribe_page(link("unsubscribe", token), token)


@blueprint.post("/unsubscribe/<token>")
def unsubscribe_post(token: str) -> tuple[str, int]:
    """RFC 8058 one-click (no cookie, no CSRF token: the link is the authority), or the page's buttons."""
    here = site()
    one_click = request.form.get("List-Unsubscribe") == ONE_CLICK
    with here.store.session() as session:
        try:
            found = membership.member_for(session, here.tokens, "unsubscribe", token)
        except LinkProblem as problem:
            if one_click and problem.kind == "gone":  # erased: nothing held, nothing will be sent
                return done_page(UNSUBSCRIBED, "We hold no details for this link and will not email you.")
            raise
        member = found.member
        if one_click:
            members.unsubscribe(session, member, "one-click", **client().how())
            return done_page(UNSUBSCRIBED, NO_MORE_EMAIL)  # 200, never a redirect (RFC 8058)
        if not here.csrf.valid():
            return unsubscribe_page(found, token, 400, problem=PRESS_AGAIN)
        choice = request.form.get("list", "")
        if choice and choice not in here.store.vocabulary.lists:
            raise BadRequest("unknown list")
        members.unsubscribe(session, member, "unsubscribe page", choice or None, **client().how())
    # A fresh preferences link only for a link made since the member last revoked theirs.
    current = member if membership.link_is_current(member, found.issued_at) else None
    if choice:
        name = here.store.vocabulary.lists[choice]
        return done_page(
            "You have left a list",
            f"You will no longer receive “{name}”. Your other lists are unchanged.",
            current,
        )
    return done_page(UNSUBSCRIBED, NO_MORE_EMAIL, current)


# --- My data ---------------------------------------------------------------------------------------------


@blueprint.get("/data/<token>")
def data(token: str) -> tuple[str, int]:
    member = link("data", token).member
    return page("data.html.j2", email=member.email, token=token)


@blueprint.get("/data/<token>/download")
def data_download(token: str) -> Response:
    here = site()
    with here.store.session() as session:
        member = membership.member_for(session, here.tokens, "data", token).member
        held = membership.export(session, member)
    body = json.dumps(held, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-newsletter-data.json"'},
    )


@blueprint.get("/data/<token>/erase")
def erase(token: str) -> tuple[str, int]:
    member = link("data", token).member
    return page("erase.html.j2", email=member.email, token=token, problem="")


@blueprint.post("/data/<token>/erase")
def erase_post(token: str) -> tuple[str, int]:
    here = site()
    with here.store.session() as session:
        member = membership.member_for(session, here.tokens, "data", token).member
        if not here.csrf.valid():
            return page(
                "erase.html.j2",
                400,
                email=member.email,
                token=token,
                problem=PRESS_AGAIN,
            )
        membership.erase(session, member)
    return done_page(
        "Your details are erased",
        "Everything we held about you is gone. We keep only a one-way fingerprint of your address, so that we "
        "never email it or import it again.",
    )
