"""The rendered sample email checked by axe-core, the accessibility engine, in a real headless Chromium.

axe-core comes from the npm registry (the machine's npm), pinned, installed once into a cache folder inside
the virtualenv (`.venv/cache/`), never into the repository.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from browser_support import open_page
from newsletter.editor import write_edition

pytestmark = pytest.mark.browser

AXE_VERSION = "4.14.1"
AXE_DIR = Path(sys.prefix) / "cache" / f"axe-core-{AXE_VERSION}"


def axe_script() -> Path:
    """axe.min.js of the pinned axe-core, installed with npm the first time."""
    script = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install axe-core for this test (Node.js comes with the machine)"
        AXE_DIR.mkdir(parents=True, exist_ok=True)
        options = ["--no-save", "--no-package-lock", "--no-audit", "--no-fund"]
        subprocess.run(
            [npm, "install", "--prefix", str(AXE_DIR), *options, f"axe-core@{AXE_VERSION}"],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return script


@pytest.fixture(scope="module")
def email_page(browser, sample, tmp_path_factory) -> Iterator[Page]:
    """The sample's email.html, as `newsletter render` writes it, open at a desktop width."""
    out = tmp_path_factory.mktemp("render")
    write_edition(sample.edition, out)
    page = open_page(browser, (out / "email.html").as_uri(), 600)
    yield page
    page.close()


@pytest.fixture(scope="module")
def axe_results(email_page) -> dict:
    email_page.add_script_tag(path=str(axe_script()))
    return email_page.evaluate("async () => await axe.run(document)")


def _described(results: list[dict]) -> str:
    return "\n".join(
        f"{rule['id']}: {rule['help']} ({len(rule['nodes'])}): {rule['nodes'][0]['html'][:160]}"
        for rule in results
    )


def test_axe_finds_nothing_wrong_with_the_sample_email(axe_results):
    assert axe_results["testEngine"]["version"] == AXE_VERSION
    assert not axe_results["violations"], _described(axe_results["violations"])


@pytest.mark.parametrize("rule", ["landmark-one-main", "region"])
def test_everything_is_inside_one_main_landmark(axe_results, rule):
    """Screen-reader users can jump to the content, and nothing (the preheader included) lies outside."""
    assert rule in {result["id"] for result in axe_results["passes"]}
    assert rule not in {result["id"] for result in axe_results["violations"] + axe_results["incomplete"]}


def test_the_preheader_is_in_the_body_first_but_not_shown(email_page, sample):
    preheader = sample.issue.preheader
    assert email_page.evaluate("document.body.textContent.trim()").startswith(preheader)
    assert preheader not in email_page.evaluate("document.body.innerText")  # nothing on screen shows it
    assert email_page.evaluate("document.querySelector('.nl-preheader').getBoundingClientRect().height") == 0


def test_each_read_the_report_link_says_which_report(email_page, sample):
    """Screen readers list links by name: five "Read the report" links must not all sound the same."""
    titles = [
        item.title
        for section in sample.issue.sections
        if section.KIND == "publications"
        for item in section.items
    ]
    links = email_page.get_by_role("link", name="Read the report", exact=False)
    names = [f"Read the report: {title}" for title in titles]
    assert links.count() == len(titles) == 5
    for number, name in enumerate(names):
        assert email_page.get_by_role("link", name=name, exact=True).count() == 1, name
        assert links.nth(number).inner_text().startswith("Read the report")
