"""An erased member's links never come to mean the next person (issue 11), on SQLite and PostgreSQL.

A member keeps their preferences and unsubscribe links, erases themselves (on the page or by the CLI)
while they are the newest member, and someone else signs up. The kept links must not show the newcomer's
details, download their data or unsubscribe them: ids are never reused (AUTOINCREMENT on SQLite, a
sequence on PostgreSQL), and every link carries the member's own key, which erasure destroys, so even a
row that does get an old id back (a restore, an explicit insert) is not the member a link was made for.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from newsletter.audience import addresses
from newsletter.audience.consent import Action
from newsletter.db.models import ConsentRecord, Status, Subscriber
from test_audience_support import run_cli, write_csv
from web_support import open_site

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
GONE = "We hold nothing for this link"


@pytest.fixture
def site(database_url):
    yield from open_site(database_url)


def join(site, email: str, name: str) -> dict[str, str]:
    """Sign up and confirm through the pages; the links a member would keep: preferences, unsubscribe,
    my data (each as the pages hand them out)."""
    site.subscribe(email, name=name)
    done = site.submit(site.last_link(email), {})
    assert done.status_code == 200, done.text
    preferences = re.search(r'href="(/preferences/[^"]+)"', done.text).group(1)
    page = site.client.get(preferences)
    assert page.status_code == 200 and email in page.text
    return {
        "preferences": preferences,
        "unsubscribe": re.search(r'href="(/unsubscribe/[^"]+)"', page.text).group(1),
        "data": re.search(r'href="(/data/[^"]+)"', page.text).group(1),
    }


def unsubscribed_records(site, email: str) -> list[ConsentRecord]:
    return [r for r in site.consent(email) if r.action == Action.UNSUBSCRIBED.value]


def check_links_are_dead(
    site, kept: dict[str, str], newcomer: str, name: str, theirs: dict[str, str] | None = None
) -> None:
    """Every kept link answers "we hold nothing", never with the newcomer's details, and changes nothing."""
    for path in (
        kept["preferences"],
        kept["unsubscribe"],
        kept["data"],
        f"{kept['data']}/download",
        f"{kept['data']}/erase",
    ):
        response = site.fresh_client().get(path)
        assert response.status_code == 410, (path, response.status_code)
        assert GONE in response.text, path
        assert newcomer not in response.text and name not in response.text, path
    # RFC 8058 one-click on the old link: "done" for the erased member (nothing is sent to them), and
    # the newcomer is not touched.
    response = site.fresh_client().post(kept["unsubscribe"], data=ONE_CLICK)
    assert response.status_code == 200
    assert newcomer not in response.text
    member = site.member(newcomer)
    assert member.status == Status.ACTIVE
    assert unsubscribed_records(site, newcomer) == []
    for path in (theirs or {}).values():  # the newcomer's own links work
        response = site.fresh_client().get(path)
        assert response.status_code == 200 and newcomer in response.text, path


def test_links_of_a_member_who_erased_themselves_on_the_page_do_not_reach_the_next(site):
    kept = join(site, "jo@example.org", "Jo Leaver")
    erase_page = site.submit(f"{kept['data']}/erase", {})
    assert erase_page.status_code == 200 and "erased" in erase_page.text
    assert site.member("jo@example.org") is None
    theirs = join(site, "sam@example.org", "Sam Newcomer")
    check_links_are_dead(site, kept, "sam@example.org", "Sam Newcomer", theirs)


def test_links_of_a_member_erased_by_the_cli_do_not_reach_the_next(site):
    kept = join(site, "jo@example.org", "Jo Leaver")
    result = run_cli(site.settings, "subscribers", "erase", "jo@example.org", "--yes")
    assert result.exit_code == 0, result.output
    theirs = join(site, "sam@example.org", "Sam Newcomer")
    check_links_are_dead(site, kept, "sam@example.org", "Sam Newcomer", theirs)


def test_ids_are_never_reused(site):
    join(site, "jo@example.org", "Jo Leaver")
    first = site.member("jo@example.org").id
    site.audience.erase("jo@example.org")
    join(site, "sam@example.org", "Sam Newcomer")
    assert site.member("sam@example.org").id > first


def test_a_row_that_gets_an_old_id_back_is_not_the_member_the_links_were_made_for(site):
    """Ids are not reused, but a row can still be written with an old id (a partial restore, a tool
    inserting ids of its own): the links name the member's key too, and the new row's key differs."""
    kept = join(site, "jo@example.org", "Jo Leaver")
    old_id = site.member("jo@example.org").id
    site.audience.erase("jo@example.org")
    with site.store.database.session() as session:
        session.add(
            Subscriber(
                id=old_id,
                email="sam@example.org",
                email_key="sam@example.org",
                email_hash=addresses.address_hash("sam@example.org"),
                name="Sam Newcomer",
                status=Status.ACTIVE,
                attributes={},
            )
        )
    assert site.member("sam@example.org").id == old_id
    check_links_are_dead(site, kept, "sam@example.org", "Sam Newcomer")


def test_every_member_gets_a_key_of_their_own(site, tmp_path):
    """However the row is written: the pages (the ORM) or an import (bulk inserts, COPY on PostgreSQL)."""
    join(site, "jo@example.org", "Jo")
    site.subscribe("sam@example.org")  # pending
    site.audience.import_csv(
        write_csv(tmp_path / "m.csv", "email\na@example.org\nb@example.org\nc@example.org\n")
    )
    with site.store.database.session() as session:
        keys = session.scalars(select(Subscriber.link_key)).all()
    assert len(keys) == 5 and len(set(keys)) == 5
    assert all(re.fullmatch(r"[0-9A-F]{32}", key) for key in keys)
