"""Small issue files for tests: the head every issue needs, a story, and a draft written into a folder."""

from __future__ import annotations

from pathlib import Path

# Lines 1-6; sections start on line 7.
HEAD = """\
title: T
date: 2023-11-01
subject: S
preheader: P
editor: E
sections:
"""

STORY = """\
  - kind: story
    title: A story
    body: Text.
"""


def write_draft(folder: Path, slug: str, text: str) -> Path:
    """`issues/SLUG/issue.yaml` in a network's folder, as an editor saves it; returns its path."""
    issue = folder / "issues" / slug / "issue.yaml"
    issue.parent.mkdir(parents=True, exist_ok=True)
    issue.write_text(text, encoding="utf-8")
    return issue
