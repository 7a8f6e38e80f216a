"""YAML aliases: a few are fine, an alias bomb ("billion laughs") is refused at once, with its line.

Every test that feeds a bomb runs it in a child process with its memory capped and a timeout, so a
loader that expands the aliases fails the test instead of exhausting the machine.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from user_support import NEWSLETTER

MEMORY_CAP = 1024**3  # bytes of address space for the child; a normal `check` needs far less
PROMPT = 20  # seconds; the answer comes in about one, most of it Python starting up


def laughs(levels: int = 9, indent: str = "") -> str:
    """A 'billion laughs' document: each level is a list of nine aliases to the level before."""
    names = "abcdefghijklmnopqrstuvwxyz"
    lines = [f"{indent}{names[0]}: &{names[0]} [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels):
        aliases = ", ".join([f"*{names[level - 1]}"] * 9)
        lines.append(f"{indent}{names[level]}: &{names[level]} [{aliases}]")
    return "\n".join(lines) + "\n"


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run_capped(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("NEWSLETTER_")}
    started = time.monotonic()
    result = subprocess.run(
        args,
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=PROMPT * 3,
        preexec_fn=_cap_memory,
    )
    return result, time.monotonic() - started


def answered_promptly(result: subprocess.CompletedProcess[str], seconds: float) -> None:
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "MemoryError" not in result.stderr
    assert seconds < PROMPT, seconds


def bomb_issue(project: Path, slug: str = "bomb") -> None:
    folder = project / "issues" / slug
    folder.mkdir(parents=True)
    head = "title: T\ndate: 2023-11-01\nsubject: S\npreheader: P\neditor: E\n"
    (folder / "issue.yaml").write_text(head + laughs(), encoding="utf-8")


def test_an_alias_bomb_in_an_issue_is_refused_at_once_by_the_installed_check(tmp_path):
    bomb_issue(tmp_path)
    result, seconds = run_capped([str(NEWSLETTER), "check", "bomb"], tmp_path)
    answered_promptly(result, seconds)
    assert result.returncode == 1
    # lines 1-5 are the head; the aliases repeat more than 1,000 values at the first *c on line 9
    assert result.stdout.splitlines() == [
        "issues/bomb/issue.yaml:9: *c: aliases repeat too much here (1,729 values so far, at most 1,000); "
        "write the values out instead of repeating them"
    ]


def test_an_alias_bomb_in_an_archived_issue_stops_the_archive_build(tmp_path):
    bomb_issue(tmp_path)
    path = tmp_path / "issues" / "bomb" / "issue.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "archive: true\n", encoding="utf-8")
    result, seconds = run_capped([str(NEWSLETTER), "archive", "build", "--out", "site"], tmp_path)
    answered_promptly(result, seconds)
    assert result.returncode == 1
    assert "issues/bomb/issue.yaml:9: *c: aliases repeat too much here" in result.stdout + result.stderr


def load_in_child(tmp_path: Path, code: str) -> tuple[subprocess.CompletedProcess[str], float]:
    script = tmp_path / "load.py"
    script.write_text(textwrap.dedent(code), encoding="utf-8")
    return run_capped([sys.executable, str(script)], tmp_path)


def test_an_alias_bomb_in_segments_yaml_is_refused_at_once(tmp_path, repo_root):
    vocabulary = tmp_path / "subscribers"
    shutil.copytree(repo_root / "subscribers", vocabulary)
    (vocabulary / "segments.yaml").write_text("everyone:\n  lists: newsletter\n" + laughs(), encoding="utf-8")
    result, seconds = load_in_child(
        tmp_path,
        """
        from pathlib import Path
        from newsletter.audience.segments import Segments
        from newsletter.errors import ProblemsFound
        from newsletter.vocabulary import Vocabulary

        try:
            Segments.load(Path("subscribers"), Vocabulary.load(Path("subscribers")))
        except ProblemsFound as error:
            print(error)
        """,
    )
    answered_promptly(result, seconds)
    assert result.stdout.splitlines() == [
        "subscribers/segments.yaml:6: *c: aliases repeat too much here (1,729 values so far, at most 1,000); "
        "write the values out instead of repeating them"
    ]


def test_an_alias_bomb_in_a_vocabulary_file_is_refused_at_once(tmp_path, repo_root):
    vocabulary = tmp_path / "subscribers"
    shutil.copytree(repo_root / "subscribers", vocabulary)
    topics = (vocabulary / "topics.yaml").read_text(encoding="utf-8")
    (vocabulary / "topics.yaml").write_text(topics + "- slug: bomb\n  name: Bomb\n" + laughs(indent="  "))
    first_line = topics.count("\n") + 3
    result, seconds = load_in_child(
        tmp_path,
        """
        from pathlib import Path
        from newsletter.errors import ProblemsFound
        from newsletter.vocabulary import Vocabulary

        try:
            Vocabulary.load(Path("subscribers"))
        except ProblemsFound as error:
            print(error)
        """,
    )
    answered_promptly(result, seconds)
    assert result.stdout.splitlines() == [
        f"subscribers/topics.yaml:{first_line + 3}: *c: aliases repeat too much here (1,729 values so far, "
        "at most 1,000); write the values out instead of repeating them"
    ]


def test_the_installed_check_names_a_vocabulary_bomb_too(tmp_path, repo_root):
    vocabulary = tmp_path / "subscribers"
    shutil.copytree(repo_root / "subscribers", vocabulary)
    shutil.copytree(repo_root / "issues" / "2023-10", tmp_path / "issues" / "2023-10")
    (vocabulary / "regions.yaml").write_text(laughs(), encoding="utf-8")
    result, seconds = run_capped([str(NEWSLETTER), "check", "2023-10"], tmp_path)
    answered_promptly(result, seconds)
    assert result.returncode == 1
    assert "subscribers/regions.yaml:4: *c: aliases repeat too much here" in result.stdout


def test_a_few_aliases_in_an_issue_still_load(check_yaml):
    checked = check_yaml(
        """\
        title: November 2023 Newsletter
        date: 2023-11-01
        subject: News from the network
        preheader: What happened this month
        editor: E
        sections:
          - kind: publications
            items:
              - title: First report
                url: https://example.org/first
                summary: &summary A report on housing and health.
                date: 2023-10-01
                topics: &topics [housing, climate]
              - title: Second report
                url: https://example.org/second
                summary: *summary
                date: 2023-10-02
                topics: *topics
              - title: Third report
                url: https://example.org/third
                summary: *summary
                date: 2023-10-03
                topics: *topics
        """
    )
    assert checked.problems == []
    first, second, third = checked.issue.sections[0].items
    assert first.topics == second.topics == third.topics == ("housing", "climate")
    assert third.summary == "A report on housing and health."


def test_an_alias_to_a_whole_section_still_loads(check_yaml):
    checked = check_yaml(
        """\
        title: November 2023 Newsletter
        date: 2023-11-01
        subject: News from the network
        preheader: What happened this month
        editor: E
        sections:
          - &story
            kind: story
            title: A story
            body: Text.
          - *story
        """
    )
    assert checked.problems == []
    assert len(checked.issue.sections) == 2
