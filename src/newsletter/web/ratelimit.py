"""Rate limits counted in the database, so every server process and thread shares one count.

A counter per key and fixed window: one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` adds a hit and
reads the total atomically on SQLite and PostgreSQL alike, so concurrent requests can neither lose a
hit nor both slip under the limit. Keys are HMACs of the client address or email address, so the table
holds no personal data in the clear. Windows that have ended are deleted when a new one starts.

An email address is counted by the inbox it reaches (`addresses.mailbox`: `jo+1@` and `jo+2@` are
`jo@`), so tagging one mailbox many ways does not get it many emails.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.exc import DBAPIError

from newsletter.audience import addresses
from newsletter.db.database import Database, insert_for
from newsletter.db.models import RateLimit

log = logging.getLogger(__name__)

ADDRESS = "address"  # the kind of key that is an email address: counted per inbox


@dataclass(frozen=True)
class Limit:
    """At most `hits` in each `seconds`-long window."""

    hits: int
    seconds: int

    def minutes(self) -> int:
        return max(1, self.seconds // 60)


@dataclass(frozen=True)
class Limits:
    """Sign-up limits. Per client address generous enough for many colleagues behind one NHS or council
    gateway; per email address tight, so nobody can flood a mailbox with confirmation requests."""

    per_client: Limit = Limit(30, 600)
    per_address: Limit = Limit(3, 3600)


class RateLimiter:
    """Counts hits for keys in the database; `secret` keys the HMAC that hides the keys.

    Each hit is its own short transaction, committed before the request's work starts: a hit counts
    even when the request then fails, and no request holds the counter row while it sends mail.
    """

    def __init__(self, database: Database, secret: str) -> None:
        self._database = database
        self._secret = secret.encode("utf-8")

    def bucket(self, kind: str, value: str) -> str:
        if kind == ADDRESS:
            value = addresses.mailbox(value)
        digest = hmac.new(self._secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}:{digest[:64]}"

    def hit(self, kind: str, value: str, limit: Limit, now: float | None = None) -> bool:
        """Count one hit; True while the key is within its limit for the current window."""
        now = time.time() if now is None else now
        period = int(now // limit.seconds) * limit.seconds  # the window's start, in Unix seconds
        bucket = self.bucket(kind, value)
        with self._database.session() as session:
            insert = insert_for(session)
            statement = (
                insert(RateLimit)
                .values(bucket=bucket, period=period, hits=1)
                .on_conflict_do_update(
                    index_elements=[RateLimit.bucket, RateLimit.period], set_={"hits": RateLimit.hits + 1}
                )
                .returning(RateLimit.hits)
            )
            hits = session.execute(statement).scalar_one()
        if hits == 1:
            self._forget_before(kind, period)
        return hits <= limit.hits

    def _forget_before(self, kind: str, period: int) -> None:
        """A window started: delete this kind's ended windows. Housekeeping only, so a clash with
        another process doing the same (a lock timeout, a deadlock) is left for the next window."""
        try:
            with self._database.session() as session:
                session.execute(
                    delete(RateLimit).where(
                        RateLimit.bucket.startswith(f"{kind}:"), RateLimit.period < period
                    )
                )
        except DBAPIError:
            log.warning("rate limit housekeeping skipped", exc_info=True)
