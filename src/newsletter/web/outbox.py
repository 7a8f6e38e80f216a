"""The pages' outbox: their emails leave from a few sender threads of their own, and a request waits a
short, bounded time for the relay's answer, so a relay that hangs can hold up no page.

A request hands over a `Letter` with `post` and waits, at most `wait` seconds (2), for the relay's
answer: True when it took the email. False when it did not, or could not say in time; the page then
says "try again later", and `undo` (what to take back: the pending sign-up, the waiting address)
runs once the email has certainly not gone: at once when it failed or was never tried, later, from
the sender thread, when a send that outlived the wait then fails. A send that outlives the wait and
then succeeds is logged and kept (its link works).

Nothing waits on a relay known to be in trouble; `post` answers False at once, for everyone:
  - for `rest` seconds (15) after a send outlived the wait, or could not reach the relay at all;
  - while every sender has been on one send for longer than `stall` seconds (0.5): a healthy relay
    answers in milliseconds, so a letter queued behind those would only wait for the same trouble
    (and one already queued is taken back when no sender got to it within `stall`);
  - when `capacity` letters already wait for a sender.
So at most `senders` requests wait the full `wait` for a relay that hangs; `newsletter serve` makes
that half its threads, and the other half answer every other page meanwhile.

Every sign-up hands over a letter, also one for an address that is never mailed (a suppressed,
bounced or erased one): that letter is built like the others and then, instead of going, takes as
long as recent sends took, so the time a sign-up takes does not tell who is a member.
"""

from __future__ import annotations

import collections
import enum
import logging
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from newsletter.delivery.transport import Outcome
from newsletter.web.mail import Mailer, masked

log = logging.getLogger(__name__)

WAIT_SECONDS = 2.0
STALL_SECONDS = 0.5
REST_SECONDS = 15.0
CAPACITY = 16
SENDERS = 4
CLOSE_SECONDS = 2.0  # at shutdown, how long sends under way may take to finish
RECENT_SENDS = 15  # how many recent send times the stand-in letters copy (their median)


@dataclass(frozen=True)
class Letter:
    """One email for the outbox: the kind of notice (`mail.NOTICES`), to whom, the link in it. With
    `send=False` it is built and never sent (an address that is never mailed). `bounce` is the VERP
    token of the member it is for, so a bounce of it is taken in like a campaign message's; None
    sends it from the plain From address."""

    kind: str
    to: str
    url: str
    send: bool = True
    bounce: str | None = None
    details: tuple[str, ...] = ()  # lines of this one email (`Mailer.build`)


class _State(enum.Enum):
    QUEUED = "queued"
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"


@dataclass(eq=False)
class _Job:
    letter: Letter
    undo: Callable[[], None] | None
    posted: float
    state: _State = _State.QUEUED
    sent: bool = False
    abandoned: bool = False  # the request stopped waiting while it was being sent
    started: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


