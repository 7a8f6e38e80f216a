"""Security headers on every response, and CSRF protection for the forms.

CSRF: a random value in an HttpOnly, SameSite=Lax cookie, and in each form an itsdangerous token that
signs that value (salted "csrf", timed). A POST is accepted only when the form's token is ours, recent,
and names the cookie the browser sent, so another site can neither forge the form nor reuse a token
without the cookie. No session store and no script are needed. The RFC 8058 one-click unsubscribe is
the one POST without it: mail providers send no cookie, and the unguessable link is the authority.

The other exemption is the `webhooks` blueprint (`POST /webhooks/<provider>`, `web/webhooks.py`) and only
it: email providers post there, never a browser, and each request must carry the provider's signature
(or Postmark's basic-auth credentials), which is checked instead. `CSRF_EXEMPT_BLUEPRINTS` names it, and
its views never call `Csrf.valid`; every other POST view does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from flask import Flask, Response, g, request
from itsdangerous import BadData, URLSafeTimedSerializer

_STYLE = re.compile(rb"<style[^>]*>(.*?)</style>", re.DOTALL)
CSRF_COOKIE = "newsletter_csrf"
# Over https the cookie takes the __Host- prefix: the browser then refuses it from any subdomain, so
# nobody controlling another host under the same domain can plant a cookie value of their choosing.
SECURE_CSRF_COOKIE = "__Host-" + CSRF_COOKIE
CSRF_FIELD = "csrf_token"
CSRF_MAX_AGE = 12 * 3600  # a form left open on a phone between meetings still works
CSRF_EXEMPT_BLUEPRINTS = frozenset({"webhooks"})  # provider-signed requests; see the module docstring

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# The archive shows issues' story images, which may live on other https sites (the email links them so
# too); nothing else on those public pages loads from elsewhere. The subscriber pages keep 'self'.
ARCHIVE_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace("img-src 'self'", "img-src 'self' https:")
# An email shown inside the desk's preview: its own inline styles and pictures from anywhere, and
# nothing else: no script, no form, no plugin, framed only by the desk's own pages, and sandboxed.
EMAIL_POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "img-src https: data: 'self'",
        "font-src https: data:",
        "frame-ancestors 'self'",
        "sandbox allow-popups allow-popups-to-escape-sandbox",
    ]
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the tokens are in the URLs: never pass them on to another site
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


class Csrf:
    """Makes and checks the forms' CSRF tokens against the browser's cookie."""

    def __init__(self, secret_key: str, secure_cookie: bool) -> None:
        self.serializer = URLSafeTimedSerializer(secret_key, salt="csrf")
        self.secure_cookie = secure_cookie
        self.cookie_name = SECURE_CSRF_COOKIE if secure_cookie else CSRF_COOKIE

    def token(self) -> str:
        """The token for a form on this page; the cookie is set with the response if it was missing."""
        value = request.cookies.get(self.cookie_name, "")
        if len(value) != 43:  # secrets.token_urlsafe(32)
            value = g.get("csrf_new_cookie") or secrets.token_urlsafe(32)
            g.csrf_new_cookie = value
        return self.serializer.dumps(value)

    def valid(self) -> bool:
        """True when the POST's token is ours, recent, and matches the cookie the browser sent."""
        cookie = request.cookies.get(self.cookie_name, "")
        sent = request.form.get(CSRF_FIELD, "")
        if not cookie or not sent:
            return False
        try:
            value = self.serializer.loads(sent, max_age=CSRF_MAX_AGE)
        except BadData:
            return False
        return isinstance(value, str) and hmac.compare_digest(value, cookie)

    def set_cookie(self, response: Response) -> None:
        value = g.get("csrf_new_cookie")
        if value:
            response.set_cookie(
                self.cookie_name, value, httponly=True, samesite="Lax", secure=self.secure_cookie, path="/"
            )


def install(app: Flask, csrf: Csrf) -> None:
    """Add the headers (and any new CSRF cookie) to every response, errors included."""

    @app.after_request
    def headers(response: Response) -> Response:
        own_policy = response.headers.get("Content-Security-Policy")  # a view's own (`EMAIL_POLICY`)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if own_policy:
            response.headers.setdefault("Cache-Control", "no-store")
            csrf.set_cookie(response)
            return response
        policy = (
            ARCHIVE_CONTENT_SECURITY_POLICY if request.blueprint == "archive" else CONTENT_SECURITY_POLICY
        )
        styles = _inline_styles(response)
        if styles:
            policy = policy.replace("style-src 'self'", "style-src 'self' " + " ".join(styles))
        response.headers["Content-Security-Policy"] = policy
        if "Cache-Control" not in response.headers:
            # Pages that do not say otherwise (the token pages hold personal details, the forms a
            # CSRF token) are never kept by the browser or a proxy.
            response.headers["Cache-Control"] = "no-store"
        csrf.set_cookie(response)
        return response


def _inline_styles(response: Response) -> list[str]:
    """CSP hashes of the `<style>` blocks in an HTML page (the archive inlines its small stylesheet), so
    exactly those are allowed and no `'unsafe-inline'` is needed. The subscriber pages have none."""
    if response.mimetype != "text/html" or response.is_streamed:
        return []
    body = response.get_data()
    if b"<style" not in body:
        return []
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(block).digest()).decode("ascii") + "'"
        for block in _STYLE.findall(body)
    ]
