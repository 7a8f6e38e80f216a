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
run in children of their own (`--processes`, as `newsletter worker
--processes N` runs them), sharing the campaign through the ledger, so their
peak memory (ru_maxrss) is the sending's alone. By default one, as
`newsletter worker` runs: a second worker process only helps with a free
core, and on a 2-core machine that also runs the sink and PostgreSQL it was
slower (docs/delivery.md, "Several processes").

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

Targets: send rate at least 0.7x smtp-source's on SQLite and 0.6x on PostgreSQL
(the long-term goal is 0.8x on both),
per-recipient build under 50 us, and peak memory that does not grow with the
number of recipients (here: at most 10% more for the largest N than for the
smallest). It prints figures and exits 0 whether or not a target is met (a
benchmark, not a test).

    .venv/bin/python bench/delivery.py [--sizes 20000,200000] [--engines sqlite,postgresql]
        [--concurrency 4] [--profile] [--dkim]

`--profile` adds a 5,000-member SQLite run under cProfile (every thread) and
prints where the time goes.

`--dkim` measures what DKIM signing (delivery/dkim.py, through `Outbound.wire`)
costs. It generates a fresh RSA-2048 key and an Ed25519 key into the run's
temporary folder (`generate_key`) and sends each campaign three times, each
into a fresh database with the same size, engine, sink, workers and
connections: unsigned, signed with the RSA key (`dkim_selector`,
`dkim_private_key`), and signed with both (`dkim_ed25519_key` too), each
followed by its own smtp-source reference; it prints the send rates, their
ratios to smtp-source and to the unsigned run, and the workers' CPU a message
(getrusage in each worker). On one core without SMTP it times OpenSSL's raw
signatures through `cryptography` (32 bytes, RSA-2048 PKCS#1 v1.5 with
SHA-256 and Ed25519, 3,000 a pass, best of 3) and `Outbound.wire` over 2,000
distinct members unsigned and signed (passes interleaved, best of 5). Target:
signing adds at most 1.3x OpenSSL's raw RSA-2048 signature time a message.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
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
RATIO_TARGETS = {"sqlite": 0.7, "postgresql": 0.6}  # send rate against smtp-source's, per engine
RATIO_GOAL = 0.8
BUILD_TARGET_US = 50.0
MEMORY_GROWTH_TARGET = 0.10  # peak of the largest N at most 10% above the smallest N's
BUILD_RECIPIENTS = 20_000
BUILD_REPEATS = 5
PROFILE_RECIPIENTS = 5_000
PROGRESS_SECONDS = 10.0
# --dkim: the signings each campaign is sent with (name, the keys it uses), and the one-core measures.
SIGNINGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("unsigned", ()),
    ("rsa", ("rsa",)),
    ("rsa+ed25519", ("rsa", "ed25519")),
)
DKIM_SELECTOR = "bench"
SIGN_TARGET = 1.3  # signing adds at most 1.3x OpenSSL's raw RSA-2048 signature a message
SIGN_RECIPIENTS = 2_000
SIGN_REPEATS = 5
RAW_SIGNATURES = 3_000
RAW_REPEATS = 3


def settings_for(url: str, smtp_port: int, concurrency: int, dkim: dict[str, str] | None = None) -> Any:
    """The bench's settings; `dkim` ({"rsa": path, "ed25519": path}, either may be absent) signs with
    those keys."""
    from newsletter.settings import Settings

    dkim = dkim or {}
    return Settings(
        database_url=url,
        smtp_url=f"smtp://127.0.0.1:{smtp_port}",
        issues_dir=ROOT / "issues",
        theme_dir=ROOT / "templates",
        vocabulary_dir=ROOT / "subscribers",
        concurrency=concurrency,
        max_rate=0,
        domain_rate=0,
        dkim_selector=DKIM_SELECTOR if dkim.get("rsa") else "",
        dkim_private_key=dkim.get("rsa", ""),
        dkim_ed25519_key=dkim.get("ed25519", ""),
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

    sending = Sending(
        settings_for(options["url"], options["port"], options["concurrency"], options.get("dkim"))
    )
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
    from newsletter.delivery.connections import Connections
    from newsletter.delivery.service import Sending
    from newsletter.delivery.worker import WorkerStats

    counted = {"bytes": 0, "messages": 0, "signed": 0}
    submit = Connections.submit

    def counting_submit(self: Any, key: int, row: Any, sender: str, recipient: str, wire: bytes) -> None:
        """The real hand-over, adding up the bytes given to SMTP (for the reference's message size) and
        the messages that carry a DKIM signature."""
        counted["bytes"] += len(wire) - 3  # the message, less the end-of-data line smtp-source adds itself
        counted["messages"] += 1
        counted["signed"] += wire.startswith(b"DKIM-Signature:")
        submit(self, key, row, sender, recipient, wire)

    Connections.submit = counting_submit  # type: ignore[method-assign]

    settings = settings_for(options["url"], options["port"], options["concurrency"], options.get("dkim"))
    sending = Sending(settings)
    sending.store.ready()
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
    stats = sending.work(once=True, progress=progress)
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
        "bytes": counted["bytes"],
        "messages": counted["messages"],
        "signed": counted["signed"],
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
        "signed",
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
        "prepared": prepared,
        "personaliser": Personaliser(checked.issue),
    }


