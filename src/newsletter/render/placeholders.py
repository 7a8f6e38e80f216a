"""The per-recipient fields the theme leaves open for delivery to fill.

Rendering happens once per variant; delivery then substitutes these markers
in prepared bytes for each recipient. They use only characters that survive
MJML, CSS inlining, HTML attributes and quoted-printable unchanged.
"""

VIEW_URL = "%%view_url%%"
PREFERENCES_URL = "%%preferences_url%%"
UNSUBSCRIBE_URL = "%%unsubscribe_url%%"
SUBMIT_URL = "%%submit_url%%"  # the member's own form to share their work with the network

PERSONAL_LINKS = {
    "view": VIEW_URL,
    "preferences": PREFERENCES_URL,
    "unsubscribe": UNSUBSCRIBE_URL,
    "submit": SUBMIT_URL,
}


def is_placeholder(value: str) -> bool:
    """True for a marker such as `%%unsubscribe_url%%`, which the lint must not treat as a link."""
    return value in PERSONAL_LINKS.values()
