"""Bulk writes inside the current transaction: COPY on PostgreSQL, executemany elsewhere."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum

import numpy as np
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    SmallInteger,
    String,
    Table,
    insert,
)
from sqlalchemy.types import TypeEngine

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
                        chunk: int = 5000, target: str | None = None) -> int:
    """Insert rows given column by column, in the session's transaction (all or nothing).

    Each value of `columns` is either a list / tuple / 1-D NumPy array with one element per
    row, or a scalar shared by every row (`None` = NULL; in lists `None` is NULL too, and so is
    NaT in a datetime64 array). Strings may also come as a NumPy bytes array (UTF-8, `S`
    dtype), the fastest form. PostgreSQL: one COPY, in binary format built column-wise with
    NumPy when every column has a type `_binary_kind` knows (integers, booleans, floats,
    strings and enums, dates, timestamps with time zone), else in text format; other engines:
    executemany in chunks. `target` (PostgreSQL only) names another table with these columns
    and types to write to instead, e.g. a temporary copy of `table`.
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
    if target is not None and connection.dialect.name != "postgresql":
        raise ValueError("bulk_insert_columns: target is for PostgreSQL")
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        quoted = ", ".join(f'"{c}"' for c in names)
        into = target or table.name
        kinds = [_binary_kind(table.c[name].type) for name in names]
        if None not in kinds:
            # Built and sent in blocks: the server stores one block while the next is built.
            step = 1 << 16
            with raw.cursor() as cursor, cursor.copy(
                f'COPY "{into}" ({quoted}) FROM STDIN (FORMAT binary)'  # noqa: S608
            ) as copy:
                copy.write(_BINARY_HEADER)
                for a in range(0, n, step):
                    z = min(a + step, n)
                    copy.write(_binary_rows(kinds, [_rows(columns[c], a, z) for c in names],
                                            z - a))
                copy.write(_BINARY_TRAILER)
            return n
        text_columns = [_copy_column(columns[c], n) for c in names]
        step = 100_000  # rows per write: bounded memory, few calls
        with raw.cursor() as cursor, cursor.copy(
            f'COPY "{into}" ({quoted}) FROM STDIN'  # noqa: S608 - names from the schema
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


def _rows(values: object, a: int, z: int) -> object:
    """Rows a..z-1 of a column (a scalar stands for every row)."""
    return values[a:z] if isinstance(values, np.ndarray | list | tuple) else values


def _python_column(values: object, n: int) -> Sequence[object]:
    if isinstance(values, np.ndarray):
        if np.issubdtype(values.dtype, np.datetime64):
            return [None if v is None else v.replace(tzinfo=dt.UTC)
                    for v in values.astype("datetime64[us]").tolist()]
        if values.dtype.kind == "S":
            return [v.decode() for v in values.tolist()]
        return values.tolist()
    if isinstance(values, list | tuple):
        return values
    return [values] * n


# --- COPY binary format ----------------------------------------------------------------------
# Header: signature, int32 flags, int32 header-extension length; each row: int16 field count,
# then per field an int32 byte length (-1 = NULL) and the value in network byte order; then an
# int16 -1 trailer. Rows are assembled as one uint8 matrix (rows × widest row) and a mask of
# the bytes each row really uses, so variable-length values and NULLs need no per-row Python.
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_BINARY_TRAILER = b"\xff\xff"
_PG_EPOCH_US = np.datetime64("2000-01-01T00:00:00", "us")
_PG_EPOCH_DAY = np.datetime64("2000-01-01", "D")
_Segment = tuple[np.ndarray, np.ndarray]  # (bytes, used) as (n, width) uint8 and bool
_ARRAY_DTYPES = {"timestamptz": "datetime64[us]", "date": "datetime64[D]", "bool": bool}


def _binary_kind(sa_type: TypeEngine) -> str | None:
    """The binary encoding of a column type, or None when not supported here."""
    if isinstance(sa_type, Boolean):
        return "bool"
    if isinstance(sa_type, BigInteger):
        return ">i8"
    if isinstance(sa_type, SmallInteger):
        return ">i2"
    if isinstance(sa_type, Integer):
        return ">i4"
    if isinstance(sa_type, Float):  # FLOAT without precision = double precision
        return ">f8" if not sa_type.precision or sa_type.precision > 24 else None
    if isinstance(sa_type, DateTime):
        return "timestamptz" if sa_type.timezone else None
    if isinstance(sa_type, Date):
        return "date"
    if isinstance(sa_type, String):  # VARCHAR, TEXT and enums stored as VARCHAR
        return "text"
    return None


def _binary_rows(kinds: list[str], columns: list[object], n: int) -> bytes:
    """`n` rows in COPY binary format (without the header and trailer)."""
    count = np.empty((n, 2), dtype=np.uint8)
    count[:] = np.frombuffer(len(kinds).to_bytes(2, "big"), dtype=np.uint8)
    segments = [(count, np.ones((n, 2), dtype=bool))]
    for kind, values in zip(kinds, columns, strict=True):
        segments.append(_binary_column(kind, values, n))
    data = np.hstack([seg[0] for seg in segments])
    used = np.hstack([seg[1] for seg in segments])
    return data[used].tobytes()


def _binary_column(kind: str, values: object, n: int) -> _Segment:
    """One column in COPY binary format: length word + value per row (length -1 = NULL)."""
    if kind == "text":
        return _binary_text(values, n)
    null = np.zeros(n, dtype=bool)
    if isinstance(values, np.ndarray) and values.dtype != object:
        arr = values
    elif isinstance(values, list | tuple | np.ndarray):
        null = np.fromiter((v is None for v in values), dtype=bool, count=n)
        fill = {"bool": False, "timestamptz": dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
                "date": dt.date(2000, 1, 1)}.get(kind, 0)
        items = [fill if v is None else v for v in values]
        arr = np.array(_naive_utc(items) if kind == "timestamptz" else items,
                       dtype=_ARRAY_DTYPES.get(kind))
    else:  # one value for every row
        null[:] = values is None
        if values is None:
            values = 0
        elif kind == "timestamptz":
            values = _naive_utc([values])[0]
        arr = np.broadcast_to(np.array([values], dtype=_ARRAY_DTYPES.get(kind)), (n,))
    if kind == "timestamptz":
        if np.issubdtype(arr.dtype, np.datetime64):
            null |= np.isnat(arr)
            arr = (arr.astype("datetime64[us]") - _PG_EPOCH_US).astype(np.int64)
        kind = ">i8"
    elif kind == "date":
        if np.issubdtype(arr.dtype, np.datetime64):
            null |= np.isnat(arr)
            arr = (arr.astype("datetime64[D]") - _PG_EPOCH_DAY).astype(np.int64)
        kind = ">i4"
    elif kind == "bool":
        kind = "u1"
    elif kind in (">i4", ">i2") and arr.size:
        info = np.iinfo(kind)
        if int(arr.min()) < info.min or int(arr.max()) > info.max:
            raise ValueError(f"value out of range for a {info.bits}-bit integer")
    width = np.dtype(kind).itemsize
    rec = np.empty(n, dtype=[("length", ">i4"), ("value", kind)])
    rec["length"] = np.where(null, -1, width)
    rec["value"] = np.where(null, 0, arr)
    used = np.ones((n, 4 + width), dtype=bool)
    used[null, 4:] = False
    return rec.view(np.uint8).reshape(n, 4 + width), used


def _naive_utc(items: list) -> list:
    """Aware datetimes as naive UTC (what NumPy's datetime64 takes)."""
    return [v.astimezone(dt.UTC).replace(tzinfo=None) if v.tzinfo else v for v in items]


def _binary_text(values: object, n: int) -> _Segment:
    """Strings (or enums, by value) as UTF-8. A bytes array is taken as it is (its NUL
    padding dropped); otherwise each distinct value is encoded once."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "U":
        values = np.char.encode(values, "utf-8")
    if isinstance(values, np.ndarray) and values.dtype.kind == "S":
        widest = values.dtype.itemsize
        sizes = np.char.str_len(values).astype(np.int64)
        matrix = np.ascontiguousarray(values).view(np.uint8).reshape(n, widest)
        index = None
    else:
        if isinstance(values, np.ndarray):
            values = values.tolist()
        if not isinstance(values, list | tuple):
            values = [values] * n
        codes: dict[object, int] = {}
        index = np.fromiter((codes.setdefault(v, len(codes)) for v in values),
                            dtype=np.int64, count=n)
        distinct = [None if v is None else (v.value if isinstance(v, Enum) else str(v)).encode()
                    for v in codes]
        widest = max([len(b) for b in distinct if b is not None] or [0])
        matrix = np.array([b or b"" for b in distinct], dtype=f"S{max(widest, 1)}")
        matrix = matrix.view(np.uint8).reshape(len(distinct), -1)[:, :widest]
        sizes = np.array([-1 if b is None else len(b) for b in distinct], dtype=np.int64)
    if np.any((matrix == 0) & (np.arange(widest) < sizes[:, None])):
        raise ValueError("text values may not contain NUL characters")
    if index is not None:
        matrix, sizes = matrix[index], sizes[index]
    rows = np.empty((n, 4 + widest), dtype=np.uint8)
    rows[:, :4] = sizes.astype(">i4").view(np.uint8).reshape(n, 4)
    rows[:, 4:] = matrix
    used = np.empty((n, 4 + widest), dtype=bool)
    used[:, :4] = True
    used[:, 4:] = np.arange(widest) < sizes[:, None]
    return rows, used
