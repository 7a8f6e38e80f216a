"""The shared words of the network: topics, UK regions, sectors and mailing lists.

Issue files, subscriber forms, imports and segments all use these slugs, so
they live in one place (`subscribers/*.yaml`) and are read by this one module.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from newsletter.errors import Problem, ProblemsFound, display_path
from newsletter.yamlfile import load_yaml

FILES = ("topics", "regions", "sectors", "lists")
# A BCP 47 language tag as issues and members use them: en-GB, cy, pa-Guru-IN.
LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


@dataclass(frozen=True)
class Vocabulary:
    """Each word list maps slug to the name people see, in the order they are shown."""

    directory: Path
    topics: dict[str, str]
    regions: dict[str, str]
    sectors: dict[str, str]
    lists: dict[str, str]

    @classmethod
    def load(cls, directory: Path) -> Vocabulary:
        """Read `topics.yaml`, `regions.yaml` and `sectors.yaml` from `directory`."""
        lists, problems = {}, []
        for name in FILES:
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

    def unknown(self, kind: str, word: str) -> str:
        """Why `word` is refused, with the nearest slug and the file that lists them."""
        known: dict[str, str] = getattr(self, kind)
        noun = kind.removesuffix("s")
        hint = difflib.get_close_matches(word.strip().lower().replace(" ", "-"), list(known), n=1, cutoff=0.6)
        suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
        listed_in = display_path(self.directory / f"{kind}.yaml")
        shown = word.strip() if len(word.strip()) <= 60 else word.strip()[:59] + "…"
        return f"unknown {noun} '{shown}'{suggestion}; the {kind} are listed in {listed_in}"


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
