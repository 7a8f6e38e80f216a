"""Counted links (`count_clicks`): a campaign sent for real (SQLite and PostgreSQL, the worker, an SMTP
server on loopback) carries one redirect per link of its issue in the HTML part and the real addresses
in the text part; following a redirect counts one click of that link and nothing else (every table is
compared before and after), and a changed or foreign token goes nowhere."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select

from delivery_support import (
    SAMPLE_SLUG,
    delivery_settings,
    member_row,
    open_sending,
    work_until_finished,
    write_members,
)
from newsletter.db.models import Campaign, CampaignLink
from newsletter.web.app import close_app, create_app
from web_support import forged

REPO_ROOT = Path(__file__).resolve().parents[1]
EVERYONE = ("ann@example.org", "ben@example.org", "cal@example.net")
HREF = re.compile(r'<a\b[^>]*?\bhref="([^"]*)"')
ISSUE_LINK = "https://www.instituteofhealthequity.example.org/resources-reports/building-a-fairer-gwent"


@pytest.fixture
def sent(database_url, server, tmp_path):
    """A campaign of the sample issue sent with clicks counted, and the app serving its redirects."""
    rows = [member_row(email, name=f"Member {n}") for n, email in enumerate(EVERYONE)]
    settings = delivery_settings(
        database_url, server.port, count_clicks=True, base_url="https://news.example.org"
    )
    with open_sending(settings, write_members(tmp_path / "m.csv", rows)) as sending:
        campaign, _ = sending.send(SAMPLE_SLUG, ["newsletter"])
        work_until_finished(sending, campaign.id)
        app = create_app(settings, store=sending.store)
        try:
            yield sending, campaign, app.test_client()
        finally:
            close_app(app)


def _parts(received):
    message = received.message()
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    return html, text


def _counted(sending, campaign_id):
    with sending.store.session() as session:
        return {
            link.url: link
            for link in session.scalars(select(CampaignLink).where(CampaignLink.campaign_id == campaign_id))
        }


def _everything(sending) -> dict[str, list[tuple]]:
    """Every row of every table, to see what a request wrote."""
    engine = sending.store.database.engine
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        return {
            name: sorted(map(tuple, connection.execute(table.select()).all()), key=repr)
            for name, table in metadata.tables.items()
        }


def test_the_html_part_carries_one_redirect_per_link_and_the_text_part_the_real_addresses(sent, server):
    sending, campaign, _client = sent
    links = _counted(sending, campaign.id)
    assert ISSUE_LINK in links
    assert links[ISSUE_LINK].section == "New publications" and links[ISSUE_LINK].clicks == 0
    assert len(server.messages) == len(EVERYONE)
    with sending.store.session() as session:
        kept = session.get(Campaign, campaign.id)
        assert kept is not None and kept.variants == [
            {"description": "HTML and text, everything in the issue", "members": 3}
        ]
    redirects_seen = []
    for received in server.messages:
        html, text = _parts(received)
        hrefs = [unescape(href) for href in HREF.findall(html)]
        redirects = [href for href in hrefs if href.startswith("https://news.example.org/c/")]
        assert redirects, "the links go through the redirect"
        assert not any(href in links for href in hrefs), "no counted address is left in the HTML part"
        # Personal links stay personal: the unsubscribe link is the member's own, not a counted one.
        assert any("/unsubscribe/" in href for href in hrefs)
        assert ISSUE_LINK in text and "/c/" not in text
        redirects_seen.append(sorted(set(redirects)))
    # Every member gets the same redirects: they name a link, never a person.
    assert all(seen == redirects_seen[0] for seen in redirects_seen)
    # These members chose no topics, so their email holds every link of the issue.
    assert len(redirects_seen[0]) == len(links)
    assert {link.section for link in links.values()} >= {"New publications", "Marmot Places"}


def test_a_click_counts_once_for_its_link_and_stores_nothing_about_who(sent, server):
    sending, campaign, client = sent
    html, _ = _parts(server.messages[0])
    links = _counted(sending, campaign.id)
    redirect_to = []
    for href in map(unescape, HREF.findall(html)):
        if "/c/" in href:
            location = client.get(href.removeprefix("https://news.example.org"), headers={"Accept": "*/*"})
            redirect_to.append((href, location.headers["Location"]))
    assert {target for _, target in redirect_to} == set(links), "redirects go to the issue's own addresses"
    gwent = next(href for href, target in redirect_to if target == ISSUE_LINK)
    path = gwent.removeprefix("https://news.example.org")

    before = _everything(sending)
    response = client.get(
        path,
        headers={"User-Agent": "Mozilla/5.0 (a member's phone)", "X-Forwarded-For": "203.0.113.9"},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    after = _everything(sending)
    assert response.status_code == 302 and response.headers["Location"] == ISSUE_LINK
    assert "Set-Cookie" not in response.headers and response.headers["Cache-Control"] == "no-store"
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"campaign_links"}, "a click writes only its link's count"
    (old_row,) = set(before["campaign_links"]) - set(after["campaign_links"])
    (new_row,) = set(after["campaign_links"]) - set(before["campaign_links"])
    columns = [column.name for column in CampaignLink.__table__.columns]
    old_values, new_values = (
        dict(zip(columns, old_row, strict=True)),
        dict(zip(columns, new_row, strict=True)),
    )
    assert new_values == {**old_values, "clicks": old_values["clicks"] + 1}, "nothing but the count changes"
    # This click and one for each time the link appears in the email (each was followed above).
    shown = sum(target == ISSUE_LINK for _, target in redirect_to)
    assert _counted(sending, campaign.id)[ISSUE_LINK].clicks == shown + 1

    # A link checker's HEAD goes to the same place without counting.
    assert client.head(path).headers["Location"] == ISSUE_LINK
    assert _counted(sending, campaign.id)[ISSUE_LINK].clicks == shown + 1


def test_a_changed_or_foreign_token_goes_nowhere_and_counts_nothing(sent, server):
    sending, campaign, client = sent
    html, _ = _parts(server.messages[0])
    path = next(href for href in map(unescape, HREF.findall(html)) if "/c/" in href).removeprefix(
        "https://news.example.org"
    )
    unsubscribe = next(href for href in map(unescape, HREF.findall(html)) if "/unsubscribe/" in href)
    token = unsubscribe.rsplit("/", 1)[1]
    before = _everything(sending)
    for bad in (
        forged(path),
        "/c/" + token,  # a real token of ours, made for something else
        "/c/1",  # a link id with no signature
        "/c/https:%2F%2Fevil.example",
        path + "?url=https://evil.example",  # an address beside a good token is not followed
    ):
        response = client.get(bad)
        location = response.headers.get("Location", "")
        assert "evil.example" not in location, bad
        if bad.startswith(path):
            assert response.status_code == 302 and location == _counted(sending, campaign.id)[location].url
        else:
            assert response.status_code == 404, bad
            assert "Set-Cookie" not in response.headers
    after = _everything(sending)
    assert {name for name in before if before[name] != after[name]} == {"campaign_links"}
    clicks = [column.name for column in CampaignLink.__table__.columns].index("clicks")
    total = {
        when: sum(row[clicks] for row in rows["campaign_links"])
        for when, rows in (("before", before), ("after", after))
    }
    assert total["after"] == total["before"] + 1, "only the good token with an address beside it counted"


def test_without_count_clicks_the_email_keeps_its_real_links(database_url, server, tmp_path):
    rows = [member_row("ann@example.org", name="Ann")]
    settings = delivery_settings(database_url, server.port, base_url="https://news.example.org")
    with open_sending(settings, write_members(tmp_path / "m.csv", rows)) as sending:
        campaign, _ = sending.send(SAMPLE_SLUG, ["newsletter"])
        work_until_finished(sending, campaign.id)
        assert _counted(sending, campaign.id) == {}
    html, _ = _parts(server.messages[0])
    assert ISSUE_LINK in map(unescape, HREF.findall(html))
    assert "/c/" not in html


def test_counted_links_as_a_user_runs_them(tmp_path):
    """`count_clicks = true` in a folder made by `newsletter init`: the sample issue sent through
    `newsletter sink` by the installed command, a link of a delivered email followed through
    `newsletter serve`, and the archive showing the real addresses."""
    import shutil
    import urllib.error
    import urllib.request

    from user_support import Background, free_port, init_project, newsletter, uncomment, wait_for_mail

    folder = init_project(tmp_path, "our-network")
    shutil.copytree(REPO_ROOT / "issues" / SAMPLE_SLUG, folder / "issues" / SAMPLE_SLUG)
    (folder / "people.csv").write_text("email,name,lists\nann@example.org,Ann,newsletter\n", encoding="utf-8")
    newsletter(folder, "subscribers", "import", "people.csv")
    smtp_port, web_port = free_port(), free_port()
    base = f"http://127.0.0.1:{web_port}"
    uncomment(folder / "newsletter.toml", smtp_url=f"smtp://127.0.0.1:{smtp_port}", base_url=base)
    settings_file = folder / "newsletter.toml"
    text = settings_file.read_text(encoding="utf-8")
    assert "# count_clicks = false" in text
    settings_file.write_text(text.replace("# count_clicks = false", "count_clicks = true"), encoding="utf-8")
    sink = Background(folder, "sink", "--port", str(smtp_port), "--maildir", "sink", port=smtp_port)
    try:
        newsletter(folder, "send", SAMPLE_SLUG, "--to", "everyone", "--yes")
        newsletter(folder, "worker", "--once")
        (message,) = wait_for_mail(folder / "sink", 1)
    finally:
        sink.stop()
    html = message.get_body(("html",)).get_content()
    counted = sorted({href for href in map(unescape, HREF.findall(html)) if href.startswith(f"{base}/c/")})
    assert counted and ISSUE_LINK not in html
    assert ISSUE_LINK in message.get_body(("plain",)).get_content()

    class Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None  # see the redirect itself, do not follow it off the machine

    opener = urllib.request.build_opener(Stay)
    serve = Background(folder, "serve", "--port", str(web_port), port=web_port)
    try:
        targets = []
        for href in counted:
            with pytest.raises(urllib.error.HTTPError) as answer:
                opener.open(href, timeout=10)
            assert answer.value.code == 302 and "Set-Cookie" not in answer.value.headers
            targets.append(answer.value.headers["Location"])
        assert ISSUE_LINK in targets
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(forged(counted[0]), timeout=10)
        assert refused.value.code == 404
        with urllib.request.urlopen(f"{base}/archive/{SAMPLE_SLUG}/", timeout=10) as page:
            archived = page.read().decode("utf-8")
        assert ISSUE_LINK in archived and "/c/" not in archived
    finally:
        serve.stop()
