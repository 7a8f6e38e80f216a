"""The reports as tables: what the desk shows beside each chart and offers as CSV, made once.

A report (the campaign's, the audience's, the comparison of campaigns) is a list of `Table`s, each a
caption, typed columns and rows of plain values. The desk page writes each as an HTML table, the
download writes the same rows as CSV (numbers as numbers, a rate as a percentage with one decimal,
through `csvsafe` so no cell is run as a formula), and the charts are drawn from the same values: a
figure and its table cannot disagree.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from newsletter import csvsafe

MISSING = "–"  # a value that does not apply (no rate without a denominator; no median without a time)


class Kind(StrEnum):
    """How a column's values read: counts get thousands separators, rates a percent sign."""

    TEXT = "text"
    COUNT = "count"
    PERCENT = "percent"  # a fraction, 0.25 is 25.0%
    SECONDS = "seconds"


@dataclass(frozen=True)
class Column:
    heading: str
    kind: Kind = Kind.COUNT

    @property
    def numeric(self) -> bool:
        return self.kind != Kind.TEXT

    def shown(self, value: object) -> str:
        """The value as the page shows it."""
        if value is None:
            return MISSING
        if self.kind == Kind.COUNT and isinstance(value, int | float):
            return f"{value:,.0f}"
        if self.kind == Kind.PERCENT and isinstance(value, int | float):
            return f"{100 * value:.1f}%"
        if self.kind == Kind.SECONDS and isinstance(value, int | float):
            return f"{value:.1f} s" if value < 10 else f"{value:,.0f} s"
        return str(value)

    def written(self, value: object) -> str:
        """The value as the CSV holds it: a plain number a spreadsheet can sum."""
        if value is None:
            return ""
        if self.kind == Kind.PERCENT and isinstance(value, int | float):
            return f"{100 * value:.1f}"
        if self.kind in (Kind.COUNT, Kind.SECONDS) and isinstance(value, float):
            return f"{value:.0f}"
        return str(value)

    @property
    def csv_heading(self) -> str:
        suffix = {Kind.PERCENT: " (%)", Kind.SECONDS: " (seconds)"}.get(self.kind, "")
        return self.heading + suffix


@dataclass(frozen=True)
class Table:
    """One table of a report; `name` names its CSV download (`domains` -> `...-domains.csv`)."""

    name: str
    title: str
    columns: tuple[Column, ...]
    rows: Sequence[tuple[object, ...]]
    note: str = ""  # what the figures count, in a sentence under the table
    empty: str = "Nothing to show yet."

    def column(self, index: int) -> list[object]:
        return [row[index] for row in self.rows]

    def csv(self) -> str:
        """The table as CSV (a header row, then one row each), safe to open in a spreadsheet."""
        out = io.StringIO()
        writer = csvsafe.writer(out)
        writer.writerow(column.csv_heading for column in self.columns)
        for row in self.rows:
            writer.writerow(column.written(value) for column, value in zip(self.columns, row, strict=True))
        return out.getvalue()


def text(heading: str) -> Column:
    return Column(heading, Kind.TEXT)


def count(heading: str) -> Column:
    return Column(heading, Kind.COUNT)


def percent(heading: str) -> Column:
    return Column(heading, Kind.PERCENT)


def seconds(heading: str) -> Column:
    return Column(heading, Kind.SECONDS)


def find(tables: Sequence[Table], name: str) -> Table | None:
    """The table called `name` among a report's, for its CSV download."""
    return next((table for table in tables if table.name == name), None)
