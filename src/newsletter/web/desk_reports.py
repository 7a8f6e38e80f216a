"""The reports at the desk: `/desk/reports/` (the last campaigns side by side, the audience) and each
campaign's report at `/desk/campaigns/<id>/report`, every table also a CSV download.

Thin over `newsletter.reports`: a view reads the report, `reports.figures` makes its tables and charts,
the template lays them out. Editors and admins may read them (`Action.REPORTS`); they hold counts,
never a member's address.
"""

from __future__ import annotations

from flask import Blueprint, Response
from werkzeug.exceptions import NotFound

from newsletter.errors import UserError
from newsletter.reports.audience import audience_report
from newsletter.reports.campaign import CampaignDetail, campaign_detail
from newsletter.reports.compare import compare_campaigns
from newsletter.reports.figures import Figure, audience_figures, campaign_figures, compare_figures
from newsletter.reports.tables import find
from newsletter.team import Action
from newsletter.web.app import site
from newsletter.web.desk import page, requires

blueprint = Blueprint("desk_reports", __name__, url_prefix="/desk")


@blueprint.get("/reports/")
@requires(Action.REPORTS)
def reports() -> tuple[str, int]:
    with site().store.session() as session:
        compared = compare_campaigns(session)
    return page(
        "desk/reports.html.j2",
        heading="Reports",
        figures=compare_figures(compared),
        campaigns=list(reversed(compared)),
        csv_endpoint="desk_reports.reports_csv",
        csv_args={},
    )


@blueprint.get("/reports/audience")
@requires(Action.REPORTS)
def audience() -> tuple[str, int]:
    return page(
        "desk/report.html.j2",
        heading="The audience",
        figures=_audience(),
        csv_endpoint="desk_reports.audience_csv",
        csv_args={},
    )


@blueprint.get("/campaigns/<int:campaign_id>/report")
@requires(Action.REPORTS)
def campaign(campaign_id: int) -> tuple[str, int]:
    detail, figures = _campaign(campaign_id)
    return page(
        "desk/report.html.j2",
        heading=f"Report on campaign {campaign_id}: {detail.campaign.issue_slug}",
        detail=detail,
        figures=figures,
        csv_endpoint="desk_reports.campaign_csv",
        csv_args={"campaign_id": campaign_id},
    )


@blueprint.get("/reports/campaigns-<name>.csv")
@requires(Action.REPORTS)
def reports_csv(name: str) -> Response:
    with site().store.session() as session:
        figures = compare_figures(compare_campaigns(session))
    return _csv(figures, name, f"campaigns-{name}.csv")


@blueprint.get("/reports/audience-<name>.csv")
@requires(Action.REPORTS)
def audience_csv(name: str) -> Response:
    return _csv(_audience(), name, f"audience-{name}.csv")


@blueprint.get("/campaigns/<int:campaign_id>/report/<name>.csv")
@requires(Action.REPORTS)
def campaign_csv(campaign_id: int, name: str) -> Response:
    _detail, figures = _campaign(campaign_id)
    return _csv(figures, name, f"campaign-{campaign_id}-{name}.csv")


def _audience() -> list[Figure]:
    with site().store.session() as session:
        return audience_figures(audience_report(session))


def _campaign(campaign_id: int) -> tuple[CampaignDetail, list[Figure]]:
    with site().store.session() as session:
        try:
            detail = campaign_detail(session, campaign_id)
        except UserError:
            raise NotFound() from None
        return detail, campaign_figures(detail)


def _csv(figures: list[Figure], name: str, filename: str) -> Response:
    table = find([figure.table for figure in figures], name)
    if table is None:
        raise NotFound()
    return Response(
        table.csv(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