class Outbox:
    """Sends `Letter`s from `senders` threads through `mailer`; see the module's description."""

    def __init__(
        self,
        mailer: Mailer,
        *,
        senders: int = SENDERS,
        capacity: int = CAPACITY,
        wait: float = WAIT_SECONDS,
        stall: float = STALL_SECONDS,
        rest: float = REST_SECONDS,
    ) -> None:
        self.mailer = mailer
        self.senders = max(1, senders)
        self.capacity = capacity
        self.wait = wait
        self.stall = stall
        self.rest = rest
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: collections.deque[_Job] = collections.deque()
        self._sending: dict[int, tuple[float, _Job]] = {}  # sender thread -> (when it started, what)
        self._recent: collections.deque[float] = collections.deque(maxlen=RECENT_SENDS)
        self._resting_until = 0.0
        self._closed = False
        self._threads = [
            threading.Thread(target=self._run, name=f"newsletter-outbox-{n}", daemon=True)
            for n in range(self.senders)
        ]
        for thread in self._threads:
            thread.start()

    # --- The request's side ---

    def post(self, letter: Letter, undo: Callable[[], None] | None = None) -> bool:
        """Hand `letter` over and wait (at most `wait` seconds) for the relay. True when it took it;
        False otherwise, and `undo` then runs once the email has certainly not gone."""
        job = _Job(letter, undo, time.monotonic())
        refused = self._enqueue(job)
        if refused:
            log.info("%s email to %s not sent: %s", letter.kind, masked(letter.to), refused)
            return self._failed(job)
        if not job.started.wait(self.stall):
            with self._lock:
                if job.state is _State.QUEUED:  # no sender got to it: the relay is busy with trouble
                    job.state = _State.CANCELLED
                    self._queue.remove(job)
            if job.state is _State.CANCELLED:
                log.info("%s email to %s not sent: no sender was free", letter.kind, masked(letter.to))
                return self._failed(job)
        if not job.done.wait(max(0.0, job.posted + self.wait - time.monotonic())):
            with self._lock:
                if job.state is not _State.DONE:
                    job.abandoned = True  # the sender runs `undo` if the send then fails
                    self._start_rest()
            if job.abandoned:
                log.warning(
                    "%s email to %s: the relay did not answer within %.0f s, so the visitor was told to "
                    "try again; no email from the pages will be tried for %.0f s",
                    letter.kind,
                    masked(letter.to),
                    self.wait,
                    self.rest,
                )
                return False
        return job.sent or self._failed(job)

    def _enqueue(self, job: _Job) -> str:
        """Queue the job for a sender, or say why not."""
        with self._lock:
            now = time.monotonic()
            if self._closed:
                return "the server is stopping"
            if now < self._resting_until:
                return "the relay was not answering a moment ago"
            if len(self._sending) + len(self._queue) >= self.senders:  # no sender is free for it
                if len(self._queue) >= self.capacity:
                    return "too many emails are waiting for the relay"
                if self._sending and all(now - started > self.stall for started, _ in self._sending.values()):
                    return "the relay is slow to answer"
            self._queue.append(job)
            self._wake.notify()
        return ""

    def _failed(self, job: _Job) -> bool:
        """The email did not go: take back what it was for, now (in the request's thread)."""
        with self._lock:
            undo = self._take_undo(job)
        if undo is not None:
            undo()
        return False

    def _start_rest(self) -> None:
        """Caller holds the lock."""
        self._resting_until = max(self._resting_until, time.monotonic() + self.rest)

    # --- The senders' side ---

    def _run(self) -> None:
        me = threading.get_ident()
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if not self._queue:
                    return
                job = self._queue.popleft()
                job.state = _State.SENDING
                started = time.monotonic()
                self._sending[me] = (started, job)
                resting = started < self._resting_until
            job.started.set()
            sent, unreachable = False, False
            try:
                if not resting:  # the relay got into trouble while this letter waited: not tried
                    sent, unreachable = self._deliver(job.letter, started)
            except Exception:
                log.exception("%s email to %s not sent", job.letter.kind, masked(job.letter.to))
            with self._lock:
                del self._sending[me]
                if sent and job.letter.send:
                    self._recent.append(time.monotonic() - started)
                if unreachable:
                    self._start_rest()
                job.state, job.sent = _State.DONE, sent
                late = job.abandoned
                undo = self._take_undo(job) if late and not sent else None
            job.done.set()
            if late:
                self._late(job, undo)

    def _deliver(self, letter: Letter, started: float) -> tuple[bool, bool]:
        """(sent, relay unreachable). A letter not to send is built, then takes as long as sends do."""
        if not letter.send:
            self.mailer.build(letter.kind, letter.to, letter.url, letter.details)
            with self._lock:
                typical = statistics.median(self._recent) if self._recent else 0.0
            time.sleep(max(0.0, started + typical - time.monotonic()))
            return True, False
        reply = self.mailer.send(letter.kind, letter.to, letter.url, letter.bounce, letter.details)
        unreachable = reply.outcome == Outcome.DEFERRED and reply.code in (0, 421)
        return reply.outcome == Outcome.SENT, unreachable

    def _take_undo(self, job: _Job) -> Callable[[], None] | None:
        """The job's `undo`, for whoever runs it (once only). Caller holds the lock."""
        undo, job.undo = job.undo, None
        return undo

    def _late(self, job: _Job, undo: Callable[[], None] | None) -> None:
        """The request stopped waiting for this send, which has now ended."""
        letter = job.letter
        if job.sent:
            log.warning(
                "%s email to %s went after all, once the visitor had been told to try again",
                letter.kind,
                masked(letter.to),
            )
        else:
            _take_back(letter, undo)

    # --- Stopping ---

    def close(self) -> None:
        """Take back letters no sender has started (their requests hear "not sent"), give sends under
        way a moment to end, then close the relay connections. A send still stuck on a hung relay is
        left to end with the process (it holds a daemon thread): what it was for is taken back now, as
        its visitor was told to try again and the email will not go once the process has stopped."""
        with self._lock:
            self._closed = True
            cancelled = list(self._queue)
            self._queue.clear()
            for job in cancelled:
                job.state = _State.CANCELLED
            self._wake.notify_all()
        for job in cancelled:
            job.started.set()
            job.done.set()
        deadline = time.monotonic() + CLOSE_SECONDS
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            stuck = [job for _, job in self._sending.values()]
            undos = [(job.letter, self._take_undo(job)) for job in stuck if job.abandoned]
        if stuck:  # QUIT would wait for the hung relay too
            log.warning("stopping with %d email(s) still waiting for the relay's answer", len(stuck))
        else:
            self.mailer.close()
        for letter, undo in undos:
            _take_back(letter, undo)


def _take_back(letter: Letter, undo: Callable[[], None] | None) -> None:
    """Run `undo` away from any request: an error is logged, as nobody is there to see it."""
    if undo is None:
        return
    try:
        undo()
    except Exception:
        log.exception("could not take back what the %s email to %s was for", letter.kind, masked(letter.to))
