"""`newsletter archive build` and `newsletter render`'s web.html, run as an editor runs them."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from archive_support import issue_yaml, write
from newsletter.cli import cli


def run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_archive_build_writes_the_site_and_says_what_it_did(project):
    result = run("archive", "build", "--out", "public")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Archive built in public/archive: 1 issue, ")
    assert "0 drafts left out" in result.stdout
    for path in ("index.html", "2023-10/index.html", "feed.xml", "sitemap.xml", "search.json"):
        assert (project / "public" / "archive" / path).is_file(), path
    assert not list((project / "public").glob(".archive-*")), "the staging folder was left behind"


def test_archive_build_help(project):
    result = run("archive", "build", "--help")
    assert result.exit_code == 0 and "--out" in result.output
    assert "archive" in run("--help").output


def test_archive_build_without_an_issues_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("archive", "build", "--out", "public")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: issues: no issues folder here")
    assert not (tmp_path / "public" / "archive").exists()


def test_archive_build_requires_out(project):
    result = run("archive", "build")
    assert result.exit_code == 2 and "--out" in result.output


def test_invalid_archived_issue_stops_the_build_and_keeps_the_previous_site(project):
    assert run("archive", "build", "--out", "public").exit_code == 0
    before = (project / "public/archive/index.html").read_bytes()
    text = issue_yaml("November 2023 Newsletter", "2023-11-17", story=("A story", "Text.", "[housng]"))
    write(project, "2023-11", text)
    result = run("archive", "build", "--out", "public")
    assert result.exit_code == 1
    [line] = result.stdout.splitlines()
    assert line.startswith(
        "issues/2023-11/issue.yaml:12: story.topics[1]: unknown topic 'housng' (did you mean 'housing'?)"
    )
    assert "1 problem found." in result.stderr
    assert (project / "public/archive/index.html").read_bytes() == before
    assert not (project / "public/archive/2023-11").exists()
    assert not list((project / "public").glob(".archive-*"))


def test_half_written_draft_does_not_block_the_archive(project):
    assert run("new", "2023-11").exit_code == 0  # the skeleton: not valid until filled in
    result = run("archive", "build", "--out", "public")
    assert result.exit_code == 0, result.output
    assert "1 draft left out" in result.stdout
    assert not (project / "public/archive/2023-11").exists()


def test_out_that_is_a_file(project):
    Path("public").write_text("not a folder", encoding="utf-8")
    result = run("archive", "build", "--out", "public")
    assert result.exit_code in (1, 2)
    assert "public" in result.output and "Traceback" not in result.output


def test_render_also_writes_the_web_version(project):
    result = run("render", "2023-10", "--out", "out")
    assert result.exit_code == 0, result.output
    assert "out/web.html" in result.stdout
    web = (project / "out" / "web.html").read_text(encoding="utf-8")
    assert web.startswith("<!doctype html>") and "<h1" in web and "October 2023 Newsletter" in web
    assert "%%" not in web
    # Opened from disk, it carries its own styles and links to the archive at the public address.
    assert "<style>" in web and 'rel="stylesheet"' not in web
    assert 'href="https://news.health-equity-network.example.org/archive/places/gwent/"' in web
    assert '<a class="subscribe" href="https://news.health-equity-network.example.org/subscribe">' in web
