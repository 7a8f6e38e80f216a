"""The one CSV writer for every file we produce (exports, import reports): safe to open in a spreadsheet.

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (and, in some, a tab or carriage
return) as a formula: `=HYPERLINK("http://evil","x")` from a member's name or a rejected row would
become a live link in the office's copy of Excel. Every cell written here that starts like that gets
a leading apostrophe, which spreadsheets show as text; the importer removes it again, so an export
can be imported back unchanged.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """Make a cell safe to open in a spreadsheet: formula-like text is prefixed with an apostrophe."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


class Writer:
    """`csv.writer` as Excel reads it (CRLF lines), with every cell neutralised; numbers become text."""

    def __init__(self, out: IO[str]) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n")

    def writerow(self, cells: Iterable[Any]) -> None:
        self._writer.writerow([neutralise("" if cell is None else str(cell)) for cell in cells])


def writer(out: IO[str]) -> Writer:
    """The writer for a CSV file we produce; `out` is opened with `newline=""`."""
    return Writer(out)
