"""Helpers shared by the desk's tests (no tests of its own): signing in through the pages as a person
does, with the link from the email, over a `web_support.WebSite`."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from newsletter.db.models import Role
from newsletter.team import Team
from web_support import BASE_URL, CSRF_INPUT, REPO_ROOT, WebSite, open_site

DESK_LINK = re.compile(re.escape(BASE_URL) + r"(/desk/sign-in/[A-Za-z0-9._-]+)")
ADMIN = "ann.admin@example.org"
CONTRIBUTOR = "cat.contributor@example.org"


def open_desk(database_url: str, tmp_path: Path) -> Iterator[WebSite]:
    """The app over a copy of the sample issues folder (the desk writes issues); use as a fixture's body."""
    issues = tmp_path / "issues"
    shutil.copytree(REPO_ROOT / "issues", issues)
    yield from open_site(database_url, issues_dir=issues)


def add_team(site: WebSite) -> Team:
    """An admin (Ann Admin) and a contributor, added as `newsletter editors add` does."""
    team = Team(site.store.database, site.settings.secret_key)
    team.add(ADMIN, Role.ADMIN, name="Ann Admin")
    team.add(CONTRIBUTOR, Role.CONTRIBUTOR)
    return team


def emailed_link(site: Any, to: str, count: int) -> str:
    [message] = [m for m in site.mail(count) if m["To"].addresses[0].addr_spec == to][-1:]
    text = message.get_body(("plain",)).get_content()
    [path] = set(DESK_LINK.findall(text))
    assert path in message.get_body(("html",)).get_content()
    return path


def sign_in(site: Any, email: str, count: int = 1, client: Any = None) -> None:
    """Ask for a link, open it, press the button: as a person does."""
    client = client or site.client
    page = client.get("/desk/sign-in")
    token = CSRF_INPUT.search(page.text).group(1)
    asked = client.post("/desk/sign-in", data={"csrf_token": token, "email": email})
    assert asked.status_code == 200 and "Check your email" in asked.text
    link = emailed_link(site, email, count)
    opened = client.get(link)
    assert opened.status_code == 200 and "the editor's desk as <strong>" in opened.text
    token = CSRF_INPUT.search(opened.text).group(1)
    done = client.post(link, data={"csrf_token": token})
    assert done.status_code == 302 and done.headers["Location"].endswith("/desk/")


def csrf_of(client: Any, path: str) -> str:
    return CSRF_INPUT.search(client.get(path).text).group(1)
