"""Report benchmark: the campaign report of a 200,000-member campaign and the audience report of a
million members, on SQLite.

It generates N fictional members (bench/members.py) and imports them with the same code as
`newsletter subscribers import` into a fresh SQLite file, then writes a campaign's ledger straight
into the database for the first 200,000 of them, as a finished campaign leaves it: mostly sent over
half an hour, some deferred first, some failed or bounced, with the relay's replies (each with a queue
id of its own, as a relay's are), and the variants and counted links it made. Then it times
`reports.campaign.campaign_detail`, `reports.compare.compare_campaigns` (the last issues side by side,
here the one campaign) and `reports.audience.audience_report` (median of 3 each).

Why the references are measured in the same run: the machine is shared and noisy. Beside each
report stands a plain `SELECT count(*)` over the table it reads most (the campaign's ledger rows;
the members), timed moments before on the same file, and the ratio is what to compare between runs.

Targets (SQLite): the campaign report under 1 s and the audience report under 3 s (the comparison has
no target of its own: it reads the same ledger rows, fewer ways). Prints figures; never fails on a
missed target (a benchmark, not a test).

    .venv/bin/python bench/report.py [--members 1000000] [--campaign 200000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import members  # noqa: E402  (bench/members.py, the deterministic member generator)

CAMPAIGN_TARGET_S = 1.0
AUDIENCE_TARGET_S = 3.0
REPEATS = 3
LINKS = 40  # counted links of the campaign's issue, over 8 sections
LEDGER = """
INSERT INTO deliveries (campaign_id, subscriber_id, status, attempts, next_attempt_at, message_id,
                        last_reply, sent_at, updated_at)
SELECT :campaign, id,
       CASE WHEN id % 97 = 0 THEN 'failed' WHEN id % 89 = 0 THEN 'bounced' ELSE 'sent' END,
       CASE WHEN id % 13 = 0 THEN 2 ELSE 1 END,
       :started, '<nl.' || :campaign || '.bench.' || id || '@example.org>',
       CASE WHEN id % 97 = 0 THEN '550 5.7.1 Message rejected as spam'
            WHEN id % 89 = 0 THEN '550 5.1.1 <' || email || '>: Recipient address rejected'
            ELSE '250 2.0.0 Ok: queued as ' || upper(hex(randomblob(5))) END,
       CASE WHEN id % 97 = 0 THEN NULL
            ELSE datetime(:started, '+' || (id % 1800) || ' seconds') END,
       :started
FROM subscribers ORDER BY id LIMIT :size
"""


def timed(run: Callable[[], object]) -> float:
    """The median of `REPEATS` runs, in seconds."""
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--campaign", type=int, default=200_000, help="members the campaign went to")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "src"))
    from sqlalchemy import func, select, text

    from newsletter.audience.service import Audience
    from newsletter.db.models import Campaign, CampaignLink, CampaignStatus, Delivery, Subscriber, utcnow
    from newsletter.reports.audience import audience_report
    from newsletter.reports.campaign import campaign_detail
    from newsletter.reports.compare import compare_campaigns
    from newsletter.settings import Settings

    with tempfile.TemporaryDirectory(prefix="bench-report-") as folder:
        work = Path(folder)
        csv_path = work / "members.csv"
        members.write_csv(csv_path, args.members)
        settings = Settings(
            database_url=f"sqlite:///{work / 'report.sqlite3'}",
            issues_dir=ROOT / "issues",
            theme_dir=ROOT / "templates",
            vocabulary_dir=ROOT / "subscribers",
        )
        audience = Audience.open(settings)
        audience.upgrade()
        started = time.perf_counter()
        audience.import_csv(csv_path, report_path=work / "report.csv")
        print(f"imported {args.members:,} members in {time.perf_counter() - started:.1f} s", flush=True)
        store = audience.store
        with store.session() as session:
            now = utcnow()
            campaign = Campaign(
                issue_slug="2023-10",
                issue_source="",
                subject="Bench",
                audiences=["everyone"],
                status=CampaignStatus.SENT,
                send_at=now,
                started_at=now,
                finished_at=now,
                recipients=args.campaign,
                variants=[
                    {"description": "HTML, housing and health", "members": args.campaign * 3 // 4},
                    {"description": "plain text, housing and health", "members": args.campaign // 4},
                ],
            )
            session.add(campaign)
            session.flush()
            campaign_id = campaign.id
            session.add_all(
                CampaignLink(
                    campaign_id=campaign_id,
                    position=position,
                    section=f"Section {position % 8}",
                    text=f"Link {position}",
                    url=f"https://example.org/{position}",
                    clicks=position * 37,
                )
                for position in range(1, LINKS + 1)
            )
            session.execute(
                text(LEDGER),
                {"campaign": campaign_id, "started": now.isoformat(sep=" "), "size": args.campaign},
            )
        print(f"wrote the ledger of a campaign to {args.campaign:,} members", flush=True)

        def count_ledger() -> int:
            with store.session() as session:
                query = select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign_id)
                return session.scalar(query) or 0

        def count_members() -> int:
            with store.session() as session:
                return session.scalar(select(func.count()).select_from(Subscriber)) or 0

        def campaign_report() -> object:
            with store.session() as session:
                return campaign_detail(session, campaign_id)

        def comparison() -> object:
            with store.session() as session:
                return compare_campaigns(session)

        def members_report() -> object:
            with store.session() as session:
                return audience_report(session)

        assert count_ledger() == args.campaign
        ledger_s, campaign_s = timed(count_ledger), timed(campaign_report)
        compare_ledger_s, compare_s = timed(count_ledger), timed(comparison)
        members_s, audience_s = timed(count_members), timed(members_report)
        audience.close()

    verdict = {True: "met", False: "NOT met"}
    print(
        f"report benchmark, SQLite: {args.members:,} members, a campaign to {args.campaign:,} (medians of {REPEATS})"
    )
    print(
        f"  campaign report:  {campaign_s:6.2f} s   count(*) of its ledger rows: {ledger_s:6.3f} s   ratio {campaign_s / ledger_s:,.0f}"
    )
    print(
        f"  comparison:       {compare_s:6.2f} s   count(*) of its ledger rows: {compare_ledger_s:6.3f} s   ratio {compare_s / compare_ledger_s:,.0f}"
    )
    print(
        f"  audience report:  {audience_s:6.2f} s   count(*) of the members:     {members_s:6.3f} s   ratio {audience_s / members_s:,.0f}"
    )
    print(
        f"targets: campaign report < {CAMPAIGN_TARGET_S:.0f} s: {verdict[campaign_s < CAMPAIGN_TARGET_S]}; "
        f"audience report < {AUDIENCE_TARGET_S:.0f} s: {verdict[audience_s < AUDIENCE_TARGET_S]}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
