"""The audience report's monthly figures, checked against a member list built for the test (SQLite and
PostgreSQL): who joined in which month, who confirmed, who left, bounced or complained, and how many
members there were at each month's end; members now by status, sector and region, and where consent
came from. `newsletter report audience` prints them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from newsletter.audience import members
from newsletter.audience.bouncing import Kind
from newsletter.db.models import BounceEvent, ConsentRecord, Subscriber
from newsletter.reports.audience import audience_report
from test_audience_support import import_text

PEOPLE = """\
email,name,sector,region,lists
ann@example.org,Ann,nhs,wales,newsletter
bo@example.org,Bo,nhs,london,newsletter
cy@example.org,Cy,academia,wales,newsletter
di@example.org,Di,,london,newsletter
"""
NOW = dt.datetime(2024, 6, 15, 12, 0)


def test_monthly_figures_match_the_members_built_for_the_test(audience, tmp_path):
    import_text(audience, tmp_path, PEOPLE, source="import:spring list")
    when = {  # when each joined
        "ann@example.org": dt.datetime(2023, 12, 3),  # before the twelve months shown
        "bo@example.org": dt.datetime(2024, 2, 10),
        "cy@example.org": dt.datetime(2024, 2, 20),
        "di@example.org": dt.datetime(2024, 5, 1),
    }
    with audience.store.session() as session:
        for email, joined in when.items():
            session.execute(update(Subscriber).where(Subscriber.email_key == email).values(created_at=joined))
            session.execute(
                update(ConsentRecord)
                .where(ConsentRecord.subscriber_id == members.find(session, email).id)
                .values(created_at=joined)
            )
        members.unsubscribe(session, members.find(session, "bo@example.org"), "unsubscribe link")
        cy = members.find(session, "cy@example.org")
        session.add(
            BounceEvent(
                subscriber_id=cy.id,
                kind=Kind.HARD.value,
                source="dsn",
                received_at=NOW,
                created_at=dt.datetime(2024, 4, 2),
            )
        )
        session.add(
            BounceEvent(
                subscriber_id=cy.id,
                kind=Kind.AUTO_REPLY.value,
                source="rfc3834",
                received_at=NOW,
                created_at=dt.datetime(2024, 4, 3),
            )
        )
    with audience.store.session() as session:
        session.execute(
            update(ConsentRecord)
            .where(ConsentRecord.action == "unsubscribed")
            .values(created_at=dt.datetime(2024, 3, 5))
        )

    with audience.store.session() as session:
        report = audience_report(session, now=NOW)
    months = {month.month: month for month in report.months}
    assert (report.months[0].month, report.months[-1].month) == ("2023-07", "2024-06")
    assert (months["2024-02"].joined, months["2024-05"].joined, months["2023-12"].joined) == (2, 1, 1)
    assert months["2024-03"].unsubscribed == 1
    assert months["2024-04"].bounced == 1  # the auto-reply is not a bounce
    assert [
        months[label].members for label in ("2023-11", "2023-12", "2024-01", "2024-02", "2024-03", "2024-05")
    ] == [
        0,
        1,
        1,
        3,
        2,
        3,
    ]
    assert report.by_status == {"active": 3, "unsubscribed": 1}
    assert dict(report.by_sector) == {"nhs": 1, "academia": 1, "not given": 1}
    assert dict(report.by_region) == {"wales": 2, "london": 1}
    assert report.sources == [("import:spring list", 4)]
