"""Running workers: one in this process, or several side by side in child processes.

One Python process sends on one core at a time (the GIL), so on a machine with more cores several
workers send faster; they share the work through the ledger exactly as workers on several machines
do. Each child opens its own Store (no connection crosses a fork) and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import queue
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from newsletter.audience.store import Store
from newsletter.delivery.worker import Worker, WorkerStats
from newsletter.editor import Editor
from newsletter.errors import UserError
from newsletter.render.edition import Renderer
from newsletter.settings import Settings

# WorkerStats counts summed across processes (the rest are lists or words, joined apart).
SUMMED = ("sent", "deferred", "failed", "bounced", "skipped", "variants_rendered", "relay_unavailable")


def work(
    settings: Settings,
    store: Store,
    renderer: Renderer,
    once: bool = False,
    stop: threading.Event | None = None,
    progress: Callable[[WorkerStats], None] | None = None,
    notice: Callable[[str], None] | None = None,
    **options: float,
) -> WorkerStats:
    """One worker in this process, until stopped (or, with `once`, until nothing is due)."""
    store.ready()
    worker = Worker(settings, store, renderer, notice=notice, **options)  # type: ignore[arg-type]
    return worker.run(once=once, stop=stop, progress=progress)


def work_in_processes(
    settings: Settings,
    processes: int,
    once: bool = False,
    stop: threading.Event | None = None,
    **options: float,
) -> WorkerStats:
    """`processes` workers in child processes; their stats summed.

    `stop` (or SIGTERM to this process) stops them all after their messages in flight."""
    stop = stop or threading.Event()
    context = multiprocessing.get_context("spawn")  # no inherited threads, locks or connections
    results: Any = context.Queue()
    children = [
        context.Process(
            target=_work_in_child,
            args=(settings, once, options, results),
            name=f"newsletter-worker-{number}",
        )
        for number in range(processes)
    ]
    for child in children:
        child.start()
    stopped = False
    while any(child.is_alive() for child in children):
        if stop.is_set() and not stopped:
            stopped = True
            for child in children:
                if child.is_alive():
                    child.terminate()  # SIGTERM: each finishes its messages in flight
        for child in children:
            child.join(0.1)
    total, problems = WorkerStats(), []
    for _ in children:
        try:
            outcome = results.get(timeout=1)
        except queue.Empty:
            break
        if isinstance(outcome, str):
            problems.append(outcome)
        else:
            _add(total, outcome)
    crashed = [child.name for child in children if child.exitcode not in (0, None)]
    if problems or crashed:
        raise UserError("; ".join(problems or [f"worker processes ended abnormally: {', '.join(crashed)}"]))
    return total


def _add(total: WorkerStats, outcome: WorkerStats) -> None:
    for name in SUMMED:
        setattr(total, name, getattr(total, name) + getattr(outcome, name))
    total.started_campaigns += outcome.started_campaigns
    if outcome.unfinished and outcome.unfinished not in total.unfinished:
        total.unfinished = "; ".join(filter(None, (total.unfinished, outcome.unfinished)))


def _work_in_child(settings: Settings, once: bool, options: dict[str, float], results: Any) -> None:
    """One of `work_in_processes`'s workers: SIGTERM stops it cleanly; Ctrl-C is the parent's to handle."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def notice(text: str) -> None:  # the parent's stderr: a service's journal, or the terminal
        print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC {text}", file=sys.stderr, flush=True)

    try:
        editor = Editor(settings)
        store = Store.open(settings, editor.vocabulary)
        try:
            results.put(work(settings, store, editor.renderer, once, stop, notice=notice, **options))
        finally:
            store.close()
    except UserError as error:
        results.put(str(error))
