"""The archive site: which issues and items each page lists and in what order, drafts, sent campaigns,
the Atom feed, the sitemap, the search index, and a link checker over everything built."""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urljoin

import pytest

from archive_support import broken_links, duplicate_ids, issue_yaml, settings_for, write
from newsletter.archive.build import build
from newsletter.archive.collect import collect, sent_campaigns
from newsletter.errors import ProblemsFound
from newsletter.vocabulary import Vocabulary

ATOM = "{http://www.w3.org/2005/Atom}"

OLD = issue_yaml(
    "June 2022 Newsletter",
    "2022-06-10",
    story=("Homes first", "Housing matters in Newport.", "[housing]"),
    places=(("Gwent", "wales", "Gwent began its Marmot journey.", "[marmot-places]"),),
)
NEW = issue_yaml(
    "November 2023 Newsletter",
    "2023-11-17",
    publications=(("Housing in Gwent", "2023-11-01", "[housing]"),),
    places=(
        ("Gwent", "wales", "Gwent opened a community hub.", "[housing]"),
        ("Leeds", "yorkshire-humber", "Leeds published its housing plan.", "[housing]"),
    ),
)
DRAFT = issue_yaml(
    "January 2024 Newsletter",
    "2024-01-19",
    archive=False,
    places=(("Gwent", "wales", "DRAFTSECRET plans for Gwent.", "[housing]"),),
)
SENT_ONLY = issue_yaml(
    "December 2023 Newsletter",
    "2023-12-15",
    archive=False,
    places=(("Gwent", "wales", "Sent in December from Gwent.", "[housing]"),),
)
SKELETON = "title: February 2024 Newsletter\ndate: 2024-02-16\nsubject: ''\nsections:\n  - kind: story\n"


@pytest.fixture
def archive_project(project: Path) -> Path:
    """The sample (2023-10, archived) plus two archived issues, a draft, an issue only a campaign
    could publish, and a half-written draft that does not validate."""
    write(project, "2022-06", OLD)
    write(project, "2023-11", NEW)
    write(project, "2024-01", DRAFT)
    write(project, "2023-12", SENT_ONLY)
    write(project, "2024-02", SKELETON)
    return project


@pytest.fixture
def site_dir(archive_project, repo_root, tmp_path) -> Path:
    out = tmp_path / "site"
    report = build(settings_for(archive_project, repo_root), out)
    assert report.issues == 3 and report.drafts == 3 and report.notes == []
    assert not (archive_project / "no-database-here.sqlite3").exists(), "the build created a database"
    return out


def read(site: Path, path: str) -> str:
    return (site / path).read_text(encoding="utf-8")


def entry_links(html: str) -> list[str]:
    """The item links of a listing page (each entry's h3 link), in page order."""
    return re.findall(r'<h3(?: id="[^"]*")?><a href="([^"]+)">', html)


def every_file_text(site: Path) -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in site.rglob("*") if path.is_file())


# --- index and issue pages -------------------------------------------------------------------------


def test_index_lists_archived_issues_by_year_newest_first(site_dir):
    index = read(site_dir, "archive/index.html")
    assert entry_links(index) == ["2023-11/", "2023-10/", "2022-06/"]
    assert re.findall(r'<h2 id="y(\d{4})">', index) == ["2023", "2022"]
    # 2023's issues sit under the 2023 heading, 2022's under 2022.
    assert (
        index.index('id="y2023"')
        < index.index("2023-10/")
        < index.index('id="y2022"')
        < index.index("2022-06/")
    )


def test_drafts_never_appear_anywhere(site_dir):
    everything = every_file_text(site_dir)
    assert "DRAFTSECRET" not in everything
    assert "January 2024" not in everything and "December 2023" not in everything
    assert not (site_dir / "archive" / "2024-01").exists()
    assert not (site_dir / "archive" / "2023-12").exists()
    assert not (site_dir / "archive" / "2024-02").exists()


def test_issue_page_is_at_the_view_in_browser_permalink_with_its_neighbours(site_dir):
    page = read(site_dir, "archive/2023-11/index.html")
    assert "<h1" in page and "November 2023 Newsletter" in page
    assert 'href="../2023-10/" rel="prev"' in page
    assert 'rel="next"' not in page  # the newest issue
    middle = read(site_dir, "archive/2023-10/index.html")
    assert 'href="../2022-06/" rel="prev"' in middle and 'href="../2023-11/" rel="next"' in middle
    # Every item carries its anchor, and place names link to their place pages.
    assert 'id="gwent"' in page and 'id="leeds"' in page
    assert '<a href="../places/gwent/">Gwent</a>' in page


