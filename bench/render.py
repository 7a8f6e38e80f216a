"""Render benchmark: how long one issue takes to become an email, stage by stage.

Loads the sample issue (`issues/2023-10` by default) the way the editor does and
times, after a warm-up, N runs of the full `Renderer.render(issue)` (Jinja ->
MJML, mjml-python, css-inline, text part) and of each stage on its own. It
prints the median and p90 of each, the HTML size against Gmail's clipping limit,
and whether the targets are met. It is a benchmark that reports figures, not a
test: it exits 0 whether or not a target is met, and 1 only when the sample
cannot be rendered.

Why the official MJML is measured in the same run: the machine this runs on is
shared and noisy, so an absolute time for mjml-python says little on its own,
and a reference figure written down last month says even less. Compiling the
very MJML this run compiled with the official MJML (Node, loaded once,
timed in-process after a warm-up) moments after timing mjml-python puts both
under the same load, so their ratio holds up where the milliseconds do not.

The compile step passes each `mj-text`'s content through untouched, as MJML
defines it (`Renderer.compile_mjml`, `hold_text`): the MJML it hands the
compiler is the layout with a marker in each `mj-text`. The official MJML is
given that same MJML, and mjml-python's time includes taking the contents out
and putting them back. For comparison the run also times both compilers on
the whole source, contents inside.
The reference needs `node` and the npm `mjml` package in bench/node_modules
(`npm install --prefix bench mjml`); without them it is skipped with a note.

Run from anywhere: `.venv/bin/python bench/render.py [--runs 50] [--warmup 10] [--issue 2023-10]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
MJML_PACKAGE = BENCH_DIR / "node_modules" / "mjml"
INSTALL_HINT = "npm install --prefix bench mjml"

FULL_RENDER_TARGET_MS = 15.0
SPEEDUP_TARGET = 20.0
LABEL_WIDTH = 38
FIGURE_WIDTH = 26

# One node process: load mjml once, warm up, then time `runs` compiles in-process.
# argv: source file, runs, warmup, path of the mjml package.
NODE_SCRIPT = r"""
const fs = require('fs');
const [sourcePath, runsArg, warmupArg, mjmlDir] = process.argv.slice(1);
const mjml2html = require(mjmlDir);
const version = require(mjmlDir + '/package.json').version;
const source = fs.readFileSync(sourcePath, 'utf8');
const options = { validationLevel: 'soft', minify: false };
const runs = Number(runsArg);
const warmup = Number(warmupArg);

async function compile() {
  // mjml 4 returns the result; mjml 5 returns a promise of it.
  return await mjml2html(source, options);
}

