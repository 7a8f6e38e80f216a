"""Issue 18: the archive's contributors. Every member organisation credited in a published issue is
listed at /archive/contributors/, with a page of exactly the items credited to it, newest first, each
linked to its place on its issue's page; spellings differing in case or spacing are one organisation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask import Flask

from archive_support import broken_links, duplicate_ids, settings_for, write
from newsletter.archive.build import build
from newsletter.archive.contributors import SLUG_LENGTH, contributor_path, contributor_slug
from newsletter.archive.site import load_site
from newsletter.errors import UserError
from newsletter.web.archive import archive_blueprint

HEAD = """\
title: {title}
date: {date}
subject: {title}
preheader: What happened in {title}
editor: Test Editor
archive: {archive}
sections:
"""
OLD = (
    HEAD.format(title="June 2022 Newsletter", date="2022-06-10", archive="true")
    + """\
  - kind: story
    title: Homes first
    body: Housing matters in Leeds.
    credit: leeds city council
  - kind: places
    items:
      - place: Gwent
        region: wales
        updates: Gwent began its Marmot journey.
        credit: Gwent Public Services Board
"""
)
NEW = (
    HEAD.format(title="November 2023 Newsletter", date="2023-11-17", archive="true")
    + """\
  - kind: publications
    items:
      - title: Housing in Leeds
        url: https://reports.example.org/leeds
        summary: The city's housing plan.
        date: 2023-11-01
        credit: Leeds City Council
      - title: A report nobody shared
        url: https://reports.example.org/nobody
        summary: Found by the network itself.
        date: 2023-11-01
  - kind: places
    items:
      - place: Leeds
        region: yorkshire-humber
        updates: Leeds opened a family hub.
        credit: "  LEEDS   City  council "
  - kind: events
    items:
      - title: Webinar on housing
        start: 2023-12-05 10:30
        online: yes
        url: https://events.example.org/housing
        credit: "<script>alert(1)</script> Housing Trust"
"""
)
DRAFT = (
    HEAD.format(title="January 2024 Newsletter", date="2024-01-19", archive="false")
    + """\
  - kind: story
    title: Plans not yet public
    body: DRAFTSECRET plans.
    credit: Draft Only Trust
  - kind: collaborations
    items:
      - title: A draft partnership
        body: Not yet.
        credit: Leeds City Council
"""
)
SENT = (
    HEAD.format(title="December 2023 Newsletter", date="2023-12-15", archive="false")
    + """\
  - kind: collaborations
    items:
      - title: Leeds and Bradford together
        body: A partnership across West Yorkshire.
        credit: Leeds City Council
