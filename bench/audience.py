"""Audience benchmark: import a million members, then count a three-condition segment.

Generates N fictional members deterministically (bench/members.py), imports
them with the same code as `newsletter subscribers import` into a fresh
database, and counts the segment "local government in the North West
interested in housing". Each engine runs in a child process of its own, so
its peak memory (ru_maxrss) is the import's alone. PostgreSQL is a
throwaway server started by this script (Debian's `postgresql` package).

Why references are measured in the same run: the machine is shared and
noisy, so next to each figure stands a reference timed moments before on the
same machine, and the ratio is what to compare between runs:
  - import: a bare loader (csv module + sqlite3 executemany of the rows into
    one table with a unique email column, no checks, no topics, lists or
    consent records), the floor any loader of this file stands on;
  - segment count: `SELECT count(*) FROM subscribers`, a full scan of the
    same table.

Targets (SQLite): 1,000,000 rows imported in under 60 s with peak memory
under 300 MB; the segment count in under 1 s. Prints figures; never fails on
a missed target (it is a benchmark, not a test).

    .venv/bin/python bench/audience.py [--rows 1000000] [--engines sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import members  # noqa: E402  (bench/members.py, the generator the sample list came from)

SEGMENT = "bench-three-conditions"
SEGMENTS_YAML = f"""\
{SEGMENT}:
  description: Local government in the North West interested in housing
  sector: local-government
  region: north-west
  topics: [housing]
"""
IMPORT_TARGET_S = 60.0
MEMORY_TARGET_MB = 300.0
COUNT_TARGET_S = 1.0


def child(engine: str, url: str, csv_path: Path, vocabulary: Path) -> None:
    """Runs in its own process: import, then count; prints one JSON line."""
    from sqlalchemy import func, select

    from newsletter.audience.service import Audience
    from newsletter.db.models import Subscriber
    from newsletter.settings import Settings

    audience = Audience.open(Settings(database_url=url, vocabulary_dir=vocabulary))
    audience.upgrade()
    started = time.perf_counter()
    summary = audience.import_csv(csv_path, report_path=csv_path.with_suffix(f".{engine}-report.csv"))
    import_seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts, plain = [], []
    with audience.store.database.session() as session:
        for _ in range(5):
            started = time.perf_counter()
            count = audience.segments.count(session, SEGMENT)
            counts.append(time.perf_counter() - started)
            started = time.perf_counter()
            session.scalar(select(func.count()).select_from(Subscriber))
            plain.append(time.perf_counter() - started)
    audience.close()
    print(
        json.dumps(
            {
                "rows": summary.rows,
                "added": summary.added,
                "rejected": summary.rejected,
                "import_s": import_seconds,
                "peak_mb": peak_mb,
                "count": count,
                "count_first_s": counts[0],
                "count_median_s": statistics.median(counts),
                "plain_count_median_s": statistics.median(plain),
            }
        )
    )


def bare_loader(csv_path: Path, work: Path) -> float:
    """The reference: csv module + one sqlite3 executemany per 5,000 rows, unique email, nothing else."""
    database = work / "bare.sqlite3"
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(
        "CREATE TABLE members (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT, organisation TEXT, "
        "sector TEXT, region TEXT, place TEXT, topics TEXT, lists TEXT, joined TEXT)"
    )
    started = time.perf_counter()
    with csv_path.open(encoding="utf-8", newline="") as source:
        rows = csv.reader(source)
        next(rows)
        batch = []
        for row in rows:
            batch.append(row)
            if len(batch) >= 5000:
                connection.executemany("INSERT INTO members VALUES (NULL,?,?,?,?,?,?,?,?,?)", batch)
                batch = []
        connection.executemany("INSERT INTO members VALUES (NULL,?,?,?,?,?,?,?,?,?)", batch)
    connection.commit()
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def run_child(engine: str, url: str, csv_path: Path, vocabulary: Path) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, __file__, "--child", engine, url, str(csv_path), str(vocabulary)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{engine} run failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Import N members and count a segment, on SQLite and PostgreSQL."
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument(
        "--child", nargs=4, metavar=("ENGINE", "URL", "CSV", "VOCABULARY"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        engine, url, csv_path, vocabulary = args.child
        child(engine, url, Path(csv_path), Path(vocabulary))
        return 0

    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-") as folder:
        work = Path(folder)
        vocabulary = work / "subscribers"
        vocabulary.mkdir()
        for name in ("topics", "regions", "sectors", "lists"):
            shutil.copy(ROOT / "subscribers" / f"{name}.yaml", vocabulary)
        (vocabulary / "segments.yaml").write_text(SEGMENTS_YAML, encoding="utf-8")
        csv_path = work / "members.csv"
        started = time.perf_counter()
        members.write_csv(csv_path, args.rows)
        print(
            f"audience benchmark: {args.rows:,} members ({csv_path.stat().st_size / 1e6:.0f} MB of CSV, "
            f"generated in {time.perf_counter() - started:.1f} s)"
        )
        reference = bare_loader(csv_path, work)
        print(
            f"  reference: bare loader (csv + sqlite3, one table)   {reference:6.1f} s  "
            f"{args.rows / reference:9,.0f} rows/s"
        )
        for engine in engines:
            if engine == "sqlite":
                result = run_child(engine, f"sqlite:///{work / 'newsletter.sqlite3'}", csv_path, vocabulary)
            elif engine == "postgresql":
                from newsletter.testing.postgres import TemporaryPostgres

                with TemporaryPostgres() as server:
                    url = server.create_database("bench")
                    result = run_child(engine, url, csv_path, vocabulary)
            else:
                print(f"  unknown engine {engine!r}: use sqlite and/or postgresql")
                continue
            seconds = result["import_s"]
            print(f"  {engine}:")
            print(
                f"    import      {seconds:6.1f} s  {result['rows'] / seconds:9,.0f} rows/s  "
                f"{seconds / reference:4.1f}x the bare loader   target < {IMPORT_TARGET_S:.0f} s: "
                f"{verdict(seconds < IMPORT_TARGET_S)}"
            )
            print(
                f"    peak memory {result['peak_mb']:6.0f} MB (whole import process)        "
                f"target < {MEMORY_TARGET_MB:.0f} MB: {verdict(result['peak_mb'] < MEMORY_TARGET_MB)}"
            )
            count_s = result["count_median_s"]
            print(
                f"    segment     {result['count']:,} members ({SEGMENT}): median {count_s * 1000:.0f} ms, "
                f"first {result['count_first_s'] * 1000:.0f} ms; plain count(*) {result['plain_count_median_s'] * 1000:.0f} ms "
                f"({count_s / result['plain_count_median_s']:.1f}x)   target < {COUNT_TARGET_S:.0f} s: "
                f"{verdict(count_s < COUNT_TARGET_S)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
