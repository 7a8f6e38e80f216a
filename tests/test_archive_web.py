"""The web version of an issue (every section, semantic, nothing personal, sanitised) and the Flask
blueprint that serves the same archive pages as the static build."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from flask import Flask
from markupsafe import escape

from archive_support import issue_yaml, settings_for, write
from contrast_support import AA_NON_TEXT, AA_TEXT, contrast, luminance, palettes
from newsletter.archive.build import build
from newsletter.content.model import CallToAction, Contact, Links, Story
from newsletter.render.markdown import typographer
from newsletter.render.web import WebIssue, WebRenderer, relative_link
from newsletter.web.archive import archive_blueprint
from web_support import open_site

# --- the web version ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def web_renderer(editor) -> WebRenderer:
    return WebRenderer(editor.settings, editor.vocabulary)


@pytest.fixture(scope="module")
def sample_page(web_renderer, sample) -> str:
    web = WebIssue.from_issue(sample.issue)
    return web_renderer.issue_page(web, relative_link("archive/2023-10/index.html"))


def test_web_version_has_every_section_of_the_sample_in_order(sample, sample_page):
    web = WebIssue.from_issue(sample.issue)
    assert len(web.sections) == len(sample.issue.sections) == 11
    positions = []
    for section in web.sections:
        match = re.search(rf'<(section|aside) class="section[^"]*" id="{section.anchor}"', sample_page)
        assert match, section.anchor
        positions.append(match.start())
        model = section.section
        if isinstance(model, Story):
            assert escape(model.title) in sample_page
        elif isinstance(model, CallToAction):
            assert f'class="button" href="{model.url}">{escape(model.label)}</a>' in sample_page
        else:
            assert f">{escape(model.heading)}</h2>" in sample_page
        if isinstance(model, Links):
            for link in model.items:
                assert f'href="{link.url}"' in sample_page
        elif isinstance(model, Contact):
            assert f'href="mailto:{model.email}"' in sample_page
        for item in section.items:
            assert f'id="{item.anchor}"' in sample_page
            assert escape(typographer(item.title)) in sample_page
    assert positions == sorted(positions)
    assert sample_page.count('class="section') == 11


def test_web_version_is_semantic_and_has_nothing_personal(sample_page):
    assert "%%" not in sample_page
    for placeholder in ("view_url", "unsubscribe", "preferences_url"):
        assert placeholder not in sample_page
    assert "<table" not in sample_page  # the email's layout tables stay in the email
    assert '<html lang="en-GB">' in sample_page
    assert sample_page.count("<h1") == 1
    assert '<a class="skip-link" href="#main">' in sample_page and '<main id="main"' in sample_page
    for landmark in ("<header", "<nav", "<footer", "<article"):
        assert landmark in sample_page
    assert "<script" not in sample_page and "style=" not in sample_page  # nothing a strict CSP blocks
    # Markdown lists stay lists; places and publications are lists of items.
    assert sample_page.count("<ul") >= 8


def test_web_version_sanitises_markdown_like_the_email(tmp_path, repo_root):
    body = "Hello <script>alert(1)</script> [click](javascript:alert(2)) <img src=x onerror=alert(3)>"
    write(tmp_path, "2023-11", issue_yaml("Unsafe", "2023-11-01", story=("Unsafe story", body, "[]")))
    settings = settings_for(tmp_path, repo_root)
    from newsletter.editor import Editor

    editor = Editor(settings)
    _, issue = editor.load("2023-11")
    page = editor.web_renderer.standalone(issue)
    assert "Hello" in page
    assert "<script" not in page and "alert(1)" not in page  # the element and its content are gone
    assert 'href="javascript' not in page and "onerror" not in page
    assert '<img src="x">' in page  # the harmless part of the tag is kept, as in the email


# --- the blueprint ---------------------------------------------------------------------------------


@pytest.fixture
def served(project, repo_root, tmp_path):
    write(
        project,
        "2023-11",
        issue_yaml(
            "November 2023 Newsletter",
            "2023-11-17",
            places=(("Gwent", "wales", "Gwent opened a hub.", "[housing]"),),
        ),
    )
    settings = settings_for(project, repo_root)
    app = Flask(__name__)
    app.register_blueprint(archive_blueprint(settings, recheck_seconds=0))
    out = tmp_path / "static"
    build(settings, out)
    return app.test_client(), out, project


PAGES = [
    ("/archive/", "archive/index.html", "text/html"),
    ("/archive/2023-10/", "archive/2023-10/index.html", "text/html"),
    ("/archive/topics/housing/", "archive/topics/housing/index.html", "text/html"),
    ("/archive/places/gwent/", "archive/places/gwent/index.html", "text/html"),
    ("/archive/regions/wales/", "archive/regions/wales/index.html", "text/html"),
    ("/archive/search/", "archive/search/index.html", "text/html"),
    ("/archive/search.json", "archive/search.json", "application/json"),
    ("/archive/feed.xml", "archive/feed.xml", "application/atom+xml"),
    ("/archive/sitemap.xml", "archive/sitemap.xml", "application/xml"),
    ("/archive/assets/archive.css", "archive/assets/archive.css", "text/css"),
    ("/archive/assets/search.js", "archive/assets/search.js", "text/javascript"),
]


@pytest.mark.parametrize(("url", "file", "content_type"), PAGES, ids=[p[0] for p in PAGES])
def test_blueprint_serves_the_same_bytes_as_the_static_build(served, url, file, content_type):
    client, out, _ = served
    response = client.get(url)
    assert response.status_code == 200
    assert response.content_type.startswith(content_type)
    assert response.data == (out / file).read_bytes()


def test_blueprint_redirects_folders_to_their_slash_and_404s_the_rest(served):
    client, _, _ = served
    response = client.get("/archive/2023-10")
    assert response.status_code == 308 and response.headers["Location"].endswith("/archive/2023-10/")
    assert client.get("/archive/2024-01/").status_code == 404
    assert client.get("/archive/places/nowhere/").status_code == 404
    etag = client.get("/archive/").headers["ETag"]
    assert client.get("/archive/", headers={"If-None-Match": etag}).status_code == 304


def test_blueprint_picks_up_a_new_issue_and_keeps_serving_when_one_breaks(served):
    client, _, project = served
    assert b"December 2023" not in client.get("/archive/").data
    path = write(
        project,
        "2023-12",
        issue_yaml(
            "December 2023 Newsletter", "2023-12-15", places=(("Gwent", "wales", "December news.", "[]"),)
        ),
    )
    assert b"December 2023 Newsletter" in client.get("/archive/").data
    assert b"December news." in client.get("/archive/places/gwent/").data
    # A broken edit: the last good archive is still served, not an error page.
    path.write_text(path.read_text(encoding="utf-8").replace("2023-12-15", "2023-12-45"), encoding="utf-8")
    later = time.time() + 5
    os.utime(path, (later, later))
    response = client.get("/archive/2023-12/")
    assert response.status_code == 200 and b"December news." in response.data


@pytest.mark.parametrize(
    "path", ["/archive/", "/archive/2023-10/", "/archive/places/gwent/", "/archive/search/"]
)
def test_the_apps_archive_pages_lead_to_its_sign_up_form(tmp_path, path):
    """Served by `newsletter serve`'s app, the archive's Subscribe link opens the app's own form."""
    for site in open_site(f"sqlite:///{tmp_path / 'newsletter.sqlite3'}"):
        page = site.client.get(path)
        assert page.status_code == 200
        [link] = re.findall(r'<a class="subscribe" href="([^"]+)">Subscribe</a>', page.text)
        target = urljoin(f"http://news.example.test{path}", link)
        assert target == "http://news.example.test/subscribe"
        form = site.client.get(urlsplit(target).path)
        assert form.status_code == 200 and "Join the" in form.text and 'name="email"' in form.text


