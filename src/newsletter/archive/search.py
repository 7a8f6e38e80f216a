"""The search index: a compact JSON inverted index the archive's own small script queries.

Static files cannot answer a query, so the build does the work a search
server would: each word maps to the items that contain it (delta-encoded
item numbers), and each item keeps only what a result line shows. The
browser fetches one file, once, and matches words and word prefixes
(`search.js`). The same word rules are written in both places: accents folded,
lower case, split on anything that is not a letter or digit.
"""

from __future__ import annotations

import itertools
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable

from newsletter.render.edition import long_date
from newsletter.render.web import WebIssue
from newsletter.vocabulary import Vocabulary

VERSION = 1
_MARKUP = re.compile(r"\]\([^)]*\)|<[^>]*>|https?://\S+")
_SPLIT = re.compile(r"[^a-z0-9]+")
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "this",
        "to",
        "was",
        "were",
        "which",
        "will",
        "with",
    ]
)


def words(text: str) -> list[str]:
    """The searchable words of `text`, as `search.js` splits a query: `Môn's` -> `mon`, `s` dropped."""
    folded = unicodedata.normalize("NFKD", _MARKUP.sub(" ", text))
    folded = "".join(char for char in folded if not unicodedata.combining(char)).lower()
    return [word for word in _SPLIT.split(folded) if len(word) > 1 and word not in STOP_WORDS]


def index(issues: Iterable[WebIssue], vocabulary: Vocabulary) -> bytes:
    """The index as UTF-8 JSON: `issues` [slug, title, date as shown], `docs` [issue, anchor, title, kind],
    `terms` word -> item numbers as gaps (3, 5, 9 written as 3, 2, 4)."""
    issue_rows: list[list[str]] = []
    docs: list[list[object]] = []
    postings: dict[str, list[int]] = defaultdict(list)

    def add(doc: list[object], texts: Iterable[str]) -> None:
        number = len(docs)
        docs.append(doc)
        for word in dict.fromkeys(word for text in texts for word in words(text)):
            postings[word].append(number)

    for web in issues:
        issue = web.issue
        position = len(issue_rows)
        issue_rows.append([issue.slug, issue.title, long_date(issue.date)])
        add(
            [position, "", issue.title, "Issue"],
            (issue.title, issue.subject, issue.preheader, issue.intro or ""),
        )
        for section in web.sections:
            for item in section.items:
                # Found by the names of its topics and region too: "housing" finds items tagged housing.
                tags = [vocabulary.topics.get(topic, "") for topic in item.topics]
                tags.append(vocabulary.regions.get(getattr(item.item, "region", ""), ""))
                add([position, item.anchor, item.title, item.label], (item.title, *item.sources, *tags))
    terms = {}
    for word in sorted(postings):
        numbers = postings[word]
        terms[word] = [numbers[0], *(b - a for a, b in itertools.pairwise(numbers))]
    data = {"v": VERSION, "issues": issue_rows, "docs": docs, "terms": terms}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
