"""The worker: start campaigns whose time has come, lease due ledger rows, send, record.

One loop per process. Messages go out on `concurrency` SMTP connections that
the loop drives itself, without sending threads (`delivery/connections.py`):
after handing each message over it moves every connection on as far as it can
without waiting. Replies go, a handful at a time (as soon as `concurrency`
wait or the oldest has waited `RECORD_SECONDS`), to a writer thread that
records them in one short transaction, with any other handfuls that piled up
meanwhile; the next batch is leased on a thread of its own while this one goes
out. So the loop goes on building and sending while a transaction waits for
SQLite's lock or PostgreSQL's round trips: the connections never wait for the
ledger. A crash loses nothing and repeats at most the messages on a connection
and those whose replies were not yet written (a few handfuls), while the
ledger's write cost is shared by several messages. Before each message the
loop checks (at most every half second) whether its campaign was paused or
cancelled, and gives back what it has not sent. A stop request (SIGTERM)
finishes the messages in flight, writes every reply, gives back the batch
leased ahead, and exits cleanly.

When the relay itself cannot be reached (refused, TLS, 421, a connection lost
before the transaction began: `Reply.relay`), the loop stops handing out
messages, gives every row back without counting the attempt, and waits 1, 2,
4... seconds (at most a minute) between probes of the relay, saying so each
time, until it answers. `once` does the same for at most `once_wait_seconds`
in all, and also waits, within that time, for rows other workers hold leases
on (a worker that died holds them until the lease runs out); then it stops
with `WorkerStats.unfinished` saying what is left.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import queue
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.audience.bouncing import Rules
from newsletter.audience.store import Store
from newsletter.db.models import Campaign, CampaignStatus, utcnow
from newsletter.delivery import campaigns, ledger, links, lookahead
from newsletter.delivery.campaigns import campaign_issue
from newsletter.delivery.connections import Connections
from newsletter.delivery.message import PreparedMessage, Recipient
from newsletter.delivery.outbound import Outbound
from newsletter.delivery.transport import Outcome, Reply, SmtpTransport
from newsletter.delivery.variants import Personaliser, VariantKey
from newsletter.render.edition import Renderer
from newsletter.schedule import CampaignScheduler
from newsletter.settings import Settings
from newsletter.vocabulary import Vocabulary

log = logging.getLogger(__name__)

STATUS_CHECK_SECONDS = 0.5
LOOK_SECONDS = 1.0  # while sending: how often due campaigns, and finished ones, are looked for
OUTAGE_PAUSE_SECONDS = 1.0  # the first wait for a relay that cannot be reached; it doubles each time
OUTAGE_PAUSE_CAP = 60.0  # ... up to this: a relay that is back is found within a minute
ONCE_WAIT_SECONDS = 600.0  # with `once`: the most it waits in all, for the relay or others' leases
LEASE_POLL_SECONDS = 0.05  # with `once`: how often it looks whether others' leased rows are done
# Messages built ahead of the senders, as a multiple of `concurrency`: the loop sometimes stops to
# render a variant or lease the next batch (tens of milliseconds on a busy PostgreSQL), and the
# connections should not go idle meanwhile. Built but unsent messages are only bytes in memory (a few
# MB): a crash sends none of them twice, and a pause or stop gives them back unsent.
AHEAD = 16
RECORD_SECONDS = 0.05  # the longest a reply waits to be recorded
MAX_PREPARED = 1024


@dataclass
class WorkerStats:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    bounced: int = 0
    skipped: int = 0
    variants_rendered: int = 0  # editions rendered (a variant rendered again after eviction counts again)
    started_campaigns: list[int] = field(default_factory=list)
    relay_unavailable: int = (
        0  # messages given back unsent, no attempt counted: the relay could not be reached
    )
    unfinished: str = ""  # with `once`: why it stopped with messages still to send (the CLI exits 1)

    def add(self, status: str) -> None:
        setattr(self, status, getattr(self, status, 0) + 1)


class _CampaignMessages:
    """One campaign's issue, personalised and rendered once per variant, prepared for substitution.

    At most `MAX_PREPARED` variants are kept (least recently used goes first), so memory depends
    on how many different emails an issue makes, never on how many members it goes to.
    """

    def __init__(
        self,
        campaign: Campaign,
        settings: Settings,
        renderer: Renderer,
        vocabulary: Vocabulary,
        redirect_for: dict[str, str],
    ) -> None:
        self.personaliser = Personaliser(campaign_issue(campaign, settings, vocabulary))
        self.redirect_for = redirect_for  # counted links' redirects (`count_clicks` when it started)
        self.renderer = renderer
        self.settings = settings
        self.prepared: OrderedDict[VariantKey, PreparedMessage] = OrderedDict()
        self.rendered = 0

    def for_recipient(self, claimed: ledger.Claimed) -> PreparedMessage:
        key = self.personaliser.key(claimed.topics, claimed.region, claimed.text_only)
        prepared = self.prepared.get(key)
        if prepared is None:
            edition = self.renderer.render(self.personaliser.issue_for(key), with_html=not key.text_only)
            if self.redirect_for and edition.html:
                edition = dataclasses.replace(edition, html=links.rewrite(edition.html, self.redirect_for))
            prepared = PreparedMessage.build(edition, self.settings, text_only=key.text_only)
            self.rendered += 1
            self.prepared[key] = prepared
            if len(self.prepared) > MAX_PREPARED:
                self.prepared.popitem(last=False)
        else:
            self.prepared.move_to_end(key)
        return prepared


class _Replies:
    """Replies waiting to be recorded: written together once there are as many as connections, or the
    oldest is `RECORD_SECONDS` old, so one transaction carries several messages without holding any long."""

    def __init__(self, record: Callable[[list[tuple[ledger.Claimed, Reply | None]]], None]) -> None:
        self.record = record
        self.waiting: list[tuple[ledger.Claimed, Reply | None]] = []
        self.oldest = 0.0

    def add(self, row: ledger.Claimed, reply: Reply | None) -> None:
        if not self.waiting:
            self.oldest = time.monotonic()
        self.waiting.append((row, reply))

    def wait_for(self, senders: Connections[ledger.Claimed]) -> None:
        """Take at least one reply from the senders (recording on time meanwhile), then all that came."""
        while True:
            timeout = None if not self.waiting else max(0.0, self.oldest + RECORD_SECONDS - time.monotonic())
            got = senders.reply(timeout)
            if got is not None:
                break
            self.flush()
        self.add(*got)
        self.take_ready(senders)

    def take_ready(self, senders: Connections[ledger.Claimed]) -> None:
        """The replies that came meanwhile, without waiting (the connections move on meanwhile), then
        recorded if it is time."""
        while (got := senders.reply(0)) is not None:
            self.add(*got)
        if self.waiting and (
            len(self.waiting) >= senders.count or time.monotonic() - self.oldest >= RECORD_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        if self.waiting:
            waiting, self.waiting = self.waiting, []
            self.record(waiting)


@dataclass(frozen=True)
class _Results:
    """A handful of replies, sorted for the ledger: accepted, the others, and the relay's own trouble."""

    sent: list[tuple[ledger.Claimed, Reply]]
    others: list[tuple[ledger.Claimed, Reply | None]]
    unreached: list[tuple[ledger.Claimed, Reply]]


