"""The shared words of the network: topics, UK regions and sectors.

Issue files, subscriber forms and segments all use these slugs, so they live
in one place (`subscribers/*.yaml`) and are read by this one module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from newsletter.errors import Problem, ProblemsFound
from newsletter.yamlfile import load_yaml

FILES = ("topics", "regions", "sectors")


@dataclass(frozen=True)
class Vocabulary:
    """Each word list maps slug to the name people see, in the order they are shown."""

    directory: Path
    topics: dict[str, str]
    regions: dict[str, str]
    sectors: dict[str, str]

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
