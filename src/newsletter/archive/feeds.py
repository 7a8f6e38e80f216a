"""The Atom feed of issues and the sitemap: XML built with ElementTree, so it is always well formed.

Feed readers and search engines need absolute addresses, so both use the
`base_url` setting; every date comes from the issues, so building twice gives
the same bytes.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import TYPE_CHECKING

from markupsafe import escape

from newsletter.render import markdown
from newsletter.render.web import WebIssue, absolute_link, issue_path
from newsletter.settings import Settings

if TYPE_CHECKING:
    from newsletter.archive.site import ArchiveSite

ATOM = "http://www.w3.org/2005/Atom"
SITEMAP = "http://www.sitemaps.org/schemas/sitemap/0.9"
FEED_PATH = "archive/feed.xml"


def _timestamp(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _xml(root: ET.Element) -> bytes:
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def atom(settings: Settings, issues: Sequence[WebIssue]) -> bytes:
    """One entry per published issue, newest first: its title, date, summary and contents list."""
    link = absolute_link(settings.base_url)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
        element = ET.SubElement(parent, tag, attributes)
        element.text = text
        return element

    # Plain tag names under a default xmlns: the output is `<feed xmlns="...">`, not `ns0:` prefixes.
    feed = ET.Element("feed", {"xmlns": ATOM, "{http://www.w3.org/XML/1998/namespace}lang": "en-GB"})
    sub(feed, "id", link(FEED_PATH))
    sub(feed, "title", f"{settings.network_name} newsletter")
    sub(feed, "subtitle", f"Every issue of the {settings.network_name} newsletter")
    newest = issues[0].issue.date if issues else dt.date(2000, 1, 1)
    sub(feed, "updated", _timestamp(newest))
    author = sub(feed, "author")
    sub(author, "name", settings.network_name)
    sub(feed, "link", rel="self", type="application/atom+xml", href=link(FEED_PATH))
    sub(feed, "link", rel="alternate", type="text/html", href=link("archive/"))
    for web in issues:
        issue = web.issue
        permalink = link(issue_path(issue.slug))
        entry = sub(feed, "entry")
        sub(entry, "id", permalink)
        sub(entry, "title", issue.title)
        sub(entry, "updated", _timestamp(issue.date))
        sub(entry, "published", _timestamp(issue.date))
        entry_author = sub(entry, "author")
        sub(entry_author, "name", issue.editor)
        sub(entry, "link", rel="alternate", type="text/html", href=permalink)
        sub(entry, "summary", issue.preheader)
        contents = "".join(
            f'<li><a href="{permalink}#{section.anchor}">{escape(section.heading)}</a></li>'
            for section in web.sections
            if section.heading
        )
        sub(entry, "content", f"{markdown.to_html(issue.intro)}<ul>{contents}</ul>", type="html")
    return _xml(feed)


def sitemap(settings: Settings, site: ArchiveSite) -> bytes:
    """Every HTML page of the archive; issue pages carry their date as `lastmod`."""
    link = absolute_link(settings.base_url)
    dates = {f"{issue_path(web.issue.slug)}index.html": web.issue.date for web in site.issues}
    urlset = ET.Element("urlset", {"xmlns": SITEMAP})
    for path, page in site.pages.items():
        if not page.content_type.startswith("text/html"):
            continue
        url = ET.SubElement(urlset, "url")
        ET.SubElement(url, "loc").text = link(path.removesuffix("index.html"))
        if path in dates:
            ET.SubElement(url, "lastmod").text = dates[path].isoformat()
    return _xml(urlset)