class _Writer:
    """The ledger writes for replies, on a thread of their own.

    A transaction waits: for SQLite's lock while another worker writes, for PostgreSQL's round trips.
    Made by the loop itself, that wait left the connections with nothing to send. Here the loop goes
    on building and handing out messages meanwhile, and whatever piled up in the meantime is written
    in one transaction. What the writes raise is raised again in the loop (at its next handful, or
    when it waits for the writes: before it looks whether a campaign is finished, and at the end).
    """

    def __init__(self, write: Callable[[list[_Results]], None], on_close: Callable[[], None]) -> None:
        self.write = write
        self.on_close = on_close
        self.jobs: queue.SimpleQueue[_Results | None] = queue.SimpleQueue()
        self.pending = 0
        self.done = threading.Condition()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self.thread.start()

    def put(self, results: _Results) -> None:
        self._raise()
        with self.done:
            self.pending += 1
        self.jobs.put(results)

    def wait(self) -> None:
        """Return once everything handed over is written."""
        with self.done:
            while self.pending:
                self.done.wait()
        self._raise()

    def close(self, raise_error: bool = True) -> None:
        """Write what is left and stop the thread (its error raised unless the loop is raising its own)."""
        self.jobs.put(None)
        self.thread.join()
        if raise_error:
            self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def _run(self) -> None:
        closing = False
        try:
            while not closing:
                batches: list[_Results] = []
                job = self.jobs.get()
                while job is not None:
                    batches.append(job)
                    try:
                        job = self.jobs.get_nowait()
                    except queue.Empty:
                        break
                closing = job is None
                if batches and self.error is None:
                    try:
                        self.write(batches)
                    except BaseException as error:  # raised again in the loop; these rows stay leased
                        self.error = error
                with self.done:
                    self.pending -= len(batches)
                    self.done.notify_all()
        finally:
            self.on_close()


