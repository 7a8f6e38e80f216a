"""The two kinds of failure a user can fix themselves.

Anything raised as one of these is printed as a plain message and ends the
command with exit code 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class UserError(Exception):
    """A mistake in input or setup, described in words the user can act on."""


def display_path(path: Path | str) -> str:
    """Show a path relative to the working directory when it lies below it.

    Editors read `issues/2023-10/issue.yaml:12`, not a long absolute path.
    """
    path = Path(path)
    try:
        return os.path.relpath(path) if path.is_absolute() and Path.cwd() in path.parents else str(path)
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file, pointing at the line an editor should open."""

    file: str
    line: int | None
    where: str
    message: str

    def __str__(self) -> str:
        location = f"{self.file}:{self.line}" if self.line else self.file
        return f"{location}: {self.where}: {self.message}" if self.where else f"{location}: {self.message}"


class ProblemsFound(UserError):
    """Every problem found in one pass, so the editor can fix them all at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


class FieldProblem(UserError):
    """What is wrong with one field of a desk form (`field`: its name), to show next to it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
