"""The reports at the desk, over the real app and a real database (SQLite and PostgreSQL): a campaign
sent for real through the worker to an SMTP server scripted to defer one address and refuse another,
with its clicks counted; its report page shows the charts (SVG an assistive technology can name) with
the same numbers in tables, and each table downloads as the CSV of those numbers. Editors and admins
read them; a contributor is refused on the server, whatever the pages show."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest

from desk_support import ADMIN, CONTRIBUTOR, add_team, open_desk, sign_in
from report_support import CLICKS, send_reported_campaign
from web_support import WebSite

SVG = re.compile(r'<svg\b[^>]*role="img"[^>]*aria-labelledby="([a-z0-9-]+)-title \1-desc"', re.S)


@pytest.fixture
def site(database_url, tmp_path) -> Iterator[WebSite]:
    yield from open_desk(database_url, tmp_path)


@pytest.fixture
def reported(site, server, tmp_path):
    """One campaign sent with clicks counted (one address deferred once, one refused), an admin signed in."""
    add_team(site)
    sent = send_reported_campaign(site.settings, server, tmp_path / "a<b>.csv")
    sign_in(site, ADMIN)
    return sent


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.text)))


def test_the_campaign_report_shows_each_chart_with_its_table_and_downloads(site, reported):
    campaign_id, clicked = reported
    page = site.client.get(f"/desk/campaigns/{campaign_id}/report")
    assert page.status_code == 200
    charts = SVG.findall(page.text)
    assert {"over-time", "domains"} <= set(charts)
    for chart in charts:  # each chart is named and described for a screen reader
        assert f'id="{chart}-title"' in page.text and f'id="{chart}-desc"' in page.text

    domains = _csv(site.client.get(f"/desk/campaigns/{campaign_id}/report/domains.csv"))
    assert domains[0][:6] == ["Domain", "Messages", "Sent", "Deferred", "Failed", "Bounced"]
    by_domain = {row[0]: row[1:6] for row in domains[1:]}
    assert by_domain == {
        "accepting.example": ["2", "2", "0", "0", "0"],
        "throttling.example": ["1", "1", "1", "0", "0"],
        "gone.example": ["1", "0", "0", "0", "1"],
    }
    # The page's table holds the same numbers as the download.
    for domain, counts in by_domain.items():
        cells = "".join(f'<td class="number">{value}</td>' for value in counts)
        assert f'<th scope="row">{domain}</th>{cells}' in page.text, domain

    outcomes = dict(_csv(site.client.get(f"/desk/campaigns/{campaign_id}/report/outcomes.csv"))[1:])
    assert outcomes["sent"] == "3" and outcomes["bounced"] == "1"
    links = _csv(site.client.get(f"/desk/campaigns/{campaign_id}/report/links.csv"))
    assert [clicked, str(CLICKS)] == [links[1][links[0].index("Address")], links[1][links[0].index("Clicks")]]
    replies = dict(
        (reply, count)
        for reply, count in _csv(site.client.get(f"/desk/campaigns/{campaign_id}/report/replies.csv"))[1:]
    )
    assert replies["550 5.1.1 No such user here"] == "1"
    download = site.client.get(f"/desk/campaigns/{campaign_id}/report/domains.csv")
    assert (
        download.headers["Content-Disposition"]
        == f'attachment; filename="campaign-{campaign_id}-domains.csv"'
    )

    assert site.client.get(f"/desk/campaigns/{campaign_id}/report/nothing.csv").status_code == 404
    assert site.client.get("/desk/campaigns/999/report").status_code == 404


def test_the_audience_report_escapes_what_members_and_files_brought(site, reported):
    page = site.client.get("/desk/reports/audience")
    assert page.status_code == 200
    assert "import:a&lt;b&gt;.csv" in page.text and "a<b>" not in page.text
    assert {"members", "changes", "sectors", "regions", "sources"} <= set(SVG.findall(page.text))
    months = _csv(site.client.get("/desk/reports/audience-months.csv"))
    assert months[0][-1] == "Members at its end" and months[-1][1] == "4"  # all four joined this month
    sources = _csv(site.client.get("/desk/reports/audience-sources.csv"))
    assert sources[1] == ["import:a<b>.csv", "4"]  # the CSV holds the text itself, not HTML


def test_the_reports_page_compares_the_last_campaigns_and_links_each_report(site, reported):
    campaign_id, _ = reported
    page = site.client.get("/desk/reports/")
    assert page.status_code == 200
    assert f'href="/desk/campaigns/{campaign_id}/report"' in page.text
    assert SVG.search(page.text)
    compared = _csv(site.client.get("/desk/reports/campaigns-compare.csv"))
    assert len(compared) == 2 and compared[1][0] == str(campaign_id)


def test_a_contributor_may_not_read_the_reports(site, reported):
    campaign_id, _ = reported
    contributor = site.app.test_client()
    sign_in(site, CONTRIBUTOR, count=2, client=contributor)
    for path in (
        "/desk/reports/",
        "/desk/reports/audience",
        f"/desk/campaigns/{campaign_id}/report",
        f"/desk/campaigns/{campaign_id}/report/domains.csv",
        "/desk/reports/audience-months.csv",
    ):
        assert contributor.get(path).status_code == 403, path
    assert 'href="/desk/reports/"' not in contributor.get("/desk/").text
    nobody = site.app.test_client()
    assert nobody.get("/desk/reports/").status_code == 302