class _Claimer:
    """The next batch leased on a thread of its own while the loop sends this one.

    Leasing a batch is a few statements; on a busy PostgreSQL they took tens of milliseconds, during
    which the loop, and so the connections, stood still. Rows leased ahead are renewed with the rest
    (`Worker._renew_if_due`), and given back unsent when the loop stops or waits for the relay.
    """

    def __init__(self, claim: Callable[[], list[ledger.Claimed]]) -> None:
        self.claim = claim
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-claim")
        self.ahead: Future[list[ledger.Claimed]] | None = None

    def request(self) -> None:
        """Start leasing the next batch, unless that is under way."""
        if self.ahead is None:
            self.ahead = self.executor.submit(self.claim)

    def take(self) -> list[ledger.Claimed]:
        """The batch leased ahead (raising what leasing raised), or one leased now if none was asked for."""
        if self.ahead is None:
            return self.claim()
        ahead, self.ahead = self.ahead, None
        return ahead.result()

    def held(self) -> list[ledger.Claimed]:
        """The rows leased ahead so far, not yet taken."""
        ahead = self.ahead
        if ahead is None or not ahead.done() or ahead.exception() is not None:
            return []
        return ahead.result()

    def give_back(self) -> list[ledger.Claimed]:
        """The rows leased ahead, never to be taken: for the caller to give back to the ledger."""
        return self.take() if self.ahead is not None else []

    def close(self) -> None:
        if self.ahead is not None:  # stopping on an error: its rows wait for their lease to run out
            self.ahead.cancel()
        self.executor.shutdown(wait=True)


