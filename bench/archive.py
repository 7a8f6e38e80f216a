"""Archive benchmark: ten years of monthly issues (120) built into the static archive.

Generates 120 varied issues in a temporary project with a deterministic
generator (seeded): every section kind, 5 to 8 place updates from some thirty
places across the UK's regions, publications that come back later under
"Previous publications", collaborations, events, calls to action, and bodies
as long as the sample's, made of sentences taken from the sample issue
(`issues/2023-10`) with places, numbers and names varied. Then it times, after
one warm-up, `--runs` runs (default 3) of:

| measure | what runs |
| --- | --- |
| reference: load + validate | `collect()`: read and validate the 120 issue files, the part no build can skip |
| full build | `build()`: the same, then every page, search index, feed and sitemap written to disk |

The two are interleaved run by run and Markdown's cache is emptied before
each, so both start cold and share whatever load the machine is under; their
ratio says how much the archive adds to reading the issues, which holds up on a
noisy machine where seconds do not. It also prints the search index size, the
page count and the site's size.

Targets, each reported as met or NOT met: full build under 10 s for 120
issues; search index under 2 MB. It is a benchmark, not a test: it exits 0
whether or not a target is met.

Run from anywhere: `.venv/bin/python bench/archive.py [--runs 3] [--issues 120] [--seed 6]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from newsletter.archive.build import build
from newsletter.archive.collect import collect
from newsletter.render import markdown
from newsletter.settings import Settings
from newsletter.vocabulary import Vocabulary

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "issues" / "2023-10" / "issue.yaml"
BUILD_TARGET_SECONDS = 10.0
INDEX_TARGET_BYTES = 2 * 1024 * 1024

PLACES = [
    ("Coventry", "west-midlands", "Marmot City"),
    ("Stoke-on-Trent", "west-midlands", "Marmot City"),
    ("Birmingham", "west-midlands", "Marmot City"),
    ("Newcastle", "north-east", "Marmot City"),
    ("Gateshead", "north-east", "Marmot City"),
    ("Bristol", "south-west", "Marmot City"),
    ("Somerset", "south-west", "Marmot County"),
    ("South West", "south-west", "Marmot Region"),
    ("Leeds", "yorkshire-humber", "Marmot City"),
    ("Bradford", "yorkshire-humber", "Marmot City"),
    ("Sheffield", "yorkshire-humber", "Marmot City"),
    ("Gwent", "wales", "Marmot Region"),
    ("Cardiff", "wales", "Marmot City"),
    ("Luton", "east-of-england", "Marmot Town"),
    ("Norwich", "east-of-england", "Marmot City"),
    ("Waltham Forest", "london", "Marmot Borough"),
    ("Newham", "london", "Marmot Borough"),
    ("Lambeth", "london", "Marmot Borough"),
    ("Cheshire and Merseyside", "north-west", "Marmot Region"),
    ("Lancashire and Cumbria", "north-west", "Marmot Region"),
    ("Greater Manchester", "north-west", "Marmot City Region"),
    ("Nottingham", "east-midlands", "Marmot City"),
    ("Leicester", "east-midlands", "Marmot City"),
    ("Derby", "east-midlands", "Marmot City"),
    ("Kent", "south-east", "Marmot County"),
    ("Southampton", "south-east", "Marmot City"),
    ("Glasgow", "scotland", "Marmot City"),
    ("Dundee", "scotland", "Marmot City"),
    ("Belfast", "northern-ireland", "Marmot City"),
    ("Hong Kong", "outside-uk", "International partner"),
]
PEOPLE = [
    "Sir Michael Marmot",
    "Professor Bola Owolabi",
    "Professor Kevin Fenton",
    "Jamaica Noferini",
    "Dr Amara Okafor",
    "Professor Rhys Llewellyn",
    "Dr Siobhan Kerr",
    "Priya Raman",
    "Tomasz Nowak",
    "Eilidh MacLeod",
]
THEMES = [
    "child poverty",
    "fuel poverty",
    "good work",
    "early years",
    "housing quality",
    "social prescribing",
    "green spaces",
    "healthy high streets",
    "youth services",
    "adult skills",
    "air quality",
    "food insecurity",
    "digital inclusion",
    "anchor institutions",
    "racial health equity",
    "community wealth building",
]


def sample_sentences() -> list[str]:
    """The sample issue's Markdown sentences: realistic words and lengths to vary."""
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    texts: list[str] = [data.get("intro") or ""]

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in ("body", "summary", "updates", "text") and isinstance(inner, str):
                    texts.append(inner)
                else:
                    walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(data["sections"])
    flat = " ".join(" ".join(text.split()) for text in texts)
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z*])", flat)]
    return [s for s in sentences if len(s) > 40 and not s.startswith("-")]


