"""Each report as the desk shows it: figures, each a table and, where a picture helps, its chart.

The chart is drawn from the table's own values (`charts`), and the table is what the CSV download
writes (`tables`), so a report has one source for all three. The CLI prints the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from newsletter.reports import charts
from newsletter.reports.audience import AudienceReport
from newsletter.reports.campaign import CampaignDetail
from newsletter.reports.compare import CampaignLine
from newsletter.reports.tables import Table, count, percent, seconds, text

TOP_BARS = 12  # bars in a chart of domains, sectors or links: the table beside it has them all


@dataclass(frozen=True)
class Figure:
    """A table and the charts drawn from it (none where a table says it better)."""

    table: Table
    charts: tuple[Markup, ...] = ()

    @property
    def name(self) -> str:
        return self.table.name


def campaign_figures(detail: CampaignDetail) -> list[Figure]:
    """The campaign report: outcomes, over time, per domain, per variant, clicks, the relay's replies."""
    report = detail.report
    outcomes = Table(
        "outcomes",
        "What happened to its messages",
        (text("Outcome"), count("Messages")),
        [
            *sorted(report.counts.items()),
            ("bounced later (among the bounced)", report.bounced_later),
            ("complained (among the sent)", report.complained),
            ("unsubscribed since", detail.unsubscribed),
        ],
        note="Bounced later: reports that came back after the relay accepted the message. Unsubscribed "
        "since: members it reached who left (or complained) after it started, each counted once.",
    )
    over_time = Table(
        "over-time",
        "Messages accepted by the relay, minute by minute (UTC)",
        (text("Minute"), count("Accepted by then")),
        [(f"{minute:%Y-%m-%d %H:%M}", total) for minute, total in detail.over_time],
    )
    domains = Table(
        "domains",
        "By recipient domain",
        (
            text("Domain"),
            count("Messages"),
            count("Sent"),
            count("Deferred"),
            count("Failed"),
            count("Bounced"),
            count("Waiting"),
            seconds("Accepted after (median)"),
        ),
        [
            (
                line.domain,
                line.messages,
                line.sent,
                line.deferred,
                line.failed,
                line.bounced,
                line.waiting,
                line.median_accept_seconds,
            )
            for line in detail.domains
        ],
        note="Deferred: messages the domain put off at least once (a 4xx reply or a dropped connection), "
        "whatever came after. Accepted after: from the campaign's start to the relay's 250, the median "
        "of the domain's messages; the domains that throttle stand out.",
    )
    replies = Table(
        "replies",
        "The relay's most common replies",
        (text("Reply"), count("Messages")),
        list(detail.replies),
        note="Queue ids, addresses and long numbers are taken out so alike replies count together.",
    )
    variants = Table(
        "variants",
        "Who got which content",
        (text("The email"), count("Members")),
        list(detail.variants),
        note="Each distinct email the issue made (tagged sections go only to the members who chose their "
        "topics; the place updates list a member's own region first), as counted when it started.",
        empty="Not kept for campaigns started before this report existed.",
    )
    figures = [
        Figure(outcomes),
        Figure(
            over_time,
            (
                charts.line_chart(
                    "over-time",
                    over_time.title,
                    over_time.column(0),
                    [charts.Series("Accepted", over_time.column(1))],
                    y_label="messages",
                ),
            ),
        ),
        Figure(
            domains,
            (
                charts.bar_chart(
                    "domains",
                    "Messages per recipient domain",
                    [(line.domain, line.messages) for line in detail.domains[:TOP_BARS]],
                    value_label="messages",
                ),
            ),
        ),
        Figure(variants),
        *_click_figures(detail),
        Figure(replies),
    ]
    return figures


def _click_figures(detail: CampaignDetail) -> list[Figure]:
    """Clicks per section and per link, when they were counted."""
    if not detail.clicks_counted:
        return []
    sections = Table(
        "sections",
        "Clicks per section",
        (text("Section"), count("Clicks")),
        detail.sections,
        note="How many times its links were followed: clicks, not people. A mail scanner that opens links "
        "before a person does counts too.",
    )
    links = Table(
        "links",
        "Clicks per link",
        (text("Link"), text("Section"), text("Address"), count("Clicks")),
        [(link.text, link.section, link.url, link.clicks) for link in detail.links],
        note="Each link of the issue once, in the issue's order, where it first appears.",
    )
    top = sorted(detail.links, key=lambda link: -link.clicks)[:TOP_BARS]
    return [
        _bars(sections, "clicks"),
        Figure(
            links,
            (
                charts.bar_chart(
                    "links",
                    "The most followed links",
                    [(link.text, link.clicks) for link in top],
                    value_label="clicks",
                ),
            ),
        ),
    ]


