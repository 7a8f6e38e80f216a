"""Bulk inserts straight to the driver, for imports of a million rows.

SQLAlchemy's `connection.execute(insert(table), rows)` spends ~8 µs a row
building parameters, which on its own would use most of a one-minute budget
for a million members and their topics, lists and consent records. Here the
statement is built once, each value goes through the dialect's own bind
processor (dates as SQLite stores them, JSON as text), and the rows go to
the driver's `executemany` as tuples. Same tables, same types, a fifth of
the time. On PostgreSQL (psycopg) the rows go in with COPY instead.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Boolean, Connection, DateTime, Dialect, Enum, Table
from sqlalchemy.types import TypeEngine


class BulkInsert:
    """`INSERT INTO table (columns) VALUES (...)` for many rows given as tuples in column order."""

    def __init__(self, connection: Connection, table: Table, columns: Sequence[str]) -> None:
        dialect = connection.dialect
        quote = dialect.identifier_preparer.quote
        mark = placeholder(dialect)
        self.connection = connection
        self.copy_sql = (
            f"COPY {quote(table.name)} ({', '.join(quote(name) for name in columns)}) FROM STDIN"
            if dialect.name == "postgresql" and dialect.driver == "psycopg"
            else None
        )
        self.sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in columns)}) "
            f"VALUES ({', '.join([mark] * len(columns))})"
        )
        # (column index, processor, remember results?) for the columns whose values need converting.
        # Dates, enums and flags repeat a lot (one `now` per batch), so their conversions are remembered.
        self.processors: list[tuple[int, Callable[[Any], Any], bool]] = []
        for index, name in enumerate(columns):
            column_type = table.c[name].type
            process = column_type._cached_bind_processor(dialect)
            if process is not None:
                self.processors.append((index, process, isinstance(column_type, DateTime | Enum | Boolean)))

    def __call__(self, rows: Iterable[Sequence[Any]]) -> None:
        values = list(rows)
        if not values:
            return
        if self.processors:
            columns = list(zip(*values, strict=True))
            for index, process, remember in self.processors:
                if remember:
                    columns[index] = tuple(map(_Remembered(process).__getitem__, columns[index]))
                else:
                    columns[index] = tuple(None if v is None else process(v) for v in columns[index])
            values = list(zip(*columns, strict=True))
        if self.copy_sql is None:
            self.connection.exec_driver_sql(self.sql, values)
            return
        # PostgreSQL: COPY is several times faster than any INSERT, and runs in the same transaction.
        cursor = self.connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(self.copy_sql) as copy:
            for row in values:
                copy.write_row(row)


def placeholder(dialect: Dialect) -> str:
    """The driver's mark for a positional parameter: `?` for sqlite3, `%s` for psycopg."""
    return "?" if dialect.paramstyle == "qmark" else "%s"


def bind_processor(column_type: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """How the dialect hands the driver a value of this type (dates as SQLite stores them, enums as
    their values); identity where the driver takes the value as it is."""
    process = column_type._cached_bind_processor(dialect)
    if process is None:
        return lambda value: value.value if isinstance(value, enum.Enum) else value
    return process


class _Remembered(dict):
    """value -> processed value, each distinct value converted once (None stays None)."""

    def __init__(self, process: Callable[[Any], Any]) -> None:
        super().__init__({None: None})
        self.process = process

    def __missing__(self, value: Any) -> Any:
        self[value] = converted = self.process(value)
        return converted


class KeyLookup:
    """`SELECT columns FROM table WHERE key IN (...)` for a batch of keys, without building an
    expanding SQLAlchemy statement per batch; results pass through the dialect's result processors."""

    def __init__(self, connection: Connection, table: Table, key: str, columns: Sequence[str]) -> None:
        dialect = connection.dialect
        quote = dialect.identifier_preparer.quote
        self.connection = connection
        self.postgres = dialect.name == "postgresql"
        self.prefix = (
            f"SELECT {', '.join(quote(name) for name in columns)} FROM {quote(table.name)} WHERE {quote(key)}"
        )
        self.placeholder = placeholder(dialect)
        self.processors = [
            (index, process)
            for index, name in enumerate(columns)
            if (process := table.c[name].type._cached_result_processor(dialect, None)) is not None
        ]

    def __call__(self, keys: Sequence[Any]) -> list[tuple[Any, ...]]:
        if not keys:
            return []
        if self.postgres:
            rows = self.connection.exec_driver_sql(f"{self.prefix} = ANY(%s)", (list(keys),)).all()
        else:
            marks = ", ".join([self.placeholder] * len(keys))
            rows = self.connection.exec_driver_sql(f"{self.prefix} IN ({marks})", tuple(keys)).all()
        if not self.processors:
            return [tuple(row) for row in rows]
        result = []
        for row in rows:
            values = list(row)
            for index, process in self.processors:
                values[index] = process(values[index])
            result.append(tuple(values))
        return result