(async () => {
  let result = await compile();
  for (let i = 1; i < warmup; i++) await compile();
  const times = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    result = await compile();
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  const mid = Math.floor(times.length / 2);
  const median = times.length % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
  const p90 = times[Math.min(times.length - 1, Math.ceil(0.9 * times.length) - 1)];
  console.log(JSON.stringify({
    version,
    node: process.version,
    median_ms: median,
    p90_ms: p90,
    html_bytes: Buffer.byteLength(result.html, 'utf8'),
    errors: (result.errors || []).length,
  }));
})().catch((error) => { console.error(error && error.stack || String(error)); process.exit(1); });
"""


@dataclass(frozen=True)
class Timing:
    """Median and p90 of a set of runs, in milliseconds."""

    median_ms: float
    p90_ms: float

    @classmethod
    def of(cls, samples_ms: list[float]) -> Timing:
        if len(samples_ms) == 1:
            return cls(samples_ms[0], samples_ms[0])
        p90 = statistics.quantiles(samples_ms, n=10, method="inclusive")[-1]
        return cls(statistics.median(samples_ms), p90)

    def __str__(self) -> str:
        return f"{self.median_ms:6.2f} ms / {self.p90_ms:6.2f} ms"


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=positive_int, default=50, help="timed runs per measure (default 50)")
    parser.add_argument("--warmup", type=positive_int, default=10, help="untimed runs first (default 10)")
    parser.add_argument("--issue", default="2023-10", help="issue slug under issues/ (default 2023-10)")
    return parser.parse_args(argv)


def time_ms(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return (time.perf_counter() - start) * 1000


def row(label: str, figure: str, verdict: str = "") -> str:
    return f"  {label:<{LABEL_WIDTH}}{figure:<{FIGURE_WIDTH}}{verdict}".rstrip()


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def official_mjml(mjml_source: str, runs: int, warmup: int) -> dict[str, object] | str:
    """Time the official MJML on `mjml_source` in one node process; a reason string if it cannot."""
    node = shutil.which("node")
    if node is None:
        return "`node` is not on PATH (install Node.js)"
    if not (MJML_PACKAGE / "package.json").is_file():
        return "the npm mjml package is not in bench/node_modules"
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-") as tmp:
        source_path = Path(tmp) / "issue.mjml"
        source_path.write_text(mjml_source, encoding="utf-8")
        try:
            completed = subprocess.run(
                [node, "-e", NODE_SCRIPT, str(source_path), str(runs), str(warmup), str(MJML_PACKAGE)],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return "node did not finish within 10 minutes"
    if completed.returncode != 0:
        detail = (completed.stderr.strip() or completed.stdout.strip()).splitlines()
        return f"node failed (exit {completed.returncode}): {detail[-1] if detail else 'no output'}"
    try:
        return json.loads(completed.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return f"node printed no result: {completed.stdout.strip()[:200]!r}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.chdir(ROOT)  # Settings.load reads newsletter.toml and finds issues/ relative to the working directory

    from mjml import mjml2html

    from newsletter.editor import Editor
    from newsletter.errors import UserError
    from newsletter.render import edition as edition_module
    from newsletter.render import markdown
    from newsletter.render.edition import EMAIL_TEMPLATE, TEXT_TEMPLATE, _tidy_text, hold_text
    from newsletter.render.lint import GMAIL_CLIP_BYTES
    from newsletter.settings import Settings

    try:
        editor = Editor(Settings.load())
        path, issue = editor.load(args.issue)
        renderer = editor.renderer
        edition = renderer.render(issue)
    except UserError as error:
        print(f"render benchmark: cannot render issue {args.issue}:\n{error}", file=sys.stderr)
        return 1

    # The stages exactly as Renderer.render runs them, each fed the previous stage's output.
    email_template = renderer.email_env.get_template(EMAIL_TEMPLATE)
    text_template = renderer.text_env.get_template(TEXT_TEMPLATE)
    context = renderer.context(issue)
    mjml_source = email_template.render(context)
    compiled = renderer.compile_mjml(mjml_source)
    html = renderer.inliner.inline(compiled)
    text = _tidy_text(text_template.render(context))
    if (mjml_source, html, text) != (edition.mjml, edition.html, edition.text):
        print("warning: the stages timed separately no longer match Renderer.render; update bench/render.py")

    def cold() -> None:
        """Forget what earlier renders cached (Markdown, section fragments, compiled layouts, inlined
        pieces): every run
        pays what one `newsletter check` pays, not what the thousandth variant of a campaign pays."""
        markdown.to_html.cache_clear()
        markdown.to_text.cache_clear()
        renderer.email_env.fragments.clear()  # type: ignore[attr-defined]
        renderer.text_env.fragments.clear()  # type: ignore[attr-defined]
        edition_module._compile_layout.cache_clear()
        renderer.pieces.layouts.clear()
        renderer.pieces.texts.clear()

    def compile_cold() -> str:
        edition_module._compile_layout.cache_clear()
        return renderer.compile_mjml(mjml_source)

    measures: dict[str, Callable[[], object]] = {
        "full render (jinja+mjml+inline+text)": lambda: (cold(), renderer.render(issue)),
        "jinja -> MJML source": lambda: (cold(), email_template.render(renderer.context(issue))),
        "MJML compile (mjml-python)": compile_cold,
        "CSS inlining (css-inline)": lambda: renderer.inliner.inline(compiled),
        "text part (jinja)": lambda: (cold(), _tidy_text(text_template.render(renderer.context(issue)))),
    }
    for function in measures.values():
        for _ in range(args.warmup):
            function()
    # Interleave the measures run by run, so a burst of load on the shared machine hits them all alike.
    samples: dict[str, list[float]] = {label: [] for label in measures}
    for _ in range(args.runs):
        for label, function in measures.items():
            samples[label].append(time_ms(function))
    timings = {label: Timing.of(values) for label, values in samples.items()}
    # For the ratio, time mjml-python the way the reference is timed: compiles back to back,
    # straight before the reference runs (interleaved with other stages it pays cold caches).
    back_to_back = Timing.of([time_ms(compile_cold) for _ in range(args.runs)])
    reference = official_mjml(hold_text(mjml_source)[0], args.runs, args.warmup)
    whole_python = Timing.of(
        [time_ms(lambda: mjml2html(mjml_source, disable_comments=True)) for _ in range(args.runs)]
    )
    whole_reference = official_mjml(mjml_source, args.runs, args.warmup)

    print(f"render benchmark: {display(path)}, {args.runs} runs after {args.warmup} warm-up (median / p90)")
    full = timings["full render (jinja+mjml+inline+text)"]
    for label, timing in timings.items():
        if timing is full:
            verdict = f"target < {FULL_RENDER_TARGET_MS:g} ms: {met(full.median_ms < FULL_RENDER_TARGET_MS)}"
            print(row(label, str(timing), verdict))
        else:
            print(row(label, str(timing)))
    print(row("MJML compile, back to back", str(back_to_back)))
    compare("official MJML, same MJML", back_to_back, reference, target=True)
    print("  for comparison, both on the whole source (mj-text contents inside):")
    print(row("mjml-python, whole source", str(whole_python)))
    compare("official MJML, whole source", whole_python, whole_reference, target=False)
    size = edition.html_bytes
    verdict = (
        f"Gmail clips at {GMAIL_CLIP_BYTES // 1024} KB: {'under' if size <= GMAIL_CLIP_BYTES else 'OVER'}"
    )
    print(row("HTML size of the rendered sample", f"{size / 1024:6.1f} KB", verdict))
    node_version = "" if isinstance(reference, str) else f", node {reference['node']}"
    print(
        f"  (python {sys.version.split()[0]}, mjml-python {metadata.version('mjml-python')}, "
        f"css-inline {metadata.version('css-inline')}, jinja2 {metadata.version('jinja2')}{node_version})"
    )
    return 0


def compare(label: str, mjml_python: Timing, reference: dict[str, object] | str, target: bool) -> None:
    """Print the official MJML's time and mjml-python's speed-up over it (or why it was skipped)."""
    if isinstance(reference, str):
        print(row(label, "  skipped"))
        print(f"    reference skipped: {reference}; to measure it: `{INSTALL_HINT}` and run this again")
        if target:
            print(
                row("mjml-python vs official MJML", "   n/a", f"target >= {SPEEDUP_TARGET:g}x: not measured")
            )
        return
    official = Timing(float(reference["median_ms"]), float(reference["p90_ms"]))  # type: ignore[arg-type]
    print(row(label, str(official)))
    print(f"    (node, mjml {reference['version']})")
    ratio = official.median_ms / mjml_python.median_ms
    verdict = f"target >= {SPEEDUP_TARGET:g}x: {met(ratio >= SPEEDUP_TARGET)}" if target else ""
    print(row("mjml-python vs official MJML", f"{ratio:6.1f}x faster", verdict))
    if reference["errors"]:
        print(f"    note: official MJML reported {reference['errors']} validation warning(s) (soft level)")


def display(path: Path) -> str:
    """`issues/2023-10` for the issue file's folder, relative to the repo root when it lies below it."""
    folder = path.parent if path.is_file() else path
    try:
        return str(folder.resolve().relative_to(ROOT))
    except ValueError:
        return str(folder)


if __name__ == "__main__":
    sys.exit(main())
