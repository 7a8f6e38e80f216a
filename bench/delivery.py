"""Delivery benchmark: the sample issue, personalised, to N generated members through the real pipeline.

For each N (20,000 and 200,000 by default) it generates N fictional members
(bench/members.py), imports them into a fresh database, schedules the sample
issue to the `everyone` segment (everyone on the newsletter list) with
`Sending.send`, and then times `Sending.work(once=True)` end to end: the
ledger snapshot, claiming batches, rendering each personalised variant,
building every member's message, SMTP into Postfix's `smtp-sink` on
loopback, and recording each result in the ledger. That is the send rate.
The import and the campaign's scheduling run in a child process of their
own beforehand and are reported apart (they are not sending); the workers
run in children of their own (`--processes`, one a core by default, as
`newsletter worker --processes N` runs them), sharing the campaign through
the ledger, so their peak memory (ru_maxrss) is the sending's alone.

Why the reference is measured in the same run: the machine is shared and
noisy, so messages per second mean little on their own. Straight after each
pipeline run Postfix's `smtp-source` (C, the load generator Postfix is
tested with) sends the same number of messages, of the average size the
pipeline just sent, over the same number of connections, into the same
`smtp-sink`. Both figures come from the same minute on the same machine, so
their ratio is what to compare between runs and machines.

It also times `PreparedMessage.wire` (one member's envelope sender and
message, ready for SMTP DATA, from a prepared variant, as the worker makes it) over 20,000 distinct members, and counts and times the
variants the personalisation produces.

Targets: send rate at least 0.5x smtp-source's (the long-term goal is 0.8x),
per-recipient build under 50 us, and peak memory that does not grow with the
number of recipients (here: at most 10% more for the largest N than for the
smallest). It prints figures and exits 0 whether or not a target is met (a
benchmark, not a test).

    .venv/bin/python bench/delivery.py [--sizes 20000,200000] [--engines sqlite,postgresql]
        [--concurrency 4] [--profile]

`--profile` adds a 5,000-member SQLite run under cProfile (every thread) and
prints where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import members  # noqa: E402  (bench/members.py, the deterministic member generator)

ISSUE = "2023-10"
AUDIENCE = "everyone"
RATIO_TARGET = 0.5
RATIO_GOAL = 0.8
BUILD_TARGET_US = 50.0
MEMORY_GROWTH_TARGET = 0.10  # peak of the largest N at most 10% above the smallest N's
BUILD_RECIPIENTS = 20_000
BUILD_REPEATS = 5
PROFILE_RECIPIENTS = 5_000
PROGRESS_SECONDS = 10.0


def settings_for(url: str, smtp_port: int, concurrency: int) -> Any:
    from newsletter.settings import Settings

    return Settings(
        database_url=url,
        smtp_url=f"smtp://127.0.0.1:{smtp_port}",
        issues_dir=ROOT / "issues",
        theme_dir=ROOT / "templates",
        vocabulary_dir=ROOT / "subscribers",
        concurrency=concurrency,
        max_rate=0,
        domain_rate=0,
    )


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# ---------------------------------------------------------------------------------------------------------
# Child processes
# ---------------------------------------------------------------------------------------------------------


def child_prepare(options: dict[str, Any]) -> dict[str, Any]:
    """Import the members and schedule the campaign (now); nothing is sent yet."""
    from newsletter.audience.service import Audience
    from newsletter.delivery.service import Sending

    sending = Sending(settings_for(options["url"], options["port"], options["concurrency"]))
    sending.store.upgrade()
    csv_path = Path(options["csv"])
    started = time.perf_counter()
    summary = Audience(sending.store).import_csv(csv_path, report_path=csv_path.with_suffix(".report.csv"))
    import_s = time.perf_counter() - started
    started = time.perf_counter()
    campaign, size = sending.send(ISSUE, [AUDIENCE])
    send_s = time.perf_counter() - started
    sending.close()
    return {
        "rows": summary.rows,
        "added": summary.added,
        "rejected": summary.rejected,
        "import_s": import_s,
        "schedule_s": send_s,
        "audience": size,
        "campaign": campaign.id,
    }


def child_send(options: dict[str, Any]) -> dict[str, Any]:
    """Run one worker until nothing is due; the rate, CPU and memory of that alone."""
    started = time.perf_counter()
    from newsletter.delivery.service import Sending
    from newsletter.delivery.transport import Reply, SmtpTransport
    from newsletter.delivery.worker import WorkerStats

    class CountingTransport(SmtpTransport):
        """The real transport, adding up the bytes it hands to SMTP (for the reference's message size)."""

        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self.bytes = 0
            self.count = 0
            self.count_lock = threading.Lock()

        def send_wire(self, envelope_from: str, recipient: str, wire: bytes) -> Reply:
            with self.count_lock:
                self.bytes += len(wire) - 3  # the message, less the end-of-data line smtp-source adds itself
                self.count += 1
            return super().send_wire(envelope_from, recipient, wire)

    settings = settings_for(options["url"], options["port"], options["concurrency"])
    sending = Sending(settings)
    sending.store.ready()
    transport = CountingTransport(settings.smtp_url, settings.max_rate, settings.domain_rate)
    setup_s = time.perf_counter() - started
    baseline_mb = current_mb()
    label, total = options["label"], options["expected"]
    last = [time.perf_counter()]

    def progress(stats: WorkerStats) -> None:
        now = time.perf_counter()
        if now - last[0] >= PROGRESS_SECONDS:
            last[0] = now
            done = stats.sent + stats.failed + stats.deferred + stats.bounced + stats.skipped
            print(
                f"      {label}: {done:,}/{total:,} sent ({done / (now - began):,.0f}/s, "
                f"{current_mb():.0f} MB now)",
                file=sys.stderr,
                flush=True,
            )

    # Each thread's own CPU time (time.thread_time), not wall time: the process is one interpreter, so
    # what limits it is the CPU its threads spend, and waiting for work or for the GIL is not work.
    profiles: list[cProfile.Profile] = []
    if options.get("profile"):
        profiles.append(cProfile.Profile(time.thread_time))

        def profile_thread(frame: Any, event: str, arg: Any) -> None:
            sys.setprofile(None)
            profile = cProfile.Profile(time.thread_time)
            profiles.append(profile)
            profile.enable()

        threading.setprofile(profile_thread)
        profiles[0].enable()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    loop_cpu = time.thread_time()
    began_at = time.time()
    began = time.perf_counter()
    stats = sending.work(once=True, progress=progress, transport=transport)  # type: ignore[arg-type]
    work_s = time.perf_counter() - began
    ended_at = time.time()
    loop_cpu = time.thread_time() - loop_cpu
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    peak = peak_mb()
    if profiles:
        profiles[0].disable()
        threading.setprofile(None)
        pstats.Stats(profiles[0]).dump_stats(options["profile"] + ".main")
        others = pstats.Stats(profiles[1])
        for profile in profiles[2:]:
            others.add(profile)
        others.dump_stats(options["profile"] + ".threads")
    sending.close()
    return {
        "sent": stats.sent,
        "failed": stats.failed,
        "deferred": stats.deferred,
        "bounced": stats.bounced,
        "skipped": stats.skipped,
        "started_campaigns": stats.started_campaigns,
        "variants_rendered": stats.variants_rendered,
        "work_s": work_s,
        "began_at": began_at,
        "ended_at": ended_at,
        "setup_s": setup_s,
        "cpu_s": (cpu_after.ru_utime - cpu.ru_utime) + (cpu_after.ru_stime - cpu.ru_stime),
        "loop_cpu_s": loop_cpu,
        "baseline_mb": baseline_mb,
        "peak_mb": peak,
        "bytes": transport.bytes,
        "messages": transport.count,
        "profiled_threads": len(profiles),
    }


def run_child(mode: str, options: dict[str, Any]) -> dict[str, Any]:
    """Run a child; its stderr (progress) goes straight to ours, its last stdout line is the JSON result."""
    return run_children(mode, options, 1)[0]


def run_children(mode: str, options: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """Run `count` children side by side (workers sharing one campaign) and return each one's result."""
    children = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--child",
                mode,
                json.dumps({**options, "label": f"{options.get('label')}#{n}"}),
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for n in range(count)
    ]
    outputs = [child.communicate()[0] for child in children]
    for child in children:
        if child.returncode != 0:
            raise RuntimeError(f"{mode} child failed (exit {child.returncode}); see its error output above")
    return [json.loads(output.strip().splitlines()[-1]) for output in outputs]


def combine(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Several workers' results as one: counts and CPU add up, the time runs from the first start to the
    last finish, memory is the largest one process reached."""
    combined = dict(results[0])
    for key in (
        "sent",
        "failed",
        "deferred",
        "bounced",
        "skipped",
        "cpu_s",
        "loop_cpu_s",
        "bytes",
        "messages",
    ):
        combined[key] = sum(result[key] for result in results)
    for key in ("peak_mb", "baseline_mb", "setup_s"):
        combined[key] = max(result[key] for result in results)
    combined["work_s"] = max(r["ended_at"] for r in results) - min(r["began_at"] for r in results)
    combined["tail_s"] = max(r["ended_at"] for r in results) - min(r["ended_at"] for r in results)
    combined["processes"] = len(results)
    return combined


# ---------------------------------------------------------------------------------------------------------
# Measures in this process
# ---------------------------------------------------------------------------------------------------------


def measure_build(port: int) -> dict[str, Any]:
    """`PreparedMessage.wire` over 20,000 distinct members (median of a few passes), and the variants."""
    from newsletter.db.models import new_link_key
    from newsletter.delivery.message import PreparedMessage, Recipient, message_id_for, sender_domain
    from newsletter.delivery.variants import Personaliser
    from newsletter.editor import Editor
    from newsletter.tokens import Tokens

    settings = settings_for("sqlite://", port, 1)
    editor = Editor(settings)
    checked = editor.check(ISSUE)
    prepared = PreparedMessage.build(checked.edition, settings, text_only=False)
    tokens = Tokens(settings.secret_key)
    domain = sender_domain(settings)
    recipients = [
        Recipient(number, row["email"], row["name"], False, new_link_key())
        for number, row in enumerate(members.generate(BUILD_RECIPIENTS, seed=7), start=1)
    ]
    message_ids = [message_id_for(1, recipient.subscriber_id, domain) for recipient in recipients]
    pairs = list(zip(recipients, message_ids, strict=True))
    wire = prepared.wire
    sample = prepared.render(recipients[0], message_ids[0], tokens)
    for recipient, message_id in pairs[:2000]:  # warm-up
        wire(recipient, message_id, tokens)
    build_us = []
    for _ in range(BUILD_REPEATS):
        started = time.perf_counter()
        for recipient, message_id in pairs:
            wire(recipient, message_id, tokens)
        build_us.append((time.perf_counter() - started) / len(pairs) * 1e6)
    return {
        "build_us": statistics.median(build_us),
        "build_us_all": build_us,
        "sample_bytes": len(sample),
        "editor": editor,
        "issue": checked.issue,
        "settings": settings,
        "personaliser": Personaliser(checked.issue),
    }


def measure_variants(build: dict[str, Any], csv_path: Path) -> dict[str, Any]:
    """How many variants the members of `csv_path` fall into, and what rendering one costs (median)."""
    import csv

    from newsletter.delivery.message import PreparedMessage

    personaliser = build["personaliser"]
    keys = set()
    with csv_path.open(encoding="utf-8", newline="") as source:
        for row in csv.DictReader(source):
            topics = [topic for topic in row["topics"].split(";") if topic]
            keys.add(personaliser.key(topics, row["region"] or None, False))
    renderer, settings = build["editor"].renderer, build["settings"]
    times = []
    for key in sorted(keys, key=repr)[:40]:
        started = time.perf_counter()
        edition = renderer.render(personaliser.issue_for(key))
        PreparedMessage.build(edition, settings, text_only=key.text_only)
        times.append(time.perf_counter() - started)
    return {"variants": len(keys), "variant_ms": statistics.median(times) * 1000, "timed": len(times)}


def print_profile(path: Path, top: int = 25) -> None:
    """The main thread's (loop: claim, variants, build, record) and the other threads' CPU, by function."""
    for suffix, title in (("main", "worker loop (main thread)"), ("threads", "other threads (SMTP sends)")):
        stats: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = pstats.Stats(
            f"{path}.{suffix}"
        ).stats  # type: ignore[attr-defined]
        total = sum(entry[2] for entry in stats.values())
        print(f"\n  profile: {title}, {total:.2f} s of CPU (time.thread_time)")
        for order, name in ((2, "own CPU"), (3, "CPU including callees")):
            print(f"    top {top} by {name}:")
            print(f"      {'calls':>9} {'own s':>7} {'incl. s':>8} {'us/call':>8}  function")
            ranked = sorted(stats.items(), key=lambda item: item[1][order], reverse=True)[:top]
            for (filename, line, function), (_, calls, own, cumulative, _) in ranked:
                place = filename.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "")
                if "site-packages/" in place:
                    place = place.split("site-packages/", 1)[1]
                where = f"{place}:{line}({function})" if line else function
                print(
                    f"      {calls:>9,} {own:>7.2f} {cumulative:>8.2f} {cumulative / calls * 1e6:>8.1f}  "
                    f"{where[:110]}"
                )


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


# ---------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------


def pipeline(
    engine: str,
    size: int,
    url: str,
    csv_path: Path,
    port: int,
    concurrency: int,
    processes: int,
    profile: Path | None = None,
) -> dict[str, Any]:
    options = {"url": url, "port": port, "concurrency": concurrency, "csv": str(csv_path)}
    prepared = run_child("prepare", options)
    if prepared["audience"] != size:
        print(
            f"    WARNING: the '{AUDIENCE}' segment holds {prepared['audience']:,} of {size:,} generated members"
        )
    label = f"{engine} {size:,}"
    options.update(label=label, expected=prepared["audience"], profile=str(profile) if profile else "")
    sent = combine(run_children("send", options, 1 if profile else processes))
    return {**prepared, **sent}


def main(argv: list[str] | None = None) -> int:
    from newsletter.settings import Settings

    parser = argparse.ArgumentParser(
        description="Send the sample issue to N members through the pipeline; compare with smtp-source."
    )
    parser.add_argument("--sizes", default="20000,200000", help="comma-separated numbers of members")
    parser.add_argument("--engines", default="sqlite", help="sqlite and/or postgresql (at the smallest size)")
    parser.add_argument(
        "--concurrency", type=int, default=Settings().concurrency, help="connections a worker"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        help="workers sharing the campaign, as `newsletter worker --processes N` runs them (default: one a core)",
    )
    parser.add_argument("--profile", action="store_true", help="also profile a 5,000-member SQLite run")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "OPTIONS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cast(io.TextIOWrapper, sys.stdout).reconfigure(line_buffering=True)  # in step with the children's stderr
    if args.child:
        mode, options = args.child
        result = (child_prepare if mode == "prepare" else child_send)(json.loads(options))
        print(json.dumps(result))
        return 0

    from newsletter.testing.smtp import PostfixSmtpSink, smtp_source

    sizes = sorted({int(size.replace("_", "")) for size in args.sizes.split(",") if size.strip()})
    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    concurrency = args.concurrency
    print(
        f"delivery benchmark: issue {ISSUE} to '{AUDIENCE}', {args.processes} worker process(es) with "
        f"{concurrency} SMTP connections each, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    rows: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="newsletter-bench-delivery-") as folder,
        PostfixSmtpSink() as sink,
    ):
        work = Path(folder)
        print(f"  sink: Postfix smtp-sink on 127.0.0.1:{sink.port}")
        build = measure_build(sink.port)
        print(
            f"  build: {build['build_us']:.1f} us a recipient (envelope sender and DATA; passes "
            f"{', '.join(f'{us:.1f}' for us in build['build_us_all'])}); "
            f"full-issue HTML message {build['sample_bytes']:,} bytes"
        )
        csvs: dict[int, Path] = {}
        variant_counts: dict[int, int] = {}
        runs = [(engine, size) for engine in engines for size in (sizes if engine == "sqlite" else sizes[:1])]
        if args.profile:
            runs.append(("profile", PROFILE_RECIPIENTS))
        postgres = None
        try:
            for engine, size in runs:
                if size not in csvs:
                    csvs[size] = work / f"members-{size}.csv"
                    started = time.perf_counter()
                    members.write_csv(csvs[size], size)
                    print(f"  generated {size:,} members in {time.perf_counter() - started:.1f} s")
                    variants = measure_variants(build, csvs[size])
                    variant_counts[size] = variants["variants"]
                    print(
                        f"    {variants['variants']:,} variants among them; rendering one takes "
                        f"{variants['variant_ms']:.1f} ms (median of {variants['timed']})"
                    )
                if engine in ("sqlite", "profile"):
                    url = f"sqlite:///{work / f'{engine}-{size}.sqlite3'}"
                elif engine == "postgresql":
                    from newsletter.testing.postgres import TemporaryPostgres

                    if postgres is None:
                        postgres = TemporaryPostgres().__enter__()
                    url = postgres.create_database(f"bench_{size}")
                else:
                    print(f"  unknown engine {engine!r}: use sqlite and/or postgresql")
                    continue
                print(f"  {engine} {size:,}: importing, then sending...", flush=True)
                profile_path = work / "delivery.prof" if engine == "profile" else None
                before = sink.count_received()
                result = pipeline(
                    engine, size, url, csvs[size], sink.port, concurrency, args.processes, profile_path
                )
                arrived = sink.count_received() - before
                rate = result["sent"] / result["work_s"]
                message_bytes = round(result["bytes"] / max(result["messages"], 1))
                per_message = 1e6 / max(result["sent"], 1)
                print(
                    f"    pipeline: {result['sent']:,} sent in {result['work_s']:.1f} s = {rate:,.0f}/s "
                    f"(smtp-sink counted {arrived:,}; avg {message_bytes:,} bytes; peak {result['peak_mb']:.0f} MB; "
                    f"CPU {result['cpu_s'] / result['work_s']:.2f} cores: {result['cpu_s'] * per_message:,.0f} us "
                    f"a message, {result['loop_cpu_s'] * per_message:,.0f} us of it in the worker loop; "
                    f"{result['variants_rendered']:,} editions rendered by {result['processes']} process(es), "
                    f"the last finishing {result['tail_s']:.2f} s after the first)"
                )
                if profile_path is not None:
                    print_profile(profile_path)
                    continue
                reference_s = smtp_source(
                    sink.host,
                    sink.port,
                    result["sent"] or size,
                    size=message_bytes,
                    connections=concurrency * result["processes"],
                )
                reference = (result["sent"] or size) / reference_s
                print(f"    smtp-source: {result['sent']:,} in {reference_s:.1f} s = {reference:,.0f}/s")
                rows.append(
                    {
                        **result,
                        "engine": engine,
                        "size": size,
                        "rate": rate,
                        "reference": reference,
                        "arrived": arrived,
                        "message_bytes": message_bytes,
                        "variants": variant_counts[size],
                    }
                )
        finally:
            if postgres is not None:
                postgres.__exit__(None, None, None)

    print()
    print(
        f"{'engine':<11}{'members':>9}{'sent':>9}{'pipeline/s':>12}{'smtp-source/s':>15}{'ratio':>7}"
        f"{'bytes':>8}{'variants':>9}{'peak MB':>9}{'base MB':>9}{'CPU':>6}{'import s':>10}{'setup s':>9}"
    )
    for row in rows:
        print(
            f"{row['engine']:<11}{row['size']:>9,}{row['sent']:>9,}{row['rate']:>12,.0f}"
            f"{row['reference']:>15,.0f}{row['rate'] / row['reference']:>7.2f}{row['message_bytes']:>8,}"
            f"{row['variants']:>9,}{row['peak_mb']:>9.0f}{row['baseline_mb']:>9.0f}"
            f"{row['cpu_s'] / row['work_s']:>6.2f}{row['import_s']:>10.1f}{row['setup_s']:>9.1f}"
        )
    print(
        "  (sent/s: Sending.work(once=True) in each worker process, first start to last result; smtp-source: "
        "same count, size and connections into the same sink, moments later; CPU: cores busy in the workers; "
        "base MB: RSS before sending; import s: import_csv, setup s: Python imports + Sending(), neither "
        "in the rate)"
    )
    print()
    print("targets:")
    for row in rows:
        ratio = row["rate"] / row["reference"]
        print(
            f"  {row['engine']} {row['size']:,}: ratio {ratio:.2f}, target >= {RATIO_TARGET}: "
            f"{verdict(ratio >= RATIO_TARGET)}; goal >= {RATIO_GOAL}: {verdict(ratio >= RATIO_GOAL)}"
        )
        if row["sent"] != row["size"] or row["arrived"] < row["sent"]:
            print(
                f"    WARNING: {row['sent']:,} of {row['size']:,} recorded as sent "
                f"(failed {row['failed']}, deferred {row['deferred']}, skipped {row['skipped']}); "
                f"smtp-sink counted {row['arrived']:,}"
            )
    print(
        f"  build per recipient: {build['build_us']:.1f} us, target < {BUILD_TARGET_US:.0f} us: "
        f"{verdict(build['build_us'] < BUILD_TARGET_US)}"
    )
    sqlite_rows = [row for row in rows if row["engine"] == "sqlite"]
    if len(sqlite_rows) >= 2:
        small, large = sqlite_rows[0], sqlite_rows[-1]
        growth = large["peak_mb"] / small["peak_mb"] - 1
        print(
            f"  peak memory: {small['peak_mb']:.0f} MB at {small['size']:,}, {large['peak_mb']:.0f} MB at "
            f"{large['size']:,} ({growth:+.0%}), target: no growth (<= +{MEMORY_GROWTH_TARGET:.0%}): "
            f"{verdict(growth <= MEMORY_GROWTH_TARGET)}"
        )
    else:
        print("  peak memory: needs two sizes on sqlite (--sizes 20000,200000) to judge growth")
    return 0


if __name__ == "__main__":
    sys.exit(main())
