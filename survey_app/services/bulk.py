"""Bulk writes inside the current transaction: COPY on PostgreSQL, executemany elsewhere."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum

import numpy as np
from sqlalchemy import Table, insert

from ..extensions import db


def _copy_value(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def bulk_insert(table: Table, rows: Sequence[dict] | Iterable[dict], *,
                columns: Sequence[str] | None = None, chunk: int = 5000) -> int:
    """Insert many rows into `table` in the session's transaction (all or nothing).

    PostgreSQL uses COPY (psycopg 3), an order of magnitude faster than INSERT; other engines
    use executemany in chunks. Rows are dicts keyed by column name.
    """
    connection = db.session.connection()
    it = iter(rows)
    first = next(it, None)
    if first is None:
        return 0
    columns = list(columns or first.keys())
    count = 0
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        names = ", ".join(f'"{c}"' for c in columns)
        with raw.cursor() as cursor, cursor.copy(
            f'COPY "{table.name}" ({names}) FROM STDIN'  # noqa: S608 - names from the schema
        ) as copy:
            for row in _chain(first, it):
                copy.write_row([_copy_value(row.get(c)) for c in columns])
                count += 1
        return count
    stmt = insert(table)
    batch: list[dict] = []
    for row in _chain(first, it):
        batch.append({c: row.get(c) for c in columns})
        if len(batch) >= chunk:
            connection.execute(stmt, batch)
            count += len(batch)
            batch = []
    if batch:
        connection.execute(stmt, batch)
        count += len(batch)
    return count


def _chain(first: dict, rest: Iterable[dict]) -> Iterable[dict]:
    yield first
    yield from rest


# COPY text format: backslash escapes for the four characters that would break a line.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"
_NEEDS_ESCAPE = frozenset("\\\t\n\r")


def _copy_text(value: object) -> str:
    """One value in COPY text format."""
    if value is None:
        return _NULL
    if isinstance(value, bool | np.bool_):
        return "t" if value else "f"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return repr(float(value))  # shortest repr that reads back to the same double
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    return str(value).translate(_ESCAPES)


def _copy_column(values: object, n: int) -> list[str]:
    """A column's values in COPY text format: one per row, or one repeated for a scalar."""
    if isinstance(values, np.ndarray):
        if values.dtype == np.bool_:
            return np.where(values, "t", "f").tolist()
        if np.issubdtype(values.dtype, np.integer):
            return list(map(str, values.tolist()))
        if np.issubdtype(values.dtype, np.floating):
            return list(map(repr, values.tolist()))
        values = values.tolist()
    if not isinstance(values, list | tuple):
        return [_copy_text(values)] * n
    types = set(map(type, values))
    if types <= {str} and not _NEEDS_ESCAPE.intersection("".join(values)):
        return list(values)  # plain text (serials, codes): nothing to convert
    if len(types - {type(None)}) <= 1:
        try:
            distinct = set(values)
        except TypeError:  # unhashable (dicts, lists)
            distinct = None
        if distinct is not None and len(distinct) <= 256:
            # Few distinct values (enums, one timestamp or NULL): convert each once.
            text = {v: _copy_text(v) for v in distinct}
            return [text[v] for v in values]
    return [_copy_text(v) for v in values]


def bulk_insert_columns(table: Table, columns: Mapping[str, object], *,
                        chunk: int = 5000) -> int:
    """Insert rows given column by column, in the session's transaction (all or nothing).

    Each value of `columns` is either a list / tuple / 1-D NumPy array with one element per
    row, or a scalar shared by every row (`None` = NULL). PostgreSQL: one COPY in text format,
    the lines built column-wise (no per-row dict, no per-row adapter call), several times
    faster than `bulk_insert` for large writes; other engines: executemany in chunks.
    """
    names = list(columns)
    lengths = {len(v) for v in columns.values()
               if isinstance(v, np.ndarray | list | tuple)}
    if len(lengths) > 1:
        raise ValueError("bulk_insert_columns: columns of different lengths")
    n = lengths.pop() if lengths else 1
    if n == 0:
        return 0
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        text_columns = [_copy_column(columns[c], n) for c in names]
        raw = connection.connection.driver_connection
        quoted = ", ".join(f'"{c}"' for c in names)
        step = 100_000  # rows per write: bounded memory, few calls
        with raw.cursor() as cursor, cursor.copy(
            f'COPY "{table.name}" ({quoted}) FROM STDIN'  # noqa: S608 - names from the schema
        ) as copy:
            for a in range(0, n, step):
                part = [col[a:a + step] for col in text_columns]
                copy.write("\n".join(map("\t".join, zip(*part, strict=True))) + "\n")
        return n
    values = {c: _python_column(columns[c], n) for c in names}
    stmt = insert(table)
    for a in range(0, n, chunk):
        z = min(a + chunk, n)
        connection.execute(stmt, [{c: values[c][i] for c in names} for i in range(a, z)])
    return n


def _python_column(values: object, n: int) -> Sequence[object]:
    if isinstance(values, np.ndarray):
        return values.tolist()
    if isinstance(values, list | tuple):
        return values
    return [values] * n
