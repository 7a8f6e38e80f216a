"""The shared words of the network: topics, UK regions, sectors, mailing lists and kinds of place.

Issue files, subscriber forms, imports and segments all use these slugs, so
they live in one place (`subscribers/*.yaml`) and are read by this one module,
which also says, in words an editor understands, why a word or a language tag is refused.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.errors import Problem, ProblemsFound, UserError, display_path
from newsletter.yamlfile import load_yaml

FILES = ("topics", "regions", "sectors", "lists")
# Read when present: a project made before `place_kinds.yaml` existed takes any kind of place.
OPTIONAL_FILES = ("place_kinds",)
# BCP 47 (RFC 5646) without the registry: a language of 2-3 letters, then optionally a script
# (4 letters), a region (2 letters or 3 digits), variants (5-8 letters or digits, or a digit and 3 more),
# extensions (a single letter and 2-8 more) and a private part (x-...). Case does not matter.
BCP47 = re.compile(
    r"(?P<language>[a-z]{2,3})"
    r"(?:-(?P<script>[a-z]{4}))?"
    r"(?:-(?P<region>[a-z]{2}|[0-9]{3}))?"
    r"(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*"
    r"(?:-[0-9a-wyz](?:-[a-z0-9]{2,8})+)*"
    r"(?:-x(?:-[a-z0-9]{1,8})+)?",
    re.IGNORECASE,
)
# Language names editors write instead of a tag, and the tag to offer (British English for English).
LANGUAGE_NAMES = {
    "english": "en-GB",
    "british english": "en-GB",
    "welsh": "cy",
    "cymraeg": "cy",
    "gaelic": "gd",
    "scottish gaelic": "gd",
    "irish": "ga",
    "scots": "sco",
    "cornish": "kw",
    "polish": "pl",
    "urdu": "ur",
    "punjabi": "pa",
    "bengali": "bn",
    "arabic": "ar",
    "french": "fr",
    "german": "de",
    "spanish": "es",
    "portuguese": "pt",
    "romanian": "ro",
}
# How many of the closest words an unknown word's message lists.
CLOSEST = 4
# From this likeness (0 to 1) on, the closest word is offered as "did you mean".
LIKELY = 0.6


@dataclass(frozen=True)
class Vocabulary:
    """Each word list maps slug to the name people see, in the order they are shown."""

    directory: Path
    topics: dict[str, str]
    regions: dict[str, str]
    sectors: dict[str, str]
    lists: dict[str, str]
    # Empty when the project has no place_kinds.yaml: then any kind of place is taken.
    place_kinds: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> Vocabulary:
        """Read each word list (`topics.yaml`, `regions.yaml`, ...) from `directory`."""
        lists, problems = {}, []
        present = [name for name in OPTIONAL_FILES if (directory / f"{name}.yaml").exists()]
        for name in (*FILES, *present):
            words, found = _read_words(directory / f"{name}.yaml")
            lists[name] = words
            problems.extend(found)
        if problems:
            raise ProblemsFound(problems)
        return cls(directory=directory, **lists)

    def lookup(self, kind: str, word: str) -> str | None:
        """The slug for `word` in one word list (`topics`, `regions`...), given as slug or name, any case."""
        known: dict[str, str] = getattr(self, kind)
        if word in known:
            return word
        folded = word.strip().casefold()
        for slug, name in known.items():
            if folded in (slug.casefold(), name.casefold()):
                return slug
        return None

    def closest(self, kind: str, word: str) -> list[tuple[str, float]]:
        """The words of one list most like `word`, best first, each with its likeness (0 to 1).

        Both the slug and the name count, so `North East England` finds `north-east` (North East);
        a word that holds all of a name's words, or whose words a name holds, comes close too.
        """
        known: dict[str, str] = getattr(self, kind)
        scored = [(slug, max(_likeness(word, slug), _likeness(word, name))) for slug, name in known.items()]
        return sorted(scored, key=lambda pair: -pair[1])[:CLOSEST]

    def unknown(self, kind: str, word: str) -> str:
        """Why `word` is refused: the likeliest word, the closest few with their names, and the file."""
        known: dict[str, str] = getattr(self, kind)
        plural = kind.replace("_", " ")
        closest = self.closest(kind, word)
        likely = f" (did you mean '{closest[0][0]}'?)" if closest and closest[0][1] >= LIKELY else ""
        named = ", ".join(f"{slug} ({known[slug]})" for slug, _ in closest)
        listed_in = display_path(self.directory / f"{kind}.yaml")
        shown = word.strip() if len(word.strip()) <= 60 else word.strip()[:59] + "…"
        return (
            f"unknown {plural.removesuffix('s')} '{shown}'{likely}; "
            + (f"closest {plural}: {named}; " if named else "")
            + f"all {plural} are listed in {listed_in}"
        )

    def markdown(self) -> str:
        """The words an issue may use, as Markdown tables (slug and name) for docs/editing-issues.md."""
        parts = []
        for kind, title in VOCABULARY_DOCS.items():
            words: dict[str, str] = getattr(self, kind)
            rows = "\n".join(f"| `{slug}` | {name} |" for slug, name in words.items())
            parts.append(f"### {title}\n\n| slug | name |\n| --- | --- |\n{rows}\n")
        return "\n".join(parts)


# The word lists the editors' guide shows, with their headings.
VOCABULARY_DOCS = {
    "topics": "Topics (`subscribers/topics.yaml`)",
    "regions": "Regions (`subscribers/regions.yaml`)",
    "sectors": "Sectors (`subscribers/sectors.yaml`)",
    "place_kinds": "Kinds of place (`subscribers/place_kinds.yaml`)",
}
DOCS_START = "<!-- vocabulary:start -->"
DOCS_NOTE = (
    "<!-- written from subscribers/*.yaml by `newsletter vocabulary --update FILE`: edit those files -->"
)
DOCS_END = "<!-- vocabulary:end -->"


def vocabulary_block(document: str) -> str | None:
    """The text between `document`'s vocabulary markers, or None if it has none."""
    _, start, rest = document.partition(DOCS_START)
    block, end, _ = rest.partition(DOCS_END)
    return block if start and end else None