def measure_raw_signatures(keys: dict[str, Any]) -> dict[str, float]:
    """OpenSSL's own signing time through `cryptography`, one thread: 32 bytes signed RAW_SIGNATURES
    times a pass, RSA (PKCS#1 v1.5, SHA-256) and Ed25519 passes interleaved; the best pass of each, in us."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    data = bytes(range(32))
    rsa_key, ed25519_key = keys["rsa"].private_key, keys["ed25519"].private_key
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    for _ in range(50):  # warm-up
        rsa_key.sign(data, pkcs1, sha256)
        ed25519_key.sign(data)
    rsa_us, ed25519_us = [], []
    for _ in range(RAW_REPEATS):
        started = time.perf_counter()
        for _ in range(RAW_SIGNATURES):
            rsa_key.sign(data, pkcs1, sha256)
        rsa_us.append((time.perf_counter() - started) / RAW_SIGNATURES * 1e6)
        started = time.perf_counter()
        for _ in range(RAW_SIGNATURES):
            ed25519_key.sign(data)
        ed25519_us.append((time.perf_counter() - started) / RAW_SIGNATURES * 1e6)
    return {"rsa": min(rsa_us), "ed25519": min(ed25519_us), "rsa_all": rsa_us, "ed25519_all": ed25519_us}


def measure_signing(build: dict[str, Any], port: int, key_paths: dict[str, str]) -> dict[str, Any]:
    """`Outbound.wire` (what the worker calls for each member) over SIGN_RECIPIENTS distinct members, one
    thread, no SMTP, for each of SIGNINGS; the passes interleaved (unsigned, rsa, rsa+ed25519, then again)
    so a burst of load hits all alike. The best and the median pass of each, in us a message."""
    from newsletter.db.models import new_link_key
    from newsletter.delivery.dkim import canonical_body
    from newsletter.delivery.message import Recipient, message_id_for, sender_domain
    from newsletter.delivery.outbound import Outbound

    prepared = build["prepared"]
    outbounds = {
        name: Outbound(settings_for("sqlite://", port, 1, {key: key_paths[key] for key in keys}))
        for name, keys in SIGNINGS
    }
    domain = sender_domain(build["settings"])
    pairs_ids = [
        (
            Recipient(number, row["email"], row["name"], False, new_link_key()),
            message_id_for(2, number, domain),
        )
        for number, row in enumerate(members.generate(SIGN_RECIPIENTS, seed=11), start=1)
    ]
    # One part of signing's cost apart: the body's canonical form and hash (each member's body differs).
    body = prepared.render(*pairs_ids[0], outbounds["unsigned"].tokens).split(b"\r\n\r\n", 1)[1]
    body_us = []
    for _ in range(SIGN_REPEATS):
        started = time.perf_counter()
        for _ in range(200):
            hashlib.sha256(canonical_body(body)).digest()
        body_us.append((time.perf_counter() - started) / 200 * 1e6)
    signatures = {}  # DKIM-Signature headers in a message, to be sure each signs as it should
    for name, outbound in outbounds.items():
        _, data = outbound.wire(prepared, *pairs_ids[0])
        signatures[name] = data.split(b"\r\n\r\n", 1)[0].count(b"DKIM-Signature:")
        for recipient, message_id in pairs_ids[:200]:  # warm-up
            outbound.wire(prepared, recipient, message_id)
    times: dict[str, list[float]] = {name: [] for name in outbounds}
    for _ in range(SIGN_REPEATS):
        for name, outbound in outbounds.items():
            wire = outbound.wire
            started = time.perf_counter()
            for recipient, message_id in pairs_ids:
                wire(prepared, recipient, message_id)
            times[name].append((time.perf_counter() - started) / len(pairs_ids) * 1e6)
    return {
        "best": {name: min(passes) for name, passes in times.items()},
        "median": {name: statistics.median(passes) for name, passes in times.items()},
        "signatures": signatures,
        "body_us": min(body_us),
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
    """The main thread's (loop: variants, build, SMTP) and the other threads' CPU (record, lease), by function."""
    for suffix, title in (
        ("main", "worker loop (main thread: building and sending)"),
        ("threads", "other threads (the ledger writer, the batch leaser)"),
    ):
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
    dkim: dict[str, str] | None = None,
    signing: str = "",
) -> dict[str, Any]:
    options: dict[str, Any] = {
        "url": url,
        "port": port,
        "concurrency": concurrency,
        "csv": str(csv_path),
        "dkim": dkim or {},
    }
    prepared = run_child("prepare", options)
    if prepared["audience"] != size:
        print(
            f"    WARNING: the '{AUDIENCE}' segment holds {prepared['audience']:,} of {size:,} generated members"
        )
    label = f"{engine} {size:,}" + (f" {signing}" if signing else "")
    options.update(label=label, expected=prepared["audience"], profile=str(profile) if profile else "")
    sent = combine(run_children("send", options, 1 if profile else processes))
    return {**prepared, **sent}


def print_dkim(rows: list[dict[str, Any]], raw: dict[str, Any], signing_build: dict[str, Any]) -> None:
    """The --dkim verdict (signing's added build time against OpenSSL's raw RSA signature) and, for each
    engine and size, the signed runs' rates and worker CPU against the unsigned run's."""
    best = signing_build["best"]
    added = best["rsa"] - best["unsigned"]
    ratio = added / raw["rsa"]
    print(
        f"  DKIM signing (RSA-2048) adds {added:.1f} us a message to Outbound.wire "
        f"({best['unsigned']:.1f} -> {best['rsa']:.1f} us) = {ratio:.2f}x OpenSSL's raw RSA-2048 signature "
        f"({raw['rsa']:.1f} us), target <= {SIGN_TARGET}x: {verdict(ratio <= SIGN_TARGET)}"
    )
    both = best["rsa+ed25519"] - best["unsigned"]
    print(
        f"    with Ed25519 beside it: adds {both:.1f} us = {both / (raw['rsa'] + raw['ed25519']):.2f}x the raw "
        f"RSA-2048 + Ed25519 signatures ({raw['rsa'] + raw['ed25519']:.1f} us)"
    )
    groups: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["engine"], row["size"]), {})[row["signing"]] = row
    for (engine, size), by_signing in groups.items():
        unsigned = by_signing.get("unsigned")
        if unsigned is None:
            continue
        unsigned_cpu = unsigned["cpu_s"] * 1e6 / max(unsigned["sent"], 1)
        parts = []
        for name, row in by_signing.items():
            cpu = row["cpu_s"] * 1e6 / max(row["sent"], 1)
            part = (
                f"{name} {row['rate']:,.0f}/s = {row['rate'] / row['reference']:.2f}x smtp-source, "
                f"worker CPU {cpu:,.0f} us a message"
            )
            if name != "unsigned":
                part += (
                    f" ({row['rate'] / unsigned['rate']:.2f}x the unsigned rate, CPU +{cpu - unsigned_cpu:,.0f} us "
                    f"= {(cpu - unsigned_cpu) / raw['rsa']:.2f}x raw RSA)"
                )
            parts.append(part)
        print(f"  DKIM end to end, {engine} {size:,}:")
        for part in parts:
            print(f"    {part}")


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
        default=1,
        help="workers sharing the campaign, as `newsletter worker --processes N` runs them "
        "(default: 1, as `newsletter worker` runs)",
    )
    parser.add_argument("--profile", action="store_true", help="also profile a 5,000-member SQLite run")
    parser.add_argument(
        "--dkim",
        action="store_true",
        help="send each campaign unsigned, DKIM-signed (RSA-2048) and signed with RSA and Ed25519; "
        "time signing against OpenSSL's raw signatures",
    )
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
        key_paths: dict[str, str] = {}
        raw: dict[str, Any] = {}
        signing_build: dict[str, Any] = {}
        if args.dkim:
            from newsletter.delivery.dkim import generate_key

            keys = {
                "rsa": generate_key(work / "dkim" / f"{DKIM_SELECTOR}.pem", "rsa"),
                "ed25519": generate_key(work / "dkim" / f"{DKIM_SELECTOR}-ed25519.pem", "ed25519"),
            }
            key_paths = {kind: str(key.path) for kind, key in keys.items()}
            raw = measure_raw_signatures(keys)
            print(
                f"  OpenSSL raw signatures (cryptography, one thread, 32 bytes, best of {RAW_REPEATS} x "
                f"{RAW_SIGNATURES:,}): RSA-2048 PKCS#1 v1.5 SHA-256 {raw['rsa']:.1f} us (passes "
                f"{', '.join(f'{us:.1f}' for us in raw['rsa_all'])}), Ed25519 {raw['ed25519']:.1f} us "
                f"(passes {', '.join(f'{us:.1f}' for us in raw['ed25519_all'])})"
            )
            signing_build = measure_signing(build, sink.port, key_paths)
            best, median = signing_build["best"], signing_build["median"]
            print(
                f"  Outbound.wire, one thread, no SMTP ({SIGN_RECIPIENTS:,} distinct members, best of "
                f"{SIGN_REPEATS} interleaved passes; median in brackets):"
            )
            for name, _ in SIGNINGS:
                added = best[name] - best["unsigned"]
                print(
                    f"    {name:<12} {best[name]:7.1f} us a message ({median[name]:.1f})"
                    + (f", signing adds {added:.1f} us" if name != "unsigned" else "")
                    + f"; {signing_build['signatures'][name]} DKIM-Signature header(s)"
                )
            print(
                f"    of which the body (relaxed canonical form and its SHA-256, once a message): "
                f"{signing_build['body_us']:.1f} us"
            )
        csvs: dict[int, Path] = {}
        variant_counts: dict[int, int] = {}
        runs = [
            (engine, size, signing)
            for engine in engines
            for size in (sizes if engine == "sqlite" else sizes[:1])
            for signing in ([name for name, _ in SIGNINGS] if args.dkim else [""])
        ]
        if args.profile:
            runs.append(("profile", PROFILE_RECIPIENTS, ""))
        postgres = None
        try:
            for engine, size, signing in runs:
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
                # With --dkim, a fresh database for each signing (a campaign is sent once).
                suffix = f"-{signing.replace('+', '-')}" if signing else ""
                if engine in ("sqlite", "profile"):
                    url = f"sqlite:///{work / f'{engine}-{size}{suffix}.sqlite3'}"
                elif engine == "postgresql":
                    from newsletter.testing.postgres import TemporaryPostgres

                    if postgres is None:
                        postgres = TemporaryPostgres().__enter__()
                    url = postgres.create_database(f"bench_{size}{suffix.replace('-', '_')}")
                else:
                    print(f"  unknown engine {engine!r}: use sqlite and/or postgresql")
                    continue
                title = f"{engine} {size:,}" + (f" {signing}" if signing else "")
                print(f"  {title}: importing, then sending...", flush=True)
                profile_path = work / "delivery.prof" if engine == "profile" else None
                keys_used = {kind: key_paths[kind] for kind in dict(SIGNINGS).get(signing, ())}
                before = sink.count_received()
                result = pipeline(
                    engine,
                    size,
                    url,
                    csvs[size],
                    sink.port,
                    concurrency,
                    args.processes,
                    profile_path,
                    keys_used,
                    signing,
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
                        "signing": signing,
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
        f"{'engine':<11}{'members':>9}"
        + (f"{'  DKIM':<13}" if args.dkim else "")
        + f"{'sent':>9}{'pipeline/s':>12}{'smtp-source/s':>15}{'ratio':>7}"
        f"{'bytes':>8}{'variants':>9}{'peak MB':>9}{'base MB':>9}{'CPU':>6}{'import s':>10}{'setup s':>9}"
    )
    for row in rows:
        print(
            f"{row['engine']:<11}{row['size']:>9,}"
            + (f"  {row['signing']:<11}" if args.dkim else "")
            + f"{row['sent']:>9,}{row['rate']:>12,.0f}"
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
        target = RATIO_TARGETS.get(row["engine"], RATIO_TARGETS["sqlite"])
        print(
            f"  {row['engine']} {row['size']:,}{' ' + row['signing'] if row['signing'] else ''}: "
            f"ratio {ratio:.2f}, target >= {target}: "
            f"{verdict(ratio >= target)}; goal >= {RATIO_GOAL}: {verdict(ratio >= RATIO_GOAL)}"
        )
        if row["sent"] != row["size"] or row["arrived"] < row["sent"]:
            print(
                f"    WARNING: {row['sent']:,} of {row['size']:,} recorded as sent "
                f"(failed {row['failed']}, deferred {row['deferred']}, skipped {row['skipped']}); "
                f"smtp-sink counted {row['arrived']:,}"
            )
        if row["signing"] and row["signed"] != (0 if row["signing"] == "unsigned" else row["messages"]):
            print(
                f"    WARNING: {row['signed']:,} of {row['messages']:,} messages handed to SMTP carried a "
                "DKIM signature"
            )
    print(
        f"  build per recipient: {build['build_us']:.1f} us, target < {BUILD_TARGET_US:.0f} us: "
        f"{verdict(build['build_us'] < BUILD_TARGET_US)}"
    )
    if args.dkim:
        print_dkim(rows, raw, signing_build)
    sqlite_rows = [row for row in rows if row["engine"] == "sqlite" and row["signing"] in ("", "unsigned")]
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
