"""`POST /webhooks/<provider>`: email providers' bounce and complaint events, on `newsletter serve`.

The provider's own proof (`bounces/webhooks.py`) is the authority here, not a browser's CSRF token:
these requests come from Amazon, Postmark, Mailgun or SendGrid, never from a form of ours. A provider
not configured is 404, a request failing its check 403 (and nothing is recorded), a body that is not
the provider's JSON 400; what a verified request reports goes to `Intake.record`, the same rules as a
bounce that came back by mail.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, jsonify, request
from flask.typing import ResponseReturnValue

from newsletter.bounces.intake import Intake
from newsletter.bounces.webhooks import BadPayload, BadSignature, Incoming, Provider, providers
from newsletter.settings import Settings
from newsletter.web.app import site

log = logging.getLogger(__name__)

# SendGrid batches events (up to several hundred kilobytes a POST) and Postmark may include the bounce
# itself: the subscriber forms' 64 KiB would refuse them, and the provider would retry for days.
MAX_WEBHOOK_BYTES = 1024 * 1024


def webhooks_blueprint(settings: Settings) -> Blueprint:
    """The webhook routes for the providers `settings` configures (their keys read once, here)."""
    configured = providers(settings)
    blueprint = Blueprint("webhooks", __name__)

    @blueprint.post("/webhooks/<name>")
    def receive(name: str) -> ResponseReturnValue:
        provider = configured.get(name)
        if provider is None:
            abort(404)
        request.max_content_length = MAX_WEBHOOK_BYTES
        return _handle(provider, Incoming.of(request.get_data(cache=False), request.headers))

    def _handle(provider: Provider, incoming: Incoming) -> ResponseReturnValue:
        try:
            payload = provider.verify(incoming)
            findings = provider.findings(payload)
        except BadSignature as refused:
            log.warning("webhook %s refused (403): %s", provider.name, refused)
            abort(403)
        except BadPayload as bad:
            log.warning("webhook %s: bad request (400): %s", provider.name, bad)
            abort(400)
        if findings:
            for action in Intake(site().store, settings).record(findings):
                log.info("webhook %s: %s", provider.name, action)
        return jsonify(findings=len(findings))

    return blueprint
