"""Packed copies of an import's entries for the draw (`FramePack`, PostgreSQL only).

The import appends each chunk's packed values to a temporary file while its COPY runs (the
connection is busy with the COPY until the end) and, once the COPY is done, stores them as
parts if the entries' ids turned out consecutive: the sequence advanced by exactly the
number of rows written, so no other session took an id in between, and COPY numbers rows in
their order. Otherwise nothing is stored and the draw reads that list from its rows.
"""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np
import polars as pl

PACK_WIDTH = 4  # int64 values per entry: stable_key, fingerprint, phone digits, date/birth
NO_DATE = -(2**31)  # day number of "no transaction date" (below PostgreSQL's smallest date)
_PART_ROWS = 1 << 16  # at most this many entries per part (2 MB)
# The sequence's last value and cache size: with a cache, a session may hold ids taken
# earlier, and the count alone could not prove the ids consecutive.
_SEQUENCE = ("SELECT pg_sequence_last_value(s.oid), q.seqcache FROM pg_sequence AS q "
             "JOIN pg_class AS s ON s.oid = q.seqrelid "
             "WHERE s.oid = pg_get_serial_sequence('frame_entries', 'id')::regclass")


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


class PackSpool:
    """Collects the packed entries of one import (bounded memory) and stores them as
    `frame_packs` parts after the COPY, when the entries' ids are consecutive."""

    def __init__(self, raw: Any, batch_id: int, campaign_id: int) -> None:
        self.raw = raw
        self.batch_id = batch_id
        self.campaign_id = campaign_id
        self.rows = 0
        self.first_id: int | None = None  # set by store() when the ids are consecutive
        self._file = tempfile.TemporaryFile()
        self._source_rows = tempfile.TemporaryFile()  # int32 per entry, for entry_ids()
        # Ids a COPY takes come after the sequence's current value (NULL: never used).
        last, cache = raw.execute(_SEQUENCE).fetchone()
        self._before = (last or 0) if cache == 1 else None

    def add(self, frame: pl.DataFrame) -> None:
        """Append a chunk's entries, in the order they are COPY'd."""
        self._file.write(pack_frame(frame))
        self._source_rows.write(frame["source_row"].to_numpy().astype(np.int32).tobytes())
        self.rows += len(frame)

    def store(self) -> bool:
        """After the COPY: store the parts if the ids are consecutive (True if stored)."""
        try:
            if not self.rows or self._before is None:
                return False
            last = self.raw.execute(
                "SELECT currval(pg_get_serial_sequence('frame_entries', 'id'))").fetchone()[0]
            if last - self._before != self.rows:  # another session took ids meanwhile
                return False
            first = self.first_id = self._before + 1
            size = PACK_WIDTH * 8
            self._file.seek(0)
            with self.raw.cursor() as cursor:
                # pglz (the default) spent ~80 ms per 2 MB part only to store it
                # uncompressed (hashes barely compress); lz4 takes ~10 ms. This transaction
                # only, put back afterwards.
                previous, lz4 = cursor.execute(_TOAST_COMPRESSION).fetchone()
                if lz4:
                    cursor.execute(_SET_TOAST_COMPRESSION, ("lz4",))
                for part, start in enumerate(range(0, self.rows, _PART_ROWS)):
                    n = min(_PART_ROWS, self.rows - start)
                    cursor.execute(
                        "INSERT INTO frame_packs (batch_id, part, campaign_id, first_id, rows, "
                        "data) VALUES (%s, %s, %s, %s, %s, %b)",
                        (self.batch_id, part, self.campaign_id, first + start, n,
                         self._file.read(n * size)))
                if lz4:
                    cursor.execute(_SET_TOAST_COMPRESSION, (previous,))
            return True
        finally:
            self._file.close()

    def entry_ids(self, source_rows: list[int]) -> np.ndarray | None:
        """The frame_entries ids of these source rows (rows written by this import), or
        None unless `store()` found the ids consecutive: the k-th row COPY'd got
        `first_id + k`, and rows are written in file order."""
        if self.first_id is None:
            return None
        self._source_rows.seek(0)
        written = np.frombuffer(self._source_rows.read(), dtype=np.int32)
        wanted = np.asarray(source_rows, dtype=np.int32)
        position = np.searchsorted(written, wanted)
        if (position >= len(written)).any() or (written[position] != wanted).any():
            return None
        return position.astype(np.int64) + self.first_id

    def close(self) -> None:
        """Drop the temporary files."""
        self._file.close()
        self._source_rows.close()
