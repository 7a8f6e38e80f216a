"""Reading an editor's CSV file: refuse what is not CSV text, find the delimiter and the columns,
and give each row with its line, its cells stripped and our export's formula mark taken off."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from newsletter.errors import UserError, display_path

SNIFF_BYTES = 64 * 1024
ALIASES = {
    "e-mail": "email",
    "email_address": "email",
    "e-mail_address": "email",
    "full_name": "name",
    "organization": "organisation",
    "org": "organisation",
    "topic": "topics",
    "list": "lists",
}
FORMULA_MARK = re.compile(r"^'(?=[=+\-@\t\r])")


def check_file(path: Path) -> None:
    """Refuse, before touching the database, a file that is missing, binary or not UTF-8 at the start."""
    shown = display_path(path)
    if not path.exists():
        raise UserError(f"{shown}: no such file")
    if path.is_dir():
        raise UserError(f"{shown}: is a folder, not a CSV file")
    try:
        with path.open("rb") as raw:
            head = raw.read(SNIFF_BYTES)
    except OSError as error:
        raise UserError(f"{shown}: cannot be read: {error.strerror}") from None
    if head.startswith(b"PK\x03\x04"):
        raise UserError(f"{shown}: is a spreadsheet workbook, not CSV; in Excel use Save As > 'CSV UTF-8'")
    if b"\x00" in head:
        raise UserError(f"{shown}: is not a text file (it contains NUL bytes); export it as CSV UTF-8")
    _check_utf8(head, shown)
    if not head.strip():
        raise UserError(f"{shown}: is empty")


def _check_utf8(head: bytes, shown: str) -> None:
    try:
        head.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 4:  # not merely a character cut at the end of the sample
            line = head[: error.start].count(b"\n") + 1
            raise UserError(
                f"{shown}:{line}: is not UTF-8 text; nothing was imported. In Excel use Save As > 'CSV UTF-8'"
            ) from None


class Rows:
    """The rows of an open CSV file (text, `newline=""`), header first.

    `line` is the file line of the row last read, for a message about a file that stops being
    UTF-8 or CSV part-way through.
    """

    def __init__(self, text: IO[str]) -> None:
        self.text = text
        self.line = 1
        self.dialect: type[csv.Dialect] = csv.excel

    def header(self, path: Path) -> list[str]:
        """The column names, lower case with aliases resolved; a file without `email` is refused."""
        header_line = self.text.readline()
        self.dialect = dialect(header_line)
        names = next(csv.reader([header_line], self.dialect), [])
        columns = [ALIASES.get(column(name), column(name)) for name in names]
        if "email" not in columns:
            found = ", ".join(name.strip() for name in names if name.strip()) or "none"
            raise UserError(f"{display_path(path)}:1: no 'email' column (columns found: {found})")
        duplicates = sorted({c for c in columns if c and columns.count(c) > 1})
        if duplicates:
            raise UserError(f"{display_path(path)}:1: the column '{duplicates[0]}' appears twice")
        return columns

    def __iter__(self) -> Iterator[tuple[int, list[str], list[str]]]:
        """Each row that is not blank (spreadsheets end with blank lines), as (the line it starts on,
        its cells as written, its cells stripped and unmarked). A quoted cell may span lines."""
        rows = csv.reader(self.text, self.dialect)
        line = 2
        for cells in rows:
            self.line = line
            if "".join(cells).strip():
                stripped = [cell.strip() for cell in cells]
                if "\x00'" in "\x00" + "\x00".join(stripped):  # some cell starts with an apostrophe
                    stripped = [unmark(cell) for cell in stripped]
                yield line, cells, stripped
            line = rows.line_num + 2  # line_num counts lines read after the header


def dialect(header_line: str) -> type[csv.Dialect]:
    """Comma, semicolon or tab, whichever the header uses most (Excel writes ';' in many locales)."""
    counts = {delimiter: header_line.count(delimiter) for delimiter in (",", ";", "\t")}
    delimiter = max(counts, key=lambda d: counts[d])

    class Dialect(csv.excel):
        pass

    Dialect.delimiter = delimiter if counts[delimiter] else ","
    return Dialect


def column(name: str) -> str:
    """A header cell as a column name: `E-mail Address ` -> `e-mail_address`."""
    return re.sub(r"[\s]+", "_", name.strip().lower())


def unmark(cell: str) -> str:
    """Drop the apostrophe our export puts before formula-like text (`'=SUM` -> `=SUM`)."""
    return FORMULA_MARK.sub("", cell) if cell.startswith("'") else cell
