"""The web version of an issue (every section, semantic, nothing personal, sanitised) and the Flask
blueprint that serves the same archive pages as the static build."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from flask import Flask
from markupsafe import escape

from archive_support import issue_yaml, settings_for, write
from newsletter.archive.build import build
from newsletter.content.model import CallToAction, Contact, Links, Story
from newsletter.render.web import WebIssue, WebRenderer, relative_link
from newsletter.web.archive import archive_blueprint

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
            assert escape(item.title) in sample_page
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


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(one: str, two: str) -> float:
    light, dark = sorted((_luminance(one), _luminance(two)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_theme_colours_meet_wcag_aa(repo_root, scheme):
    css = (repo_root / "templates/archive/archive.css").read_text(encoding="utf-8")
    blocks = re.findall(r":root \{([^}]*)\}", css)
    assert len(blocks) == 2, "expected a light :root and a dark :root"
    colours = dict(re.findall(r"--([a-z-]+): (#[0-9a-f]{6});", blocks[0 if scheme == "light" else 1]))
    # Text and links: 4.5:1 on every background they sit on.
    for foreground in ("text", "muted", "link"):
        for background in ("bg", "panel"):
            assert _contrast(colours[foreground], colours[background]) >= 4.5, (foreground, background)
    assert _contrast(colours["on-brand"], colours["brand"]) >= 4.5  # header, buttons, skip link
    # The focus ring and control borders: 3:1 against what is around them (WCAG 1.4.11).
    assert _contrast(colours["focus"], colours["bg"]) >= 3
    assert _contrast(colours["muted"], colours["bg"]) >= 3


def test_theme_loads_nothing_from_elsewhere(repo_root):
    folder = repo_root / "templates/archive"
    for path in folder.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "@import" not in text and "@font-face" not in text, path
            assert not re.search(r"""(src|href)=["']https?://""", text), path
            assert "<script>" not in text and " on" + "click=" not in text, path  # no inline code
