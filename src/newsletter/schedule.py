"""APScheduler wiring only: one date job per scheduled campaign, in the same database.

The job store is APScheduler's SQLAlchemy store on `database_url`, so a
schedule survives restarts, and a schedule whose time passed while no worker
ran fires as soon as one starts (no misfire grace limit). Jobs carry only the
campaign id and call back into the worker that runs them; all logic lives in
`delivery/`. The worker also starts any due campaign itself on every loop,
so a lost job delays nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

JOB_TABLE = "apscheduler_jobs"
_on_due: dict[str, Callable[[int], None]] = {}


def _job_id(campaign_id: int) -> str:
    return f"campaign-{campaign_id}"


def fire(campaign_id: int) -> None:
    """The job's function: hand the campaign to the worker running this scheduler."""
    for callback in list(_on_due.values()):  # a worker may be starting or stopping meanwhile
        callback(campaign_id)


class _SharedStoreScheduler(BackgroundScheduler):
    """Several workers share one job store: another may have run and removed a job first."""

    def remove_job(self, job_id: str, jobstore: str | None = None) -> None:
        with contextlib.suppress(JobLookupError):
            super().remove_job(job_id, jobstore)


class _StoreOnlyScheduler(_SharedStoreScheduler):
    """Writes jobs to the store and never runs one: the CLI schedules, workers run.

    (APScheduler 3 processes due jobs once more while shutting down, even when paused.)
    """

    def _process_jobs(self) -> None:
        return None


def _scheduler(database_url: str, run_jobs: bool = True) -> BackgroundScheduler:
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    kind = _SharedStoreScheduler if run_jobs else _StoreOnlyScheduler
    return kind(
        jobstores={"default": SQLAlchemyJobStore(url=database_url, tablename=JOB_TABLE)},
        timezone=dt.UTC,
        job_defaults={"misfire_grace_time": None, "coalesce": True},
    )


def schedule_campaign(database_url: str, campaign_id: int, send_at_utc: dt.datetime) -> None:
    """Store the campaign's job (from the CLI, without running a scheduler)."""
    scheduler = _scheduler(database_url, run_jobs=False)
    scheduler.start(paused=True)
    try:
        scheduler.add_job(
            fire,
            "date",
            run_date=send_at_utc.replace(tzinfo=dt.UTC),
            id=_job_id(campaign_id),
            args=[campaign_id],
            replace_existing=True,
        )
    finally:
        scheduler.shutdown(wait=False)


def unschedule_campaign(database_url: str, campaign_id: int) -> None:
    scheduler = _scheduler(database_url, run_jobs=False)
    scheduler.start(paused=True)
    try:
        if scheduler.get_job(_job_id(campaign_id)):
            scheduler.remove_job(_job_id(campaign_id))
    finally:
        scheduler.shutdown(wait=False)


class CampaignScheduler:
    """The scheduler a worker runs while it delivers; `poke()` makes it re-read the job store."""

    def __init__(self, database_url: str, on_due: Callable[[int], None]) -> None:
        self.scheduler = _scheduler(database_url)
        self.key = f"{id(self):x}"
        _on_due[self.key] = on_due

    def start(self) -> None:
        self.scheduler.start()

    def poke(self) -> None:
        """Jobs added by other processes are noticed when the scheduler wakes: wake it."""
        self.scheduler.wakeup()

    def shutdown(self) -> None:
        _on_due.pop(self.key, None)
        self.scheduler.shutdown(wait=True)
