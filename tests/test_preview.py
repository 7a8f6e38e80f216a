"""The live preview server over real HTTP: the page, the email, and reloading when the issue is saved."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.request

import pytest

from newsletter.editor import Editor
from newsletter.errors import UserError
from newsletter.preview import make_server, preview_url
from newsletter.settings import Settings


@pytest.fixture
def issue_file(tmp_path, repo_root):
    target = tmp_path / "issues" / "2023-10" / "issue.yaml"
    shutil.copytree(repo_root / "issues" / "2023-10", target.parent)
    return target


@pytest.fixture
def server(tmp_path, repo_root, issue_file):
    settings = Settings(
        issues_dir=tmp_path / "issues",
        theme_dir=repo_root / "templates",
        vocabulary_dir=repo_root / "subscribers",
    )
    server = make_server(Editor(settings), "2023-10", "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def get(server, path):
    with urllib.request.urlopen(preview_url(server) + path.lstrip("/"), timeout=10) as response:
        return response.status, response.headers.get("Content-Type"), response.read().decode("utf-8")


def state(server):
    return json.loads(get(server, "/state")[2])


def save(path, text, bump):
    """Write the file and move its mtime forward, so the change is seen even on coarse clocks."""
    path.write_text(text, encoding="utf-8")
    later = time.time() + bump
    os.utime(path, (later, later))


def test_page_shows_the_email_at_phone_and_desktop_width(server):
    status, content_type, page = get(server, "/")
    assert status == 200
    assert content_type.startswith("text/html")
    assert '<iframe id="phone"' in page
    assert 'width="375"' in page
    assert '<iframe id="desktop"' in page
    assert 'width="600"' in page
    assert page.count('src="/email.html"') == 2
    assert get(server, "/preview.js")[0] == 200
    assert get(server, "/preview.css")[1].startswith("text/css")


def test_email_and_text_are_the_rendered_issue(server):
    _, content_type, html = get(server, "/email.html")
    assert content_type.startswith("text/html")
    assert html.lower().startswith("<!doctype html>")
    assert "October 2023 Newsletter" in html
    _, content_type, text = get(server, "/email.txt")
    assert content_type.startswith("text/plain")
    assert "Unsubscribe: %%unsubscribe_url%%" in text


def test_state_of_a_clean_issue(server):
    now = state(server)
    assert now["stamp"]
    assert now["problems"] == []
    assert now["summary"].startswith("2023-10: ready:")


def test_unknown_path_is_not_found(server):
    with pytest.raises(urllib.error.HTTPError) as caught:
        get(server, "/secrets")
    assert caught.value.code == 404


def test_saving_the_issue_rerenders_and_a_mistake_keeps_the_last_good_render(server, issue_file):
    first = state(server)["stamp"]
    text = issue_file.read_text(encoding="utf-8").replace(
        "title: October 2023 Newsletter", "title: Autumn 2023 Newsletter", 1
    )
    save(issue_file, text, bump=5)
    after_save = state(server)
    assert after_save["stamp"] != first
    assert after_save["problems"] == []
    assert "Autumn 2023 Newsletter" in get(server, "/email.html")[2]

    broken = text.replace("date: 2023-10-20", "date: 20/10/2023", 1)
    line = broken.splitlines().index("date: 20/10/2023") + 1
    save(issue_file, broken, bump=10)
    after_break = state(server)
    assert after_break["stamp"] != after_save["stamp"]
    assert after_break["problems"] == [
        f"{issue_file}:{line}: date: must be a date written as YYYY-MM-DD, not '20/10/2023'"
    ]
    assert "last good render" in after_break["summary"]
    html = get(server, "/email.html")[2]
    assert "Autumn 2023 Newsletter" in html

    save(issue_file, text.replace("Autumn", "Winter", 1), bump=15)
    assert state(server)["problems"] == []
    assert "Winter 2023 Newsletter" in get(server, "/email.html")[2]


def test_unchanged_files_are_not_rendered_again(server):
    first = state(server)
    second = state(server)
    assert second["stamp"] == first["stamp"]
    assert second["rendered_at"] == first["rendered_at"]


def test_port_in_use_is_a_clear_error(server, tmp_path, repo_root):
    port = server.server_address[1]
    settings = Settings(
        issues_dir=tmp_path / "issues",
        theme_dir=repo_root / "templates",
        vocabulary_dir=repo_root / "subscribers",
    )
    with pytest.raises(UserError, match=rf"cannot listen on 127\.0\.0\.1:{port}: .*try another --port"):
        make_server(Editor(settings), "2023-10", "127.0.0.1", port)