# --- topic, place, region and publication pages ----------------------------------------------------


def test_topic_page_lists_every_item_with_the_topic_newest_first(site_dir):
    page = read(site_dir, "archive/topics/housing/index.html")
    assert entry_links(page) == [
        "../../2023-11/#housing-in-gwent",
        "../../2023-11/#gwent",
        "../../2023-11/#leeds",
        # The sample: the feature (its section is tagged housing) and Leeds (its item is).
        "../../2023-10/#building-health-equity-the-role-of-developers",
        "../../2023-10/#leeds",
        "../../2022-06/#homes-first",
    ]
    # Grouped under each issue, newest first.
    groups = re.findall(r'<h2 id="i-([^"]+)">', page)
    assert groups == ["2023-11", "2023-10", "2022-06"]
    topics = read(site_dir, "archive/topics/index.html")
    assert 'href="housing/">Housing, homes and places</a>' in topics
    assert "climate/" in topics  # the sample's Hong Kong collaboration
    assert not (site_dir / "archive/topics/network-events").exists()  # no item carries it


def test_place_page_lists_every_update_newest_first_then_mentions(site_dir):
    page = read(site_dir, "archive/places/gwent/index.html")
    updates, _, mentions = page.partition('id="mentions"')
    assert entry_links(updates) == ["../../2023-11/#gwent", "../../2023-10/#gwent", "../../2022-06/#gwent"]
    assert "Gwent opened a community hub." in updates and "Gwent began its Marmot journey." in updates
    assert 'href="../../regions/wales/">Wales</a>' in page
    # Items elsewhere that name Gwent: the new report and the sample's Building a Fairer Gwent.
    assert entry_links(mentions) == [
        "../../2023-11/#housing-in-gwent",
        "../../2023-10/#building-a-fairer-gwent-improving-health-equity-and-the",
    ]
    leeds = read(site_dir, "archive/places/leeds/index.html")
    assert entry_links(leeds.partition('id="mentions"')[0]) == [
        "../../2023-11/#leeds",
        "../../2023-10/#leeds",
    ]


def test_places_index_groups_places_by_region_and_region_pages_list_their_updates(site_dir):
    index = read(site_dir, "archive/places/index.html")
    regions = re.findall(r'<h2 id="r-([^"]+)">', index)
    assert regions.index("yorkshire-humber") < regions.index("wales")  # regions.yaml order
    wales = index[index.index('id="r-wales"') :]
    assert '<a href="gwent/">Gwent</a>' in wales.split("</section>")[0]
    region = read(site_dir, "archive/regions/wales/index.html")
    assert entry_links(region) == ["../../2023-11/#gwent", "../../2023-10/#gwent", "../../2022-06/#gwent"]
    assert "Leeds" not in region


def test_publications_page_lists_every_publication_once_newest_first(site_dir):
    page = read(site_dir, "archive/publications/index.html")
    titles = re.findall(r'<h2 id="p-\d+"><a href="[^"]+">([^<]+)</a>', page)
    assert titles[0] == "Housing in Gwent"
    assert len(titles) == len(set(titles)) == 6  # 1 new + the sample's 5
    dates = re.findall(r'<time datetime="(\d{4}-\d\d-\d\d)">', page)
    assert dates == sorted(dates, reverse=True)
    assert 'Announced in <a href="../2023-11/#housing-in-gwent">November 2023 Newsletter</a>' in page


# --- sent campaigns, databases ----------------------------------------------------------------------


def _add_campaigns(database_url: str, campaigns: list[tuple[str, str, str]]) -> None:
    from newsletter.db.database import Database
    from newsletter.db.models import Campaign, CampaignStatus

    database = Database(database_url)
    database.upgrade()
    with database.session() as session:
        for slug, source, status in campaigns:
            session.add(
                Campaign(
                    issue_slug=slug,
                    issue_source=source,
                    subject=slug,
                    audiences=["everyone"],
                    status=CampaignStatus(status),
                    send_at=dt.datetime(2023, 12, 15, 9, 0),
                )
            )
    database.dispose()


