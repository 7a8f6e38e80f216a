"""Rate limits counted in the database: exact under concurrency, per window, shared by processes,
and holding no address in the clear. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from newsletter.audience.service import Audience
from newsletter.db.database import Database
from newsletter.db.models import RateLimit
from newsletter.web.ratelimit import Limit, Limits, RateLimiter
from web_support import SECRET, open_site, web_settings


@pytest.fixture
def database(database_url):
    audience = Audience.open(web_settings(database_url, 25))
    audience.upgrade()
    yield audience.store.database
    audience.close()


def test_hits_are_counted_exactly_when_many_threads_hit_at_once(database, database_url):
    limit = Limit(hits=50, seconds=3600)
    results: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def hammer() -> None:
        limiter = RateLimiter(Database(database_url), SECRET)  # a process of its own, as it were
        start.wait()
        for _ in range(10):
            allowed = limiter.hit("client", "198.51.100.7", limit, now=1_000_000.0)
            with lock:
                results.append(allowed)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 80
    assert results.count(True) == 50  # none lost, none let through twice
    with database.session() as session:
        assert session.scalars(select(RateLimit.hits)).all() == [80]


def test_a_new_window_starts_afresh_and_ended_windows_are_forgotten(database):
    limiter = RateLimiter(database, SECRET)
    limit = Limit(hits=2, seconds=600)
    assert [limiter.hit("address", "jo@example.org", limit, now=6000.0) for _ in range(3)] == [
        True,
        True,
        False,
    ]
    assert limiter.hit("address", "sam@example.org", limit, now=6100.0)
    assert limiter.hit("address", "jo@example.org", limit, now=6600.0)  # the next window
    with database.session() as session:
        rows = session.execute(select(RateLimit.period, RateLimit.hits)).all()
    assert rows == [(6600, 1)]


def test_keys_are_kept_as_keyed_hashes_only(database):
    limiter = RateLimiter(database, SECRET)
    limiter.hit("address", "jo@example.org", Limit(3, 60))
    limiter.hit("client", "203.0.113.9", Limit(3, 60))
    with database.session() as session:
        buckets = session.scalars(select(RateLimit.bucket)).all()
    assert len(buckets) == 2
    assert not any("jo" in bucket or "203.0" in bucket for bucket in buckets)
    assert RateLimiter(database, "another-key").bucket("address", "x") != limiter.bucket("address", "x")


# --- One mailbox, one count (issue 11) -------------------------------------------------------------------


@pytest.fixture
def tight(database_url):
    yield from open_site(database_url, limits=Limits(per_client=Limit(30, 600), per_address=Limit(3, 3600)))


def test_sub_addresses_of_one_mailbox_share_its_limit(tight):
    """victim+1@, victim+2@ ... all reach victim@'s inbox: they count as one address."""
    answers = [tight.subscribe(f"victim+{n}@example.org").status_code for n in range(1, 4)]
    assert answers == [200, 200, 200]
    for address in ("victim+4@example.org", "Victim@example.org", "victim+a+b@example.org"):
        response = tight.subscribe(address)
        assert response.status_code == 429, address
    assert len(tight.mail(3)) == 3
    assert len(tight.smtp.messages) == 3
    assert tight.subscribe("other+1@example.org").status_code == 200  # another mailbox is still welcome


def test_the_limiter_counts_a_mailbox_once_whatever_its_tag(database):
    limiter = RateLimiter(database, SECRET)
    limit = Limit(2, 600)
    assert limiter.bucket("address", "jo+news@example.org") == limiter.bucket("address", "jo@example.org")
    assert limiter.bucket("client", "jo+news@example.org") != limiter.bucket("client", "jo@example.org")
    assert [limiter.hit("address", f"jo+{n}@example.org", limit, now=6000.0) for n in range(3)] == [
        True,
        True,
        False,
    ]