def compare_figures(lines: list[CampaignLine]) -> list[Figure]:
    """The last campaigns side by side, oldest first: their counts and their rates."""
    table = Table(
        "compare",
        "The last campaigns side by side",
        (
            text("Campaign"),
            text("Issue"),
            text("Started"),
            count("Recipients"),
            count("Reached"),
            percent("Reach"),
            percent("Bounced"),
            percent("Complained"),
            percent("Unsubscribed"),
            count("Clicks"),
            percent("Clicks per delivered"),
        ),
        [
            (
                line.id,
                line.issue_slug,
                f"{line.started_at:%Y-%m-%d}",
                line.recipients,
                line.reached,
                line.reach_rate,
                line.bounce_rate,
                line.complaint_rate,
                line.unsubscribe_rate,
                line.clicks,
                line.click_rate,
            )
            for line in lines
        ],
        note="Reach: the share of its recipients a mail server took (or refused by naming a dead address). "
        "Bounced: of those, the dead addresses. Complained, unsubscribed and clicks: per message delivered. "
        "Clicks are counted only for campaigns sent with count_clicks on (– otherwise).",
        empty="No campaign has started yet.",
    )
    labels = [f"{line.id}: {line.issue_slug}" for line in lines]
    rates = charts.column_chart(
        "compare",
        "Bounce, complaint and unsubscribe rates per campaign",
        labels,
        [
            charts.Series("Bounced", [line.bounce_rate or 0.0 for line in lines]),
            charts.Series("Complained", [line.complaint_rate or 0.0 for line in lines]),
            charts.Series("Unsubscribed", [line.unsubscribe_rate or 0.0 for line in lines]),
        ],
        y_label="of the messages",
        percent=True,
    )
    reach = charts.column_chart(
        "reach",
        "Members reached per campaign",
        labels,
        [charts.Series("Reached", [line.reached for line in lines])],
        y_label="members",
    )
    return [Figure(table, (reach, rates))]


def audience_figures(report: AudienceReport) -> list[Figure]:
    """The audience report: members now, month by month, by sector and region, consent sources."""
    status = Table(
        "status",
        "Members now, by status",
        (text("Status"), count("Members")),
        sorted(report.by_status.items(), key=lambda pair: (-pair[1], pair[0])),
    )
    months = Table(
        "months",
        "Month by month",
        (
            text("Month"),
            count("Joined"),
            count("Confirmed"),
            count("Unsubscribed"),
            count("Bounced"),
            count("Complained"),
            count("Members at its end"),
        ),
        [
            (m.month, m.joined, m.confirmed, m.unsubscribed, m.bounced, m.complained, m.members)
            for m in report.months
        ],
        note="Members at its end: those who joined by then (and were not erased since) less those who "
        "unsubscribed or complained by then. Bounced: bounces taken in that count against a member.",
    )
    labels = months.column(0)
    sector = Table(
        "sectors", "Active members by sector", (text("Sector"), count("Members")), report.by_sector
    )
    region = Table(
        "regions", "Active members by region", (text("Region"), count("Members")), report.by_region
    )
    sources = Table(
        "sources",
        "Where consent came from",
        (text("Source"), count("Members")),
        report.sources,
        note="The form or import each member's consent was given through.",
    )
    return [
        Figure(status),
        Figure(
            months,
            (
                charts.line_chart(
                    "members",
                    "Members at each month's end",
                    labels,
                    [charts.Series("Members", months.column(6))],
                    y_label="members",
                ),
                charts.column_chart(
                    "changes",
                    "Joins and departures per month",
                    labels,
                    [
                        charts.Series("Joined", months.column(1)),
                        charts.Series("Unsubscribed", months.column(3)),
                        charts.Series("Bounced", months.column(4)),
                        charts.Series("Complained", months.column(5)),
                    ],
                    y_label="members",
                ),
            ),
        ),
        _bars(sector, "members"),
        _bars(region, "members"),
        _bars(sources, "members"),
    ]


def _bars(table: Table, value_label: str) -> Figure:
    """A two-column table (name, number) with a bar chart of its largest rows."""
    bars = [(str(row[0]), float(row[1])) for row in list(table.rows)[:TOP_BARS]]  # type: ignore[arg-type]
    return Figure(table, (charts.bar_chart(table.name, table.title, bars, value_label=value_label),))