def test_blueprint_without_a_valid_archive_answers_503(tmp_path, repo_root):
    write(tmp_path, "2023-11", "title: [unclosed\n")
    settings = settings_for(tmp_path, repo_root)
    app = Flask(__name__)
    app.register_blueprint(archive_blueprint(settings))
    assert app.test_client().get("/archive/").status_code == 503


def test_blueprint_serves_issue_images_under_the_issue_address(project, repo_root, tmp_path):
    folder = project / "issues" / "2023-11"
    write(
        project,
        "2023-11",
        issue_yaml("November 2023 Newsletter", "2023-11-17", story=("Pictured", "Text.", "[]")),
    )
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    text = (folder / "issue.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "    topics: []", "    image:\n      src: photo.png\n      alt: A photo\n    topics: []"
    )
    (folder / "issue.yaml").write_text(text, encoding="utf-8")
    settings = settings_for(project, repo_root)
    build(settings, tmp_path / "static")
    assert (tmp_path / "static/archive/2023-11/photo.png").read_bytes() == b"\x89PNG\r\n\x1a\nfake"
    page = (tmp_path / "static/archive/2023-11/index.html").read_text(encoding="utf-8")
    assert '<img src="photo.png" alt="A photo">' in page
    app = Flask(__name__)
    app.register_blueprint(archive_blueprint(settings))
    response = app.test_client().get("/archive/2023-11/photo.png")
    assert response.status_code == 200 and response.content_type == "image/png"
    assert not Path(tmp_path / "none.sqlite3").exists()


# --- the theme -------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_theme_colours_meet_wcag_aa(repo_root, scheme):
    colours = palettes((repo_root / "templates/archive/archive.css").read_text(encoding="utf-8"))[scheme]
    # Text and links: 4.5:1 on every background they sit on.
    for foreground in ("text", "muted", "link"):
        for background in ("bg", "panel"):
            assert contrast(colours[foreground], colours[background]) >= AA_TEXT, (foreground, background)
    assert contrast(colours["on-brand"], colours["brand"]) >= AA_TEXT  # buttons, skip link
    # The header: its text and links, and its Subscribe button, whose edge must show against the bar.
    assert contrast(colours["header-text"], colours["header-bg"]) >= AA_TEXT
    assert contrast(colours["on-header-cta"], colours["header-cta"]) >= AA_TEXT
    assert contrast(colours["header-cta"], colours["header-bg"]) >= AA_NON_TEXT
    # The focus ring and control borders: 3:1 against what is around them (WCAG 1.4.11).
    assert contrast(colours["focus"], colours["bg"]) >= AA_NON_TEXT
    assert contrast(colours["header-text"], colours["header-bg"]) >= AA_NON_TEXT  # the ring in the header
    assert contrast(colours["muted"], colours["bg"]) >= AA_NON_TEXT


def test_the_dark_header_is_a_dark_bar_with_light_text(repo_root):
    """In dark mode a bright bar across the top of the page glares: the header stays dark like the
    page (close to it in luminance), with text lighter than it."""
    colours = palettes((repo_root / "templates/archive/archive.css").read_text(encoding="utf-8"))["dark"]
    assert contrast(colours["header-bg"], colours["bg"]) < 1.6
    assert luminance(colours["header-text"]) > luminance(colours["header-bg"])
    assert luminance(colours["header-bg"]) < 0.05


def test_theme_loads_nothing_from_elsewhere(repo_root):
    folder = repo_root / "templates/archive"
    for path in folder.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "@import" not in text and "@font-face" not in text, path
            assert not re.search(r"""(src|href)=["']https?://""", text), path
            assert "<script>" not in text and " on" + "click=" not in text, path  # no inline code