def test_an_issue_with_a_sent_campaign_appears(archive_project, repo_root, tmp_path, database_url):
    gone = issue_yaml(
        "May 2021 Newsletter", "2021-05-14", places=(("Luton", "east-of-england", "Luton, sent.", "[]"),)
    )
    _add_campaigns(
        database_url,
        [
            ("2023-12", SENT_ONLY, "sent"),
            ("2024-01", DRAFT, "scheduled"),  # not sent yet: stays a draft
            ("2021-05", gone.replace("archive: true", "archive: false"), "sent"),  # folder since deleted
        ],
    )
    out = tmp_path / "site"
    report = build(settings_for(archive_project, repo_root, database_url), out)
    assert report.notes == []
    index = read(out, "archive/index.html")
    assert entry_links(index) == ["2023-12/", "2023-11/", "2023-10/", "2022-06/", "2021-05/"]
    assert "DRAFTSECRET" not in every_file_text(out)
    gwent = read(out, "archive/places/gwent/index.html").partition('id="mentions"')[0]
    assert entry_links(gwent)[0] == "../../2023-12/#gwent"
    assert "Luton, sent." in read(out, "archive/2021-05/index.html")


def test_unreachable_database_is_a_warning_not_a_failure(archive_project, repo_root, tmp_path):
    url = "postgresql+psycopg://nobody@127.0.0.1:9/nothing"
    sent, note = sent_campaigns(settings_for(archive_project, repo_root, url))
    assert sent == {} and note and "sent issues not read" in note
    report = build(settings_for(archive_project, repo_root, url), tmp_path / "site")
    assert report.issues == 3 and report.notes == [note]


def test_sqlite_database_without_tables_means_no_campaigns(archive_project, repo_root):
    empty = archive_project / "empty.sqlite3"
    empty.touch()
    assert sent_campaigns(settings_for(archive_project, repo_root, f"sqlite:///{empty}")) == ({}, None)


def test_invalid_issue_to_be_published_stops_with_file_and_line(archive_project, repo_root):
    write(archive_project, "2023-09", OLD.replace("date: 2022-06-10", "date: 2022-13-10"))
    settings = settings_for(archive_project, repo_root)
    with pytest.raises(ProblemsFound) as raised:
        collect(settings, Vocabulary.load(settings.vocabulary_dir), sent={})
    assert str(raised.value).startswith("issues/2023-09/issue.yaml:2: date: ")


def test_invalid_draft_sent_by_a_campaign_is_not_skipped(archive_project, repo_root):
    settings = settings_for(archive_project, repo_root)
    with pytest.raises(ProblemsFound, match=r"issues/2024-02/issue.yaml:\d+"):
        collect(settings, Vocabulary.load(settings.vocabulary_dir), sent={"2024-02": SKELETON})


# --- feed, sitemap, search index --------------------------------------------------------------------


def test_atom_feed_has_one_entry_per_archived_issue_with_the_required_elements(site_dir):
    feed = ET.fromstring((site_dir / "archive/feed.xml").read_bytes())
    assert feed.tag == f"{ATOM}feed"
    base = "https://news.health-equity-network.example.org"
    for tag in ("id", "title", "updated"):
        assert (feed.findtext(f"{ATOM}{tag}") or "").strip(), tag
    assert feed.findtext(f"{ATOM}author/{ATOM}name") == "Health Equity Network"
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{ATOM}link")}
    assert links == {"self": f"{base}/archive/feed.xml", "alternate": f"{base}/archive/"}
    assert feed.findtext(f"{ATOM}updated") == "2023-11-17T00:00:00Z"
    entries = feed.findall(f"{ATOM}entry")
    assert [entry.findtext(f"{ATOM}title") for entry in entries] == [
        "November 2023 Newsletter",
        "October 2023 Newsletter",
        "June 2022 Newsletter",
    ]
    ids = set()
    for entry in entries:
        entry_id = entry.findtext(f"{ATOM}id")
        ids.add(entry_id)
        dt.datetime.fromisoformat(entry.findtext(f"{ATOM}updated").replace("Z", "+00:00"))
        alternate = entry.find(f"{ATOM}link[@rel='alternate']")
        assert alternate is not None and alternate.get("href") == entry_id
        assert re.fullmatch(rf"{base}/archive/\d{{4}}-\d\d/", entry_id)
        assert entry.findtext(f"{ATOM}author/{ATOM}name")
        assert entry.find(f"{ATOM}content").get("type") == "html"
    assert len(ids) == 3


