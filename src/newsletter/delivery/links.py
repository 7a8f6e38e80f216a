"""Counted links (`count_clicks`): how often each link of an issue was followed, and never by whom.

When a campaign starts with `count_clicks` on, each web link of its issue becomes a row of
`campaign_links` (its address, what it says, the section it is in). In the HTML part every member
gets the same redirect for a link, `BASE/c/TOKEN`, where the token is the row's id signed for clicks:
it names a link, not a person, so a click can only be counted, not traced. The plain-text part keeps
the real addresses (a reader who copies one is not counted), and so does the archive, which is
rendered from the issue and not from the campaign.

Following a redirect adds one to the row's count and answers with the row's address: only addresses
the issue held can be reached (never an open redirect), and nothing about the request (no member, no
IP address, no cookie, no time) is written anywhere. Mail scanners that open links before a person
does are counted too: the count is of clicks, not of readers.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Mapping

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from newsletter.content.model import CallToAction, Issue, Section, Story
from newsletter.db.models import Campaign, CampaignLink
from newsletter.render.edition import Renderer
from newsletter.render.lint import named_links
from newsletter.tokens import BadToken, Tokens

REDIRECT_PATH = "/c/"
COUNTED_SCHEMES = ("https://", "http://")
INTRODUCTION = "Introduction"
AROUND = "Header and footer"  # the theme's own links (the network's site, say), not an issue's section
MAX_TEXT = 300
# `href="..."` (or '...') of each link in the rendered HTML: css-inline and MJML write double quotes.
_HREF = re.compile(r"""(<a\b[^>]*?\bhref=)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)


@dataclasses.dataclass(frozen=True)
class FoundLink:
    """A link of an issue, in the order it first appears, with the section it first appears in."""

    url: str
    text: str
    section: str


def section_name(section: Section) -> str:
    """What names a section to an editor: its heading, a story's title, a call to action's button."""
    if isinstance(section, Story):
        return section.title
    if isinstance(section, CallToAction):
        return section.label
    return section.heading


def find_links(issue: Issue, renderer: Renderer) -> list[FoundLink]:
    """Every web link of the issue's email, each once, with where it first appears.

    Each section is rendered alone to tell which links are its own; what is left of the whole email
    is the introduction's and the theme's. Personal links (unsubscribe, preferences) are placeholders
    here and are never counted."""
    theme = set(_links_of(renderer, dataclasses.replace(issue, intro=None, sections=())))
    owners: dict[str, str] = {}
    for section in issue.sections:
        for text, url in _links_of(renderer, dataclasses.replace(issue, intro=None, sections=(section,))):
            if (text, url) not in theme:
                owners.setdefault(url, section_name(section))
    found: dict[str, FoundLink] = {}
    for text, url in _links_of(renderer, issue):
        if url in found or not url.startswith(COUNTED_SCHEMES):
            continue
        section = owners.get(url) or (AROUND if (text, url) in theme else INTRODUCTION)
        found[url] = FoundLink(url, " ".join(text.split())[:MAX_TEXT] or url[:MAX_TEXT], section[:MAX_TEXT])
    return list(found.values())


def _links_of(renderer: Renderer, issue: Issue) -> list[tuple[str, str]]:
    """(name, address) of each link in the issue's email as this theme renders it."""
    return named_links(renderer.render(issue).html)


def record_links(session: Session, campaign: Campaign, issue: Issue, renderer: Renderer) -> int:
    """Make the campaign's counted links, at zero clicks; how many there are."""
    links = find_links(issue, renderer)
    session.add_all(
        CampaignLink(
            campaign_id=campaign.id,
            position=position,
            section=link.section,
            text=link.text,
            url=link.url,
            clicks=0,
        )
        for position, link in enumerate(links, start=1)
    )
    session.flush()
    return len(links)


def redirects(session: Session, campaign_id: int, base_url: str, tokens: Tokens) -> dict[str, str]:
    """Each counted link's address and the redirect that stands for it in the campaign's emails (none
    when the campaign's clicks are not counted)."""
    rows = session.execute(
        select(CampaignLink.id, CampaignLink.url).where(CampaignLink.campaign_id == campaign_id)
    ).all()
    base = base_url.rstrip("/") + REDIRECT_PATH
    return {url: base + tokens.make_click(link_id) for link_id, url in rows}


def rewrite(email_html: str, redirect_for: Mapping[str, str]) -> str:
    """The HTML with each counted link's address replaced by its redirect; every other link as it was."""
    if not redirect_for:
        return email_html

    def swap(match: re.Match[str]) -> str:
        start, quote, written = match.groups()
        target = redirect_for.get(html.unescape(written))
        if target is None:
            return match.group(0)
        return f"{start}{quote}{html.escape(target)}{quote}"

    return _HREF.sub(swap, email_html)


def target(session: Session, tokens: Tokens, token: str) -> str | None:
    """Where a counted link's token goes, without counting it (None as for `follow`)."""
    link_id = _link_id(tokens, token)
    if link_id is None:
        return None
    return session.scalar(select(CampaignLink.url).where(CampaignLink.id == link_id))


def follow(session: Session, tokens: Tokens, token: str) -> str | None:
    """Count one click of the link the token names and give its address; None for a token that is not
    a counted link's (changed, cut short, made for something else, or its campaign deleted)."""
    link_id = _link_id(tokens, token)
    if link_id is None:
        return None
    return session.scalar(
        update(CampaignLink)
        .where(CampaignLink.id == link_id)
        .values(clicks=CampaignLink.clicks + 1)
        .returning(CampaignLink.url)
    )


def _link_id(tokens: Tokens, token: str) -> int | None:
    try:
        return tokens.read_click(token)
    except BadToken:
        return None