class Worker:
    """Delivers due campaigns from the ledger until stopped, or until nothing is due (`once`)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        renderer: Renderer,
        *,
        worker_id: str | None = None,
        lease_seconds: float = 120.0,
        retry_base_seconds: float = 60.0,
        poll_seconds: float = 0.5,
        batch_size: int | None = None,
        transport: SmtpTransport | None = None,
        outage_pause_seconds: float = OUTAGE_PAUSE_SECONDS,
        once_wait_seconds: float = ONCE_WAIT_SECONDS,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.renderer = renderer
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.lease_seconds = lease_seconds
        self.retry_base_seconds = retry_base_seconds
        self.bounce_rules = Rules.from_settings(settings)
        self.poll_seconds = poll_seconds
        self.concurrency = max(1, settings.concurrency)
        # Rows leased at a time: a claim costs a few statements whatever its size, so a bigger batch
        # spends less a message on it; rows left unsent (pause, stop) are given back at once.
        self.batch_size = batch_size or self.concurrency * 64
        self.outbound = Outbound(settings, transport)
        self.domain = self.outbound.domain
        self.messages: dict[int, _CampaignMessages] = {}
        self.status_seen: dict[int, tuple[float, CampaignStatus]] = {}
        self.stats = WorkerStats()
        self.sent_recorder: ledger.SentRecorder | None = None  # the writer thread's
        self.writer: _Writer  # made by `run`, for as long as it runs
        self.claimer: _Claimer  # likewise
        self.renew_at = 0.0  # when the rows in hand are next leased again
        self.campaigns_seen: set[int] = set()  # sent for since finished campaigns were last looked for
        self.outage_pause_seconds = outage_pause_seconds
        self.once_wait_seconds = once_wait_seconds
        self.notice = notice or log.warning  # what it says while waiting: the CLI prints it
        self.outage: Reply | None = None  # the relay's trouble, until a probe finds it answering
        self.outage_began: float | None = None  # since when no recipient has been heard of
        self.pause = 0.0  # the last wait for the relay (0: the next one is the first)
        self.waited = 0.0  # seconds waited in all (for `once_wait_seconds`)
        self.leases_noticed = False

    def run(
        self,
        once: bool = False,
        stop: threading.Event | None = None,
        progress: Callable[[WorkerStats], None] | None = None,
    ) -> WorkerStats:
        """Loop until `stop` is set; with `once`, return as soon as nothing is due."""
        stop = stop or threading.Event()
        scheduler = CampaignScheduler(self.settings.database_url, self._start_scheduled)
        scheduler.start()
        senders: Connections[ledger.Claimed] = Connections(self.outbound.transport, self.concurrency)
        self.writer = _Writer(self._write, self._close_recorder)
        self.claimer = _Claimer(self._claim)
        replies = _Replies(self._record_many)
        settled = False  # the loop ended without an error: the writer's own error is raised too
        claimed: list[ledger.Claimed] = []
        looked_at = 0.0  # when due campaigns and finished ones were last looked for while sending
        try:
            while not stop.is_set():
                scheduler.poke()
                # While sending, the campaigns are looked at once a second, not once a batch: each look is
                # a query or two (a round trip each on PostgreSQL) and the scheduler starts them on time.
                looking = not claimed or time.monotonic() - looked_at >= LOOK_SECONDS
                if looking:
                    self.stats.started_campaigns += campaigns.start_due(
                        self.store, self.domain, self._on_start
                    )
                    if claimed:
                        self._finish_campaigns(self.campaigns_seen)
                        self.campaigns_seen = set()
                    looked_at = time.monotonic()
                claimed = self.claimer.take()
                self.renew_at = time.monotonic() + self.lease_seconds / 3
                if not claimed:
                    self._settle(senders, replies)
                    if self.outage is not None:  # the last messages met a relay that cannot be reached
                        if not self._wait_for_relay(stop, once):
                            break
                        continue
                    self._finish_campaigns()
                    if once:
                        if self._wait_for_leases(stop):
                            continue
                        break
                    stop.wait(self.poll_seconds)
                    continue
                if self.outage is None:
                    self.claimer.request()  # the next batch is leased while this one goes out
                self._deliver(claimed, senders, replies, stop)
                self.campaigns_seen.update(c.campaign_id for c in claimed)
                if progress:
                    progress(self.stats)
                if self.outage is not None:
                    self._settle(senders, replies)
                    self._release(self.claimer.give_back())  # no renewals while it waits for the relay
                    if not self._wait_for_relay(stop, once):
                        break
            self._settle(senders, replies)  # stopping: what is on a connection finishes and is recorded
            self._release(self.claimer.give_back())
            settled = True
        finally:
            self.claimer.close()
            senders.close()
            scheduler.shutdown()
            self.outbound.close()
            self.writer.close(raise_error=settled)
            self.stats.variants_rendered = sum(messages.rendered for messages in self.messages.values())
        return self.stats

    def _on_start(self, session: Session, campaign: Campaign) -> None:
        """What a campaign keeps of its start for its report, in the transaction that fixes its
        recipients: the variants it makes and, with `count_clicks`, its counted links (so no message
        can go out before its links are known)."""
        issue = campaign_issue(campaign, self.settings, self.store.vocabulary)
        campaign.variants = lookahead.variants_of(session, campaign.id, issue, self.store.vocabulary)
        if self.settings.count_clicks:
            links.record_links(session, campaign, issue, self.renderer)

    def _start_scheduled(self, campaign_id: int) -> bool:
        """The scheduler's job: start a campaign whose time came, counted like those found due."""
        started = campaigns.start(self.store, campaign_id, self.domain, self._on_start)
        if started:
            self.stats.started_campaigns.append(campaign_id)
        return started

    def _deliver(
        self,
        claimed: list[ledger.Claimed],
        senders: Connections[ledger.Claimed],
        replies: _Replies,
        stop: threading.Event,
    ) -> None:
        """Hand the batch's rows to the senders, taking replies as they come; what is not sent goes back.

        The batch's last messages may still be on their connections when this returns: the next batch
        follows them without a pause, and `_settle` waits for them when there is no next batch."""
        unsent: list[ledger.Claimed] = []  # paused, cancelled, stopping or no relay: given back to the ledger
        for index, row in enumerate(claimed):
            self._renew_if_due(claimed[index:], senders)
            if (
                stop.is_set()
                or self.outage is not None
                or self._status(row.campaign_id) != CampaignStatus.SENDING
            ):
                unsent += senders.take_back()  # built but not yet on a connection: not sent either
                unsent.append(row)
                continue
            if not row.mailable:
                replies.add(row, None)
                continue
            while len(senders.in_flight) >= self.concurrency * AHEAD:  # queued or being sent
                replies.wait_for(senders)
            prepared = self._messages(row.campaign_id).for_recipient(row)
            recipient = Recipient(row.subscriber_id, row.email, row.name, row.text_only, row.link_key)
            try:
                sender, wire = self.outbound.wire(prepared, recipient, row.message_id)
            except ValueError as error:  # an address no header can carry: this member fails, not the run
                replies.add(row, Reply(Outcome.FAILED, 0, f"message not built: {error}"))
                continue
            senders.submit(row.delivery_id, row, sender, row.email, wire)
            replies.take_ready(senders)
        self._release(unsent, self.outage)

    def _settle(self, senders: Connections[ledger.Claimed], replies: _Replies) -> None:
        """Wait for the messages on their way and record every reply (when the relay is out, what still
        waits for a connection goes back instead): the ledger is then up to date with this worker."""
        unsent: list[ledger.Claimed] = []
        while senders.in_flight:
            if self.outage is not None:  # what waits for a connection would meet the same relay
                unsent += senders.take_back()
                if not senders.in_flight:
                    break
            self._renew_if_due([], senders)  # the last messages on a slow relay keep their rows too
            replies.wait_for(senders)
        replies.flush()
        self._release(unsent, self.outage)
        self.writer.wait()

    def _renew_if_due(self, waiting: list[ledger.Claimed], senders: Connections[ledger.Claimed]) -> None:
        """A slow batch (rates, a slow relay) keeps its rows: every third of a lease, the rows still
        to send, those in flight and the next batch leased ahead are leased again."""
        if time.monotonic() >= self.renew_at:
            rows = waiting + list(senders.in_flight.values()) + self.claimer.held()
            with self.store.session() as session:
                ledger.renew(session, rows, self.lease_seconds)
            self.renew_at = time.monotonic() + self.lease_seconds / 3

    def _claim(self) -> list[ledger.Claimed]:
        with self.store.session() as session:
            return ledger.claim(session, self.worker_id, self.batch_size, self.lease_seconds)

    def _record_many(self, results: list[tuple[ledger.Claimed, Reply | None]]) -> None:
        """Count the replies and note a relay that cannot be reached, here and now; the ledger writes
        go to the writer thread."""
        sent: list[tuple[ledger.Claimed, Reply]] = []
        others: list[tuple[ledger.Claimed, Reply | None]] = []
        unreached: list[tuple[ledger.Claimed, Reply]] = []  # the relay's trouble: given back, not counted
        for row, reply in results:
            if reply is None:
                others.append((row, reply))
            elif reply.outcome == Outcome.SENT:
                sent.append((row, reply))
            elif reply.relay:
                unreached.append((row, reply))
            else:
                others.append((row, reply))
        self.stats.sent += len(sent)
        if sent or any(reply is not None for _, reply in others):  # the relay answered about a recipient
            self.pause, self.outage_began = 0.0, None
        self.writer.put(_Results(sent, others, unreached))
        if unreached:
            self.stats.relay_unavailable += len(unreached)
            self.outage = unreached[-1][1]

    def _write(self, batches: list[_Results]) -> None:
        """On the writer thread: the replies of one or more handfuls, written to the ledger."""
        sent = [pair for batch in batches for pair in batch.sent]
        others = [pair for batch in batches for pair in batch.others]
        unreached = [pair for batch in batches for pair in batch.unreached]
        if sent:
            if self.sent_recorder is None:  # made on this thread, which alone uses its connection
                self.sent_recorder = ledger.SentRecorder(self.store.database.engine)
            self.sent_recorder(sent)
        if others or unreached:
            with self.store.session() as session:
                for row, reply in others:
                    self.stats.add(
                        ledger.record(session, row, reply, self.retry_base_seconds, self.bounce_rules).value
                    )
                for row, reply in unreached:
                    ledger.release(session, [row], reply)

    def _close_recorder(self) -> None:
        if self.sent_recorder is not None:
            self.sent_recorder.close()
            self.sent_recorder = None

    def _release(self, rows: list[ledger.Claimed], relay_reply: Reply | None = None) -> None:
        if rows:
            with self.store.session() as session:
                ledger.release(session, rows, relay_reply)
            if relay_reply is not None:
                self.stats.relay_unavailable += len(rows)

    def _wait_for_relay(self, stop: threading.Event, once: bool) -> bool:
        """The relay could not be reached: wait 1, 2, 4... seconds (at most `OUTAGE_PAUSE_CAP`) between
        probes until it answers, saying so each time. True when it answers; False when stopping, or
        with `once` when its time to wait is used up (`stats.unfinished` says what is left)."""
        reply = self.outage
        assert reply is not None
        if self.outage_began is None:
            self.outage_began = time.monotonic()
        while not stop.is_set():
            self.pause = min(self.pause * 2, OUTAGE_PAUSE_CAP) if self.pause else self.outage_pause_seconds
            pause = self.pause
            with self.store.session() as session:
                waiting = ledger.left(session)
            if once:
                pause = min(pause, self.once_wait_seconds - self.waited)
                if pause <= 0:
                    self.stats.unfinished = (
                        f"the relay has not answered for {time.monotonic() - self.outage_began:.0f} s "
                        f"({reply}); {waiting:,} messages are left, none of them counted as an attempt: "
                        "run `newsletter worker` again once it answers"
                    )
                    return False
            self.notice(
                f"relay unavailable ({reply}): trying again in {pause:.3g} s; "
                f"{waiting:,} messages wait, not counted as attempts"
            )
            stop.wait(pause)
            self.waited += pause
            if stop.is_set():
                break
            # A campaign whose time comes meanwhile still has its recipients fixed on time.
            self.stats.started_campaigns += campaigns.start_due(self.store, self.domain, self._on_start)
            problem = self.outbound.probe()
            if problem is None:
                self.notice(
                    f"the relay answers again, after {time.monotonic() - self.outage_began:.0f} s "
                    "without it: sending"
                )
                self.outage = None
                return True
            reply = problem
        return False

    def _wait_for_leases(self, stop: threading.Event) -> bool:
        """`once`, its own work done: rows other workers lease (a worker that died holds them until the
        lease runs out) are waited for, within `once_wait_seconds` in all, and then sent. True to look
        for due rows again; False when there are none left to wait for, or they would take too long
        (`stats.unfinished` names how many and when their lease ends)."""
        with self.store.session() as session:
            held = ledger.leased_elsewhere(session, self.worker_id)
        if not held.count:
            return False
        assert held.first_end is not None and held.last_end is not None
        until = max(0.0, (held.first_end - utcnow()).total_seconds())
        if until > self.once_wait_seconds - self.waited:
            self.stats.unfinished = (
                f"{held.count:,} messages are leased by another worker until {held.last_end:%Y-%m-%d %H:%M:%S} "
                "UTC (a worker that stopped holds them until then; one still running sends them): run "
                "`newsletter worker --once` again after that, or keep a `newsletter worker` running"
            )
            return False
        if not self.leases_noticed:
            self.leases_noticed = True
            self.notice(
                f"{held.count:,} messages are leased by another worker until {held.last_end:%H:%M:%S} UTC "
                "at the latest: waiting for it to send them, or for the lease to run out if it has stopped"
            )
        # Reads only (no write lock) until something changes: the first lease runs out (its rows are
        # due), the other worker finishes or gives its rows back, or it moves on to other rows.
        deadline = time.monotonic() + until
        while not stop.is_set():
            pause = min(LEASE_POLL_SECONDS, max(0.0, deadline - time.monotonic()) + 0.01)
            stop.wait(pause)
            self.waited += pause
            if time.monotonic() >= deadline:
                return True
            with self.store.session() as session:
                now_held = ledger.leased_elsewhere(session, self.worker_id)
            if not now_held.count or now_held.first_end != held.first_end:
                return True
        return False

    def _status(self, campaign_id: int) -> CampaignStatus:
        """The campaign's status, looked up at most every half second."""
        now = time.monotonic()
        seen = self.status_seen.get(campaign_id)
        if seen is None or now - seen[0] > STATUS_CHECK_SECONDS:
            with self.store.session() as session:
                status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
            seen = (now, CampaignStatus(status) if status else CampaignStatus.CANCELLED)
            self.status_seen[campaign_id] = seen
        return seen[1]

    def _messages(self, campaign_id: int) -> _CampaignMessages:
        messages = self.messages.get(campaign_id)
        if messages is None:
            with self.store.session() as session:
                campaign = session.get(Campaign, campaign_id)
                assert campaign is not None
                session.expunge(campaign)
                redirect_for = links.redirects(
                    session, campaign_id, self.settings.base_url, self.outbound.tokens
                )
            messages = _CampaignMessages(
                campaign, self.settings, self.renderer, self.store.vocabulary, redirect_for
            )
            self.messages[campaign_id] = messages
        return messages

    def _finish_campaigns(self, ids: set[int] | None = None) -> None:
        with self.store.session() as session:
            if ids is None:
                ids = set(
                    session.scalars(select(Campaign.id).where(Campaign.status == CampaignStatus.SENDING))
                )
            for campaign_id in ids:
                ledger.finish_if_done(session, campaign_id)


def next_due(store: Store) -> dt.datetime | None:
    """When the next scheduled campaign is due (for `newsletter campaigns` and the demo)."""
    with store.session() as session:
        return session.scalar(
            select(Campaign.send_at)
            .where(Campaign.status == CampaignStatus.SCHEDULED)
            .order_by(Campaign.send_at)
        )