"""
)
LEEDS = "archive/contributors/leeds-city-council/index.html"


@pytest.fixture
def credited_project(project: Path) -> Path:
    """The sample (archived, no credits), two archived issues with credits and a draft with some."""
    write(project, "2022-06", OLD)
    write(project, "2023-11", NEW)
    write(project, "2024-01", DRAFT)
    return project


@pytest.fixture
def site_dir(credited_project, repo_root, tmp_path) -> Path:
    out = tmp_path / "site"
    build(settings_for(credited_project, repo_root), out)
    return out


def read(site: Path, path: str) -> str:
    return (site / path).read_text(encoding="utf-8")


def main_of(page: str) -> str:
    return page[page.index("<main") : page.index("</main>")]


def test_the_contributors_page_lists_each_credited_organisation_once_by_name(site_dir):
    page = main_of(read(site_dir, "archive/contributors/index.html"))
    listed = re.findall(r'<li><a href="([^"]+)">([^<]+)</a> <span class="meta">([^<]+)</span></li>', page)
    assert listed == [
        (
            "script-alert-1-script-housing-trust/",
            "&lt;script&gt;alert(1)&lt;/script&gt; Housing Trust",
            "1 item",
        ),
        ("gwent-public-services-board/", "Gwent Public Services Board", "1 item"),
        # Three spellings, one organisation, named as its newest item has it (not 2022's lower case).
        ("leeds-city-council/", "Leeds City Council", "3 items"),
    ]


def test_an_organisations_page_lists_exactly_its_items_newest_first_with_working_anchors(site_dir):
    page = main_of(read(site_dir, LEEDS))
    issues = re.findall(
        r'<h2 id="i-[^"]+"><a href="([^"]+)">([^<]+)</a> <span class="meta"><time datetime="([^"]+)">', page
    )
    assert issues == [
        ("../../2023-11/", "November 2023 Newsletter", "2023-11-17"),
        ("../../2022-06/", "June 2022 Newsletter", "2022-06-10"),
    ]
    items = [
        (href, title, re.sub(r"<[^>]+>", "", meta))
        for href, title, meta in re.findall(
            r'<h3><a href="([^"]+)">([^<]+)</a></h3>\s*<p class="meta">(.*?)</p>', page
        )
    ]
    assert items == [
        ("../../2023-11/#housing-in-leeds", "Housing in Leeds", "Publication in New publications"),
        ("../../2023-11/#leeds", "Leeds", "Place update in Marmot Places · Yorkshire and the Humber"),
        ("../../2022-06/#homes-first", "Homes first", "Story"),
    ]
    assert "nobody shared" not in page and "Gwent" not in page
    # Each link leads to the item itself on its issue's page.
    for href, title, _ in items:
        issue, anchor = href.removeprefix("../../").split("/#")
        issue_page = read(site_dir, f"archive/{issue}/index.html")
        element = re.search(rf'<(li|h2) id="{anchor}"', issue_page)
        assert element, href
        assert title in issue_page[element.start() : element.start() + 400]


def test_every_link_on_every_page_resolves(site_dir):
    assert broken_links(site_dir) == []
    assert duplicate_ids(site_dir) == []


def test_drafts_credit_nobody(site_dir):
    everything = "\n".join(p.read_text(encoding="utf-8") for p in site_dir.rglob("*.html"))
    assert "Draft Only Trust" not in everything and "A draft partnership" not in everything
    assert not (site_dir / "archive" / "contributors" / "draft-only-trust").exists()


def test_an_issue_a_campaign_sent_counts_as_the_archive_publishes_it(credited_project, repo_root):
    write(credited_project, "2023-12", SENT)
    settings = settings_for(credited_project, repo_root)
    assert "leeds-and-bradford-together" not in load_site(settings, sent={}).render(LEEDS).decode()

    site = load_site(settings, sent={"2023-12": SENT})
    page = site.render(LEEDS).decode()
    assert re.findall(r'<h3><a href="([^"]+)">', page) == [
        "../../2023-12/#leeds-and-bradford-together",
        "../../2023-11/#housing-in-leeds",
        "../../2023-11/#leeds",
        "../../2022-06/#homes-first",
    ]


def test_the_issue_page_credits_each_item_and_links_to_its_organisation(site_dir):
    page = read(site_dir, "archive/2023-11/index.html")
    assert re.findall(r'<p class="meta credit">Shared by <a href="([^"]+)">([^<]+)</a></p>', page) == [
        ("../contributors/leeds-city-council/", "Leeds City Council"),
        ("../contributors/leeds-city-council/", "LEEDS   City  council"),
        (
            "../contributors/script-alert-1-script-housing-trust/",
            "&lt;script&gt;alert(1)&lt;/script&gt; Housing Trust",
        ),
    ]
    assert "<script>" not in page
    nobody = page[page.index("A report nobody shared") : page.index('id="s-marmot-places"')]
    assert "Shared by" not in nobody
    # A place's page shows the update in full, and its credit with it.
    assert "Shared by" in read(site_dir, "archive/places/gwent/index.html")


def test_the_contributors_are_in_the_navigation_the_index_and_the_sitemap(site_dir):
    for path in ("archive/index.html", "archive/2022-06/index.html", LEEDS):
        nav = read(site_dir, path).split('<nav aria-label="Archive">', 1)[1].split("</nav>", 1)[0]
        assert ">Contributors</a>" in nav
    contributors = read(site_dir, "archive/contributors/index.html")
    assert '<a href="./" aria-current="page">Contributors</a>' in contributors
    index = main_of(read(site_dir, "archive/index.html"))
    assert 'href="contributors/"' in index
    sitemap = read(site_dir, "archive/sitemap.xml")
    assert "/archive/contributors/</loc>" in sitemap
    assert "/archive/contributors/leeds-city-council/</loc>" in sitemap


def test_with_no_credits_the_contributors_page_says_so(project, repo_root, tmp_path):
    out = tmp_path / "site"
    build(settings_for(project, repo_root), out)
    page = main_of(read(out, "archive/contributors/index.html"))
    assert "No shared work has been credited to a member organisation yet." in page
    assert [p.name for p in (out / "archive" / "contributors").iterdir()] == ["index.html"]


def test_the_app_serves_the_contributors_pages_as_the_build_writes_them(
    credited_project, repo_root, site_dir
):
    app = Flask(__name__)
    app.register_blueprint(archive_blueprint(settings_for(credited_project, repo_root), recheck_seconds=0))
    client = app.test_client()
    for url in ("/archive/contributors/", "/archive/contributors/leeds-city-council/"):
        response = client.get(url)
        assert response.status_code == 200
        assert response.data == (site_dir / url.lstrip("/") / "index.html").read_bytes()
    assert client.get("/archive/contributors/leeds-city-council").status_code == 308
    assert client.get("/archive/contributors/draft-only-trust/").status_code == 404


def test_an_issue_may_not_take_the_contributors_folder(project, repo_root):
    write(project, "contributors", OLD)
    with pytest.raises(UserError, match="the slug 'contributors' is taken by the archive's own pages"):
        load_site(settings_for(project, repo_root), sent={})


# --- slugs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    ["Leeds City Council", "leeds city council", "  LEEDS   City\tCouncil ", "Leeds City Council."],
)
def test_spellings_differing_in_case_and_spacing_are_one_organisation(spelling):
    assert contributor_slug(spelling) == "leeds-city-council"
    assert contributor_path(spelling) == "archive/contributors/leeds-city-council/"


@pytest.mark.parametrize(
    "name",
    [
        "St Mungo's",
        "Ysgol Gymraeg Caerffîli / Cyngor",
        "../../etc/passwd",
        "<script>alert(1)</script>",
        "%2e%2e?x=1#top",
        "Городской совет",
        "深圳市卫生健康委员会",
        "Leeds Teaching Hospitals NHS Trust and Leeds Community Healthcare NHS Trust together",
        "!!!",
    ],
)
def test_every_slug_is_safe_in_a_path_short_and_stable(name):
    slug = contributor_slug(name)
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug), slug
    assert len(slug) <= SLUG_LENGTH
    assert contributor_slug(name) == slug == contributor_slug(f" {name.upper()} ")


def test_names_that_would_share_a_slug_keep_their_own_pages():
    common = "Leeds Teaching Hospitals NHS Trust and Leeds Community Healthcare NHS Trust"
    long_ones = {contributor_slug(f"{common} {ending}") for ending in ("North", "South")}
    assert len(long_ones) == 2 and all(slug.startswith("leeds-teaching-hospitals") for slug in long_ones)
    other_scripts = {contributor_slug(name) for name in ("Городской совет", "深圳市卫生健康委员会", "!!!")}
    assert len(other_scripts) == 3 and all(slug.startswith("org-") for slug in other_scripts)
    assert contributor_slug("Городской  СОВЕТ") == contributor_slug("Городской совет")


def test_the_search_finds_an_item_by_the_organisation_that_shared_it(site_dir):
    words = json.loads(read(site_dir, "archive/search.json"))["terms"]
    assert "board" in words  # "Gwent Public Services Board" is said only in a credit