def test_sitemap_lists_every_page_with_absolute_addresses(site_dir):
    sitemap = ET.fromstring((site_dir / "archive/sitemap.xml").read_bytes())
    namespace = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
    locations = [url.findtext(f"{namespace}loc") for url in sitemap.findall(f"{namespace}url")]
    pages = sorted(site_dir.rglob("index.html"))
    assert len(locations) == len(pages)
    base = "https://news.health-equity-network.example.org/"
    assert f"{base}archive/2023-11/" in locations and f"{base}archive/places/gwent/" in locations
    assert all(location.startswith(base) for location in locations)


def test_search_index_finds_each_word_in_the_items_that_hold_it(site_dir):
    data = json.loads((site_dir / "archive/search.json").read_bytes())

    def find(word):
        numbers, total = [], 0
        for gap in data["terms"].get(word, []):
            total += gap
            numbers.append(total)
        return [(data["issues"][data["docs"][n][0]][0], data["docs"][n][1]) for n in numbers]

    assert ("2023-11", "gwent") in find("gwent") and ("2022-06", "gwent") in find("gwent")
    assert find("inactivity") == [("2023-10", "gwent")]  # a word only the sample's Gwent update holds
    assert find("hub") == [("2023-11", "gwent")]
    assert find("draftsecret") == []
    # Accents are folded as search.js folds them; topic names make tagged items findable.
    assert ("2022-06", "homes-first") in find("homes")


def test_every_page_links_to_the_sign_up_page_at_the_site_root(site_dir):
    """The static build is served at the site's root, with the web app's pages beside it (where every
    email's links point): each page's Subscribe link, relative like all the others, leads to
    /subscribe, and still does when the whole site sits under a prefix."""
    pages = sorted(site_dir.rglob("*.html"))
    assert len(pages) > 10
    for page in pages:
        links = re.findall(
            r'<a class="subscribe" href="([^"]+)">Subscribe</a>', page.read_text(encoding="utf-8")
        )
        assert len(links) == 1, page
        address = page.relative_to(site_dir).as_posix()
        assert (
            urljoin(f"https://news.example.org/{address}", links[0]) == "https://news.example.org/subscribe"
        )
        assert urljoin(f"http://host/news/{address}", links[0]) == "http://host/news/subscribe"


def test_link_checker_finds_no_broken_internal_link(site_dir):
    assert broken_links(site_dir) == []


def test_no_page_uses_an_id_twice(site_dir, tmp_path):
    assert duplicate_ids(site_dir) == []
    (tmp_path / "page.html").write_text('<p id="a"></p><p id="a"></p>', encoding="utf-8")
    assert duplicate_ids(tmp_path) == ["page.html: a"]


def test_link_checker_reports_a_broken_link_and_a_missing_anchor(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "index.html").write_text(
        '<a href="../b/">b</a><a href="../a/#here">here</a><a href="#gone">x</a><img src="pic.png">'
        '<a href="https://example.org/">out</a><p id="here"></p>',
        encoding="utf-8",
    )
    assert broken_links(tmp_path) == [
        "a/index.html: ../b/",
        "a/index.html: #gone (no such id)",
        "a/index.html: pic.png",
    ]


def test_building_twice_gives_the_same_bytes(archive_project, repo_root, tmp_path):
    settings = settings_for(archive_project, repo_root)
    build(settings, tmp_path / "one")
    build(settings, tmp_path / "two")
    first = {
        p.relative_to(tmp_path / "one"): p.read_bytes() for p in (tmp_path / "one").rglob("*") if p.is_file()
    }
    second = {
        p.relative_to(tmp_path / "two"): p.read_bytes() for p in (tmp_path / "two").rglob("*") if p.is_file()
    }
    assert first == second


def test_a_place_filed_under_another_region_once_still_has_every_region_page(
    archive_project, repo_root, tmp_path
):
    moved = issue_yaml(
        "March 2021 Newsletter",
        "2021-03-12",
        places=(("Gwent", "scotland", "Filed under the wrong region.", "[]"),),
    )
    write(archive_project, "2021-03", moved)
    out = tmp_path / "site"
    build(settings_for(archive_project, repo_root), out)
    region = read(out, "archive/regions/scotland/index.html")
    assert "../../2021-03/#gwent" in entry_links(region)
    assert broken_links(out) == []
