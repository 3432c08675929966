"""Packed copies of an import's entries for the draw (`FramePack`, PostgreSQL only), and the
entries' ids.

The import takes the ids of each chunk's entries from the sequence itself, as one block
(`reserve_ids`), and COPYs them with the rows: the server evaluates no `nextval` per row, and
the ids of each chunk are consecutive by construction. Each chunk's packed values are
appended to a temporary file while the COPY runs (the connection is busy with the COPY
until the end) and stored as parts once it is done.
"""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np
import polars as pl

PACK_WIDTH = 4  # int64 values per entry: stable_key, fingerprint, phone digits, date/birth
NO_DATE = -(2**31)  # day number of "no transaction date" (below PostgreSQL's smallest date)
_PART_ROWS = 1 << 16  # at most this many entries per part (2 MB)
_ID_SEQUENCE = "pg_get_serial_sequence('frame_entries', 'id')"
_RESERVE_LOCK = 0x5EC1D5  # advisory lock key: one block reservation at a time


def pack_rows(stable_key: np.ndarray, fingerprint: np.ndarray, phone: np.ndarray,
              days: np.ndarray, birth_year: np.ndarray) -> bytes:
    """The packed bytes of entries given as int64-compatible columns (phone: E.164 digits,
    0 = none; days since 1970, `NO_DATE` = none; birth year, 0 = unknown)."""
    packed = np.empty((len(stable_key), PACK_WIDTH), dtype=">i8")
    packed[:, 0] = stable_key
    packed[:, 1] = fingerprint
    packed[:, 2] = phone
    packed[:, 3] = (np.asarray(days, np.int64) << 32) | (
        np.asarray(birth_year, np.int64) & 0xFFFFFFFF)
    return packed.tobytes()


def pack_frame(frame: pl.DataFrame) -> bytes:
    """Packed bytes of the entries of an import chunk (columns stable_key, fingerprint,
    phone as E.164 text, transaction_date as a date, birth_year)."""
    columns = frame.select(
        pl.col("stable_key").cast(pl.Int64),
        pl.col("fingerprint").cast(pl.Int64),
        pl.col("phone").str.strip_prefix("+").cast(pl.Int64).fill_null(0),
        pl.col("transaction_date").cast(pl.Int32).fill_null(NO_DATE),
        pl.col("birth_year").cast(pl.Int64).fill_null(0),
    )
    return pack_rows(*(columns.to_series(k).to_numpy() for k in range(PACK_WIDTH + 1)))


_TOAST_COMPRESSION = ("SELECT current_setting('default_toast_compression'), 'lz4' = ANY(enumvals) "
                      "FROM pg_settings WHERE name = 'default_toast_compression'")
_SET_TOAST_COMPRESSION = "SELECT set_config('default_toast_compression', %s, true)"


def reserve_ids(conn: Any, n: int) -> int:
    """Take `n` consecutive frame_entries ids from the id sequence (on `conn`, a connection
    in autocommit other than the one running the COPY); returns the first. Reservations are
    serialised by an advisory lock; a plain `nextval` of another session running inside the
    very statement could still take one of them (the COPY then fails on the primary key:
    nothing is kept), but only imports write entries on PostgreSQL."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_RESERVE_LOCK,))
        last = conn.execute(f"SELECT setval({_ID_SEQUENCE}, nextval({_ID_SEQUENCE}) + %s - 1)",
                            (n,)).fetchone()[0]
    return last - n + 1


class PackSpool:
    """Collects the packed entries of one import (bounded memory) and stores them as
    `frame_packs` parts after the COPY: one or more parts per chunk, whose ids are
    consecutive (`reserve_ids`)."""

    def __init__(self, raw: Any, batch_id: int, campaign_id: int) -> None:
        self.raw = raw
        self.batch_id = batch_id
        self.campaign_id = campaign_id
        self._chunks: list[tuple[int, int]] = []  # (first id, rows) of each chunk
        self._file = tempfile.TemporaryFile()
        self._source_rows = tempfile.TemporaryFile()  # int32 per entry, for entry_ids()

    def add(self, frame: pl.DataFrame, first_id: int) -> None:
        """Append a chunk's entries (ids `first_id`, `first_id + 1`, ...), in file order."""
        self._file.write(pack_frame(frame))
        self._source_rows.write(frame["source_row"].to_numpy().astype(np.int32).tobytes())
        self._chunks.append((first_id, len(frame)))

    def store(self) -> None:
        """After the COPY: store the parts."""
        try:
            size = PACK_WIDTH * 8
            self._file.seek(0)
            with self.raw.cursor() as cursor:
                # pglz (the default) spent ~80 ms per 2 MB part only to store it
                # uncompressed (hashes barely compress); lz4 takes ~10 ms. This transaction
                # only, put back afterwards.
                previous, lz4 = cursor.execute(_TOAST_COMPRESSION).fetchone()
                if lz4:
                    cursor.execute(_SET_TOAST_COMPRESSION, ("lz4",))
                part = 0
                for first, rows in self._chunks:
                    for start in range(0, rows, _PART_ROWS):
                        n = min(_PART_ROWS, rows - start)
                        cursor.execute(
                            "INSERT INTO frame_packs (batch_id, part, campaign_id, first_id, "
                            "rows, data) VALUES (%s, %s, %s, %s, %s, %b)",
                            (self.batch_id, part, self.campaign_id, first + start, n,
                             self._file.read(n * size)))
                        part += 1
                if lz4:
                    cursor.execute(_SET_TOAST_COMPRESSION, (previous,))
        finally:
            self._file.close()

    def entry_ids(self, source_rows: list[int]) -> np.ndarray | None:
        """The frame_entries ids of these source rows (rows written by this import; None if
        one is not among them). Rows are written in file order."""
        self._source_rows.seek(0)
        written = np.frombuffer(self._source_rows.read(), dtype=np.int32)
        wanted = np.asarray(source_rows, dtype=np.int32)
        position = np.searchsorted(written, wanted)
        if (position >= len(written)).any() or (written[position] != wanted).any():
            return None
        firsts = np.array([f for f, _ in self._chunks], dtype=np.int64)
        starts = np.cumsum([0] + [r for _, r in self._chunks])[:-1]
        chunk = np.searchsorted(starts, position, side="right") - 1
        return firsts[chunk] + (position - starts[chunk])

    def close(self) -> None:
        """Drop the temporary files."""
        self._file.close()
        self._source_rows.close()