def update_vocabulary_block(path: Path, vocabulary: Vocabulary) -> None:
    """Rewrite the word lists between the vocabulary markers of the Markdown file `path`."""
    document = path.read_text(encoding="utf-8")
    if vocabulary_block(document) is None:
        raise UserError(
            f"{display_path(path)}: has no '{DOCS_START}' ... '{DOCS_END}' lines to write between"
        )
    before, _, rest = document.partition(DOCS_START)
    after = rest.partition(DOCS_END)[2]
    block = f"{DOCS_START}\n{DOCS_NOTE}\n\n{vocabulary.markdown()}\n{DOCS_END}"
    path.write_text(f"{before}{block}{after}", encoding="utf-8")


def _words_of(text: str) -> str:
    """`North-East  England` -> `north east england`: case, hyphens and punctuation aside."""
    return " ".join(re.sub(r"[^\w]+|_", " ", text.casefold()).split())


def _likeness(word: str, candidate: str) -> float:
    """How alike two words are (0 to 1): their letters, or, as much, the share of words one holds of
    the other (`Greater London` holds all of `London`)."""
    typed, known = _words_of(word), _words_of(candidate)
    letters = difflib.SequenceMatcher(None, typed, known).ratio()
    typed_words, known_words = set(typed.split()), set(known.split())
    if not typed_words or not known_words:
        return letters
    shared = len(typed_words & known_words) / min(len(typed_words), len(known_words))
    return max(letters, (letters + shared) / 2)


def language_tag(text: str) -> str | None:
    """`text` as a BCP 47 language tag in its usual case (`EN-gb` -> `en-GB`), or None if it is not one."""
    text = text.strip()
    if not BCP47.fullmatch(text):
        return None
    language, *rest = text.split("-")
    shaped = [language.lower()]
    for part in rest:
        if any(len(earlier) == 1 for earlier in shaped):  # inside an extension or the private part
            shaped.append(part.lower())
        elif len(part) == 4 and part.isalpha():  # a script: Latn
            shaped.append(part.title())
        elif len(part) == 2:  # a region: GB
            shaped.append(part.upper())
        else:
            shaped.append(part.lower())
    return "-".join(shaped)


def language_hint(text: str) -> str:
    """What to add to "not a language tag" for `text`: a likely tag (`English` -> en-GB, `en-gb-cy` ->
    en-GB, the longest start that is a tag) and, for a text written like a tag, how tags are made."""
    suggestion = LANGUAGE_NAMES.get(_words_of(text))
    parts = text.strip().split("-")
    for end in range(len(parts) - 1, 0, -1):
        if suggestion:
            break
        suggestion = language_tag("-".join(parts[:end]))
    hint = f" (did you mean {suggestion}?)" if suggestion else ""
    if len(parts) > 1:
        hint += (
            "; a tag is a language of 2 or 3 letters (en), then, each after a '-' and only if needed, "
            "a script of 4 letters (Latn), a region of 2 letters (GB) and variants of 5 to 8 letters or digits"
        )
    return hint


def _read_words(path: Path) -> tuple[dict[str, str], list[Problem]]:
    document = load_yaml(path)
    problems = document.problems()
    words: dict[str, str] = {}
    entries = document.data if isinstance(document.data, list) else None
    if entries is None:
        return words, [Problem(document.file, 1, "", "must be a list of '- slug: ... name: ...' entries")]
    for index, entry in enumerate(entries):
        line = document.line_of((index,))
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("slug"), str)
            and isinstance(entry.get("name"), str)
        ):
            problems.append(Problem(document.file, line, f"[{index + 1}]", "needs a 'slug' and a 'name'"))
        elif entry["slug"] in words:
            problems.append(Problem(document.file, line, entry["slug"], "is listed twice"))
        else:
            words[entry["slug"]] = entry["name"]
    return words, problems
