"""The sample issue rendered as subscribers receive it: HTML for mail clients and a plain-text part."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser

import pytest

from newsletter.content import fields
from newsletter.render.markdown import typographer
from newsletter.render.placeholders import PERSONAL_LINKS

PLACEHOLDERS = sorted(PERSONAL_LINKS.values())


class Page(HTMLParser):
    """Every tag with its attributes, and the visible text, of a rendered email."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.chunks: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return re.sub(r"\s+", " ", "".join(self.chunks).replace("\xa0", " "))

    def attrs(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def walk(value):
    """Every dataclass instance inside `value`, depth first."""
    if dataclasses.is_dataclass(value):
        yield value
        for declared in dataclasses.fields(value):
            yield from walk(getattr(value, declared.name))
    elif isinstance(value, tuple):
        for item in value:
            yield from walk(item)


def urls_of(issue) -> list[str]:
    """Every https address written in the issue, found through the model's own field rules."""
    found = []
    for part in walk(issue):
        for declared in dataclasses.fields(part):
            if isinstance(declared.metadata.get("rule"), fields.HttpsUrl):
                found.append(getattr(part, declared.name))
    return found


def headings_of(issue) -> list[str]:
    """What each section shows as its heading: a heading, a story's title, a button's label (typeset:
    curly apostrophes, as in the bodies)."""
    return [
        typographer(getattr(section, "heading", None) or getattr(section, "title", None) or section.label)
        for section in issue.sections
    ]


def item_titles_of(issue) -> list[str]:
    titles = []
    for section in issue.sections:
        for item in getattr(section, "items", ()):
            titles.append(
                typographer(getattr(item, "title", None) or getattr(item, "place", None) or item.label)
            )
    return titles


@pytest.fixture(scope="module")
def page(sample):
    return Page(sample.edition.html)


def test_sample_walkers_find_what_the_sample_holds(sample):
    """Guards the helpers below: the sample has many sections, items and links to look for."""
    assert len(headings_of(sample.issue)) == len(sample.issue.sections) == 11
    assert len(item_titles_of(sample.issue)) == 21
    assert len(set(urls_of(sample.issue))) >= 25


def test_html_is_a_complete_document_in_the_issue_language(sample):
    html = sample.edition.html
    assert html.lower().startswith("<!doctype html>")
    assert '<html lang="en-GB"' in html
    assert '<meta name="color-scheme" content="light dark">' in html


def test_html_keeps_outlook_conditionals_and_media_queries(sample):
    html = sample.edition.html
    assert "<!--[if mso" in html
    assert "@media" in html
    assert "prefers-color-scheme: dark" in html


def test_html_shows_network_name_preheader_and_title(sample, page):
    assert "Health Equity Network" in page.text
    assert sample.issue.preheader in page.text
    assert sample.issue.title in page.text
    assert "20 October 2023" in page.text


@pytest.mark.parametrize("kind", ["heading", "item title"])
def test_html_shows_every_heading_and_item_title(sample, page, kind):
    wanted = headings_of(sample.issue) if kind == "heading" else item_titles_of(sample.issue)
    missing = [title for title in wanted if title not in page.text]
    assert not missing


def test_every_address_in_the_issue_is_a_link_in_the_html(sample, page):
    hrefs = {attrs.get("href") for attrs in page.attrs("a")}
    missing = [url for url in urls_of(sample.issue) if url not in hrefs]
    assert not missing
    contact = next(section for section in sample.issue.sections if section.KIND == "contact")
    assert f"mailto:{contact.email}" in hrefs


def test_personal_links_are_left_as_placeholders_for_delivery(sample, page):
    hrefs = {attrs.get("href") for attrs in page.attrs("a")}
    assert set(PLACEHOLDERS) <= hrefs


def test_html_fits_before_gmail_clips_it(sample):
    assert sample.edition.html_bytes < 102 * 1024
    assert len(sample.edition.html.encode()) == sample.edition.html_bytes


def test_theme_css_is_inlined(page):
    headings = page.attrs("h2")
    assert headings
    assert all("color: #0b3d4f" in (attrs.get("style") or "") for attrs in headings)


def test_sample_passes_the_lint(sample):
    assert sample.problems == []


def test_text_part_writes_out_every_address(sample):
    missing = [url for url in urls_of(sample.issue) if url not in sample.edition.text]
    assert not missing


def test_text_part_has_placeholders_titles_and_headings(sample):
    text = sample.edition.text
    for placeholder in PLACEHOLDERS:
        assert placeholder in text
    missing = [
        title for title in item_titles_of(sample.issue) + headings_of(sample.issue) if title not in text
    ]
    assert not missing


def test_text_part_is_plain_text_with_short_lines(sample):
    text = sample.edition.text
    assert not re.search(r"</?[a-zA-Z][^>]*>", text)
    assert "&amp;" not in text
    assert max(len(line) for line in text.splitlines()) <= 998


def test_summary_line_counts_sections_and_items(sample):
    assert re.fullmatch(
        r"2023-10: ready: 11 sections, 27 items; email \d+\.\d KB HTML, \d+\.\d KB text", sample.summary()
    )


IMAGES = """\
title: Pictures
date: 2023-11-01
subject: Pictures
preheader: Two pictures
editor: E
sections:
  - kind: story
    title: Local picture
    body: Text.
    image:
      src: photo.png
      alt: Members at the conference
      width: 300
  - kind: story
    title: Remote picture
    body: Text.
    image:
      src: https://example.org/b.png
      alt: A street in Luton
"""


def test_story_images_carry_alt_text_and_local_files_get_the_archive_address(
    tmp_path, write_issue, tmp_editor
):
    path = write_issue(tmp_path, IMAGES, slug="2023-11")
    (path.parent / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    checked = tmp_editor.check("2023-11")
    images = Page(checked.edition.html).attrs("img")
    assert [(image["src"], image["alt"]) for image in images] == [
        (
            "https://news.health-equity-network.example.org/archive/2023-11/photo.png",
            "Members at the conference",
        ),
        ("https://example.org/b.png", "A street in Luton"),
    ]
    assert images[0]["width"] == "300"
    assert "[Image: Members at the conference]" in checked.edition.text
    assert checked.problems == []


def test_sample_issue_names_its_seed_by_file_name_not_by_a_path_on_one_machine(sample_issue_path):
    comments = [
        line for line in sample_issue_path.read_text(encoding="utf-8").splitlines() if line.startswith("#")
    ]
    header = " ".join(comments)
    assert "seeds/004_4e506801088d3735.txt" in header
    absolute = re.findall(r"(?<![\w:/.])/[\w.-]+/[\w./-]+", header)
    assert not absolute, f"the sample's header names paths that exist on one machine only: {absolute}"


def test_the_body_is_one_main_landmark_holding_the_preheader_first(sample):
    """Inboxes show the body's first text after the subject; screen readers find the content as 'main'."""
    html = sample.edition.html
    body = html[html.index("<body") : html.index("</body>")]
    assert body.count('role="main"') == 1
    main = body[body.index(">") + 1 :]
    assert main.startswith('<div role="main">') and main.endswith("</div>")
    page = Page(main)
    assert page.text.strip().startswith(sample.issue.preheader)
    style = next(attrs["style"] for _, attrs in page.tags if attrs.get("class") == "nl-preheader")
    # Hidden by display and size only: white or 1px text is what spam filters count as hidden text.
    assert "display:none" in style.replace(" ", "")
    assert "color" not in style and "font-size" not in style