class Generator:
    """Deterministic issues: the same seed gives the same 120 files."""

    def __init__(self, seed: int, vocabulary: Vocabulary) -> None:
        self.random = random.Random(seed)
        self.sentences = sample_sentences()
        self.topics = list(vocabulary.topics)
        self.published: list[dict[str, object]] = []

    def text(self, sentences: int, place: str | None = None) -> str:
        r = self.random
        chosen = []
        for _ in range(sentences):
            sentence = r.choice(self.sentences)
            if place and r.random() < 0.5:
                sentence = sentence.replace("Gwent", place).replace("Leeds", place).replace("Luton", place)
            if r.random() < 0.4:
                sentence += f" The work on {r.choice(THEMES)} involved {r.randint(12, 480)} partners."
            if r.random() < 0.25:
                sentence += f" {r.choice(PEOPLE)} spoke at the launch in {r.choice(PLACES)[0]}."
            chosen.append(sentence)
        paragraphs = [" ".join(chosen[i : i + 3]) for i in range(0, len(chosen), 3)]
        return "\n\n".join(paragraphs) + "\n"

    def tags(self, most: int = 3) -> list[str]:
        return self.random.sample(self.topics, self.random.randint(0, most))

    def issue(self, day: dt.date, number: int) -> dict[str, object]:
        r = self.random
        month = f"{day:%B %Y}"
        theme = r.choice(THEMES)
        sections: list[dict[str, object]] = [
            {
                "kind": "story",
                "label": "Lead story",
                "title": f"{theme.capitalize()}: what {r.choice(PLACES)[0]} learned in {month}",
                "body": self.text(r.randint(8, 14)),
                "links": [{"label": "Read more", "url": f"https://example.org/news/{number}/lead"}],
                "topics": self.tags(),
            },
            {
                "kind": "story",
                "label": "Feature",
                "title": f"Building health equity through {r.choice(THEMES)} ({number})",
                "body": self.text(r.randint(6, 12)),
                "topics": self.tags(),
            },
        ]
        new = []
        for index in range(r.randint(1, 3)):
            place = r.choice(PLACES)[0]
            publication = {
                "title": f"{r.choice(THEMES).capitalize()} in {place}: report {number}.{index + 1}",
                "url": f"https://example.org/reports/{number}-{index + 1}",
                "summary": self.text(r.randint(3, 5), place),
                "date": day - dt.timedelta(days=r.randint(1, 40)),
                "authors": ["UCL Institute of Health Equity"],
                "topics": self.tags(),
            }
            if r.random() < 0.3:
                publication["commissioner"] = f"{place} Council"
            new.append(publication)
        sections.append({"kind": "publications", "heading": "New publications", "items": new})
        places = r.sample(PLACES, r.randint(5, 8))
        sections.append(
            {
                "kind": "places",
                "heading": "Marmot Places",
                "intro": "Ongoing implementation work",
                "items": [
                    {
                        "place": name,
                        "region": region,
                        "kind": kind,
                        "updates": self.text(r.randint(2, 6), name),
                        "link": {
                            "label": f"{name} {kind}",
                            "url": f"https://example.org/places/{number}/{index}",
                        },
                        "topics": ["marmot-places", *self.tags(2)],
                    }
                    for index, (name, region, kind) in enumerate(places)
                ],
            }
        )
        sections.append(
            {
                "kind": "collaborations",
                "heading": "Other collaborations",
                "items": [
                    {
                        "title": f"{r.choice(THEMES).capitalize()} with {r.choice(PLACES)[0]} partners",
                        "partners": r.sample(PEOPLE, 2),
                        "body": self.text(r.randint(3, 5)),
                        "topics": self.tags(),
                    }
                    for _ in range(r.randint(2, 5))
                ],
            }
        )
        if r.random() < 0.6:
            sections.append(
                {
                    "kind": "events",
                    "items": [
                        {
                            "title": f"Network webinar: {r.choice(THEMES)}",
                            "start": f"{day + dt.timedelta(days=r.randint(7, 40))} 10:00",
                            "location": f"Online and in {r.choice(PLACES)[0]}",
                            "url": f"https://example.org/events/{number}/{index}",
                            "summary": self.text(1),
                            "topics": ["network-events"],
                        }
                        for index in range(r.randint(1, 3))
                    ],
                }
            )
        for label in r.sample(
            ["Register for the newsletter", "Join the Network", "Watch on YouTube"], r.randint(1, 3)
        ):
            sections.append(
                {
                    "kind": "call_to_action",
                    "text": self.text(1),
                    "label": label,
                    "url": "https://example.org/join",
                }
            )
        if self.published and r.random() < 0.5:
            previous = r.sample(self.published, min(len(self.published), r.randint(1, 3)))
            sections.append({"kind": "publications", "heading": "Previous publications", "items": previous})
        self.published.extend(new)
        sections.append(
            {"kind": "contact", "text": "Queries? Write to the Network team.", "email": "network@example.org"}
        )
        sections.append(
            {
                "kind": "links",
                "items": [{"label": "IHE reports", "url": "https://example.org/reports"}],
            }
        )
        return {
            "title": f"{month} Newsletter",
            "date": day,
            "subject": f"{theme.capitalize()} and news from Marmot Places",
            "preheader": f"The {month} newsletter: {theme}, new reports and place updates.",
            "editor": r.choice(PEOPLE),
            "archive": True,
            "intro": self.text(2),
            "sections": sections,
        }


