"""The Flask app factory: `create_app(settings)` gives the subscriber pages, ready for any WSGI server.

Everything a page needs (settings, the member database, tokens, the outbox its emails leave by, rate
limits, the consent wording) is built once here and kept on the app as a `Site`; pages reach it with
`site()`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from flask import Flask, current_app, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from newsletter.audience.membership import LinkProblem
from newsletter.audience.store import Store
from newsletter.errors import UserError
from newsletter.settings import Settings
from newsletter.team import Team
from newsletter.tokens import Tokens
from newsletter.web import security
from newsletter.web.mail import Mailer
from newsletter.web.outbox import SENDERS, Outbox
from newsletter.web.ratelimit import Limits, RateLimiter

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024  # the largest form is a few kilobytes


@dataclass(frozen=True)
class Consent:
    """The consent wording shown on the sign-up form, and its version (recorded with each sign-up)."""

    version: str
    wording: str

    @classmethod
    def load(cls, path: Path) -> Consent:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            return cls(str(data["version"]), " ".join(str(data["wording"]).split()))
        except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
            raise UserError(f"{path}: needs a 'version' and a 'wording' ({error})") from None


@dataclass
class Site:
    """What every page uses, built once per app."""

    settings: Settings
    store: Store
    tokens: Tokens
    outbox: Outbox
    limiter: RateLimiter
    limits: Limits
    consent: Consent
    csrf: security.Csrf
    team: Team

    def url(self, path: str) -> str:
        """An absolute link for an email: always from `base_url`, never from the request's Host."""
        return self.settings.base_url.rstrip("/") + path


class _App(Flask):
    def select_jinja_autoescape(self, filename: str) -> bool:
        """The theme's pages are `*.html.j2`: escape everything in them."""
        return True


def site() -> Site:
    return current_app.extensions["newsletter"]  # type: ignore[no-any-return]


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    limits: Limits | None = None,
    proxies: int = 0,
    senders: int = SENDERS,
) -> Flask:
    """The subscriber pages for `settings`, over `store` (opened here when not given; `close_app`
    closes it either way). `proxies` is how many reverse proxies stand in front (their
    X-Forwarded-For and -Proto are then trusted for the client's address); 0 trusts none. `senders`
    is how many threads send the pages' emails, so at most that many requests wait on a relay that
    hangs (`web/outbox.py`)."""
    web_theme = settings.theme_dir / "web"
    app = _App(
        __name__,
        template_folder=str(web_theme),
        static_folder=str(web_theme / "static"),
        static_url_path="/static",
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_REQUEST_BYTES,
        SEND_FILE_MAX_AGE_DEFAULT=3600,
        # Flask's own signed cookie carries only the desk's one-off notes after a change (`flash`).
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
    )
    store = store or Store.open(settings)
    store.ready()
    csrf = security.Csrf(settings.secret_key, secure_cookie=settings.base_url.startswith("https://"))
    app.extensions["newsletter"] = Site(
        settings=settings,
        store=store,
        tokens=Tokens(settings.secret_key),
        outbox=Outbox(Mailer(settings, web_theme), senders=senders),
        limiter=RateLimiter(store.database, settings.secret_key),
        limits=limits or Limits(),
        consent=Consent.load(web_theme / "consent.yaml"),
        csrf=csrf,
        team=Team(store.database, settings.secret_key),
    )
    app.jinja_env.globals.update(csrf_token=csrf.token, network=settings.network_name)
    security.install(app, csrf)
    _error_pages(app)
    from newsletter.web import clicks, desk, desk_edit, desk_reports, desk_submissions, pages, submit
    from newsletter.web.archive import archive_blueprint
    from newsletter.web.webhooks import webhooks_blueprint

    app.register_blueprint(pages.blueprint)
    app.register_blueprint(submit.blueprint)  # members share their work at /submit
    app.register_blueprint(desk.blueprint)  # the editor's desk at /desk/
    app.register_blueprint(desk_edit.blueprint)  # editing an issue at /desk/issues/<slug>/edit
    app.register_blueprint(desk_reports.blueprint)  # /desk/reports/ and /desk/campaigns/<id>/report
    app.register_blueprint(desk_submissions.blueprint)  # members' submissions at /desk/submissions/
    app.register_blueprint(archive_blueprint(settings))  # the past issues at /archive/
    app.register_blueprint(webhooks_blueprint(settings))  # providers' bounces at /webhooks/<provider>
    app.register_blueprint(clicks.blueprint)  # counted links' redirects at /c/<token>
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    return app


def close_app(app: Flask) -> None:
    """Stop the outbox (and its SMTP connections) and close the database pool (when the server stops)."""
    here: Site = app.extensions["newsletter"]
    here.outbox.close()
    here.store.close()


ERRORS = {
    400: ("Something in that request was not right", "Please go back and try again."),
    401: ("Please sign in", "Sign in to the editor's desk, then try again."),
    403: ("Your account cannot do that", "Ask an editor or an admin of your team."),
    404: ("Page not found", "Check the address, or use the link in your email again."),
    405: ("That did not work", "This page cannot be used that way. Please go back and use its buttons."),
    413: ("Too much to send", "What you sent is larger than any of our forms. Please go back and try again."),
    429: ("Too many tries", "Please wait a while and try again."),
    500: ("Sorry, something went wrong", "Nothing you did caused this. Please try again in a few minutes."),
}

LINK_PROBLEMS = {
    # kind: (HTTP status, heading, what to do)
    "bad": (
        400,
        "This link does not work",
        "It may have been cut short or changed when it was copied. Open the link straight from the email, "
        "or copy all of it.",
    ),
    "expired": (
        410,
        "This link has expired",
        "Links to confirm something work for a few days only. Start again and we will email you a new one.",
    ),
    "gone": (
        410,
        "We hold nothing for this link",
        "The details it pointed to were erased, so there is nothing to show or change, and we will not "
        "email that address.",
    ),
    "revoked": (
        410,
        "This link was replaced",
        "New links were asked for, and this older one no longer opens the page. Use the link in the most "
        "recent email from us.",
    ),
    "used": (
        410,
        "This link has already been used",
        "Nothing more needs doing. If you asked for another change since, use the link in the newest email.",
    ),
}


def _error_pages(app: Flask) -> None:
    """Friendly pages for every error: never a traceback, whatever went wrong."""

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int, dict[str, Any]]:
        code = error.code or 500
        heading, advice = ERRORS.get(code, ERRORS[400] if code < 500 else ERRORS[500])
        headers = dict(error.get_headers())
        headers.pop("Content-Type", None)
        return render_template("error.html.j2", heading=heading, advice=advice, code=code), code, headers

    @app.errorhandler(LinkProblem)
    def link_problem(problem: LinkProblem) -> tuple[str, int]:
        code, heading, advice = LINK_PROBLEMS[problem.kind]
        return render_template(
            "error.html.j2", heading=heading, advice=advice, code=code, subscribe=True
        ), code

    @app.errorhandler(Exception)
    def crash(error: Exception) -> tuple[str, int]:
        log.exception("error on %s %s", request.method, request.path)
        heading, advice = ERRORS[500]
        return render_template("error.html.j2", heading=heading, advice=advice, code=500), 500
