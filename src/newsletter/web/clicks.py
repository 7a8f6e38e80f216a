"""The redirect of a counted link (`count_clicks`): `GET /c/TOKEN` counts one click and goes on.

The view is thin over `delivery.links.follow`. It sets no cookie and keeps nothing of the request: the
address it sends the reader to came from the issue, found by the link's id in a signed token, so a
changed token or any other address is refused, never followed. A HEAD request (link checkers, some
mail scanners) goes to the same place without being counted.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, request

from newsletter.delivery import links
from newsletter.web.app import site

blueprint = Blueprint("clicks", __name__)


@blueprint.get(links.REDIRECT_PATH + "<token>")
def follow(token: str) -> Response:
    here = site()
    with here.store.session() as session:
        if request.method == "HEAD":
            url = links.target(session, here.tokens, token)
        else:
            url = links.follow(session, here.tokens, token)
    if url is None:
        abort(404)
    response = redirect(url, code=302)
    # Every click is a new request to count, and the token is no business of the next site.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