class _IssueDumper(yaml.SafeDumper):
    """Writes Markdown fields as `|` blocks, as editors write them (and as the sample is written)."""


_IssueDumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None
    ),
)


def generate(project: Path, count: int, seed: int, vocabulary: Vocabulary) -> None:
    """Write `count` monthly issues from January 2014 into `project/issues/`."""
    generator = Generator(seed, vocabulary)
    start = dt.date(2014, 1, 1)
    for number in range(count):
        year, month = start.year + (number // 12), (number % 12) + 1
        day = dt.date(year, month, 15 + generator.random.randint(0, 10))
        folder = project / "issues" / f"{year}-{month:02d}"
        folder.mkdir(parents=True)
        text = yaml.dump(
            generator.issue(day, number + 1),
            Dumper=_IssueDumper,
            sort_keys=False,
            allow_unicode=True,
            width=80,
        )
        (folder / "issue.yaml").write_text(text, encoding="utf-8")


def timed(action: Callable[[], object]) -> float:
    """Seconds `action` takes with Markdown's cache emptied first, so every run starts cold."""
    markdown.to_html.cache_clear()
    markdown.to_text.cache_clear()
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--issues", type=int, default=120)
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    if args.runs < 1 or args.issues < 1:
        parser.error("--runs and --issues must be at least 1")

    with tempfile.TemporaryDirectory(prefix="archive-bench-") as temp:
        project = Path(temp)
        settings = Settings(
            issues_dir=project / "issues",
            theme_dir=ROOT / "templates",
            vocabulary_dir=ROOT / "subscribers",
            database_url=f"sqlite:///{project / 'none.sqlite3'}",
        )
        vocabulary = Vocabulary.load(settings.vocabulary_dir)
        generate(project, args.issues, args.seed, vocabulary)
        size = sum(p.stat().st_size for p in (project / "issues").rglob("issue.yaml"))
        print(f"generated {args.issues} issues ({size / 1024:.0f} KB of YAML, seed {args.seed}) in {project}")

        out = project / "public"
        build(settings, out, sent={})  # warm-up: imports, templates compiled
        references, builds = [], []
        for _ in range(args.runs):
            references.append(timed(lambda: collect(settings, vocabulary, sent={})))
            builds.append(timed(lambda: build(settings, out, sent={})))
        report = build(settings, out, sent={})

        files = [p for p in (out / "archive").rglob("*") if p.is_file()]
        site_bytes = sum(p.stat().st_size for p in files)
        largest = max(files, key=lambda p: p.stat().st_size)
        reference, full = statistics.median(references), statistics.median(builds)
        index_bytes = (out / "archive" / "search.json").stat().st_size
        print(f"{'reference: load + validate':<30} median {reference:6.2f} s  (runs: {_list(references)})")
        print(f"{'full build':<30} median {full:6.2f} s  (runs: {_list(builds)})")
        print(f"{'ratio build / reference':<30} {full / reference:6.2f}x")
        print(
            f"site: {report.issues} issues, {len(files)} files, {site_bytes / 1024 / 1024:.1f} MB; largest "
            f"{largest.relative_to(out)} {largest.stat().st_size / 1024:.0f} KB"
        )
        print(f"search index: {index_bytes / 1024:.0f} KB ({index_bytes:,} bytes)")
        print(_target(f"full build under {BUILD_TARGET_SECONDS:.0f} s", full < BUILD_TARGET_SECONDS))
        print(_target("search index under 2 MB", index_bytes < INDEX_TARGET_BYTES))
    return 0


def _list(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def _target(label: str, met: bool) -> str:
    return f"target {label}: {'met' if met else 'NOT met'}"


if __name__ == "__main__":
    sys.exit(main())
