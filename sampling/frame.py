"""Columnar sampling frames: one NumPy array per field, one element per frame entry."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from sampling.errors import SamplingError

__all__ = ["FrameColumns", "MISSING_BIRTH_YEAR", "MISSING_ID"]

MISSING_ID = 0  # phone / person identifier meaning "unknown"
MISSING_BIRTH_YEAR = 0


def _column(name: str, value: object, dtype: type | str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise SamplingError(f"frame column {name!r} must be one-dimensional")
    if dtype == "datetime64[D]":
        if arr.size and not np.issubdtype(arr.dtype, np.datetime64):
            raise SamplingError(f"frame column {name!r} must hold dates (datetime64)")
        return np.ascontiguousarray(arr.astype("datetime64[D]", copy=False))
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise SamplingError(f"frame column {name!r} must hold integers")
    return np.ascontiguousarray(arr.astype(dtype, copy=False))


@dataclass(frozen=True, slots=True, eq=False)
class FrameColumns:
    """A sampling frame as parallel arrays (no Python object per row, for speed).

    key:              int64 stable key of the frame entry (its database id, or a 64-bit hash).
                      Unique within a stratum; the same key may appear in several strata when
                      one shared list is drawn separately for each rated unit.
    stratum:          int32 index into the campaign's list of ``StratumSpec``.
    phone:            int64 phone identifier, 0 = missing: the E.164 digits (84912345678) or a
                      salted 63-bit hash of them, as long as previous-campaign exclusion sets
                      use the same encoding.
    transaction_date: datetime64[D] date of the completed transaction, NaT = missing.
    birth_year:       int32 year of birth, 0 = missing.
    person:           int64 person key used to exclude people sampled before, 0 = unknown.
    fingerprint:      int64 hash of the row content; when given it enters the frame digest, so
                      any edit of a row (not only of its key) changes the digest.
    """

    key: np.ndarray
    stratum: np.ndarray
    phone: np.ndarray | None = None
    transaction_date: np.ndarray | None = None
    birth_year: np.ndarray | None = None
    person: np.ndarray | None = None
    fingerprint: np.ndarray | None = None

    def __post_init__(self) -> None:
        dtypes: dict[str, type | str] = {
            "key": np.int64,
            "stratum": np.int32,
            "phone": np.int64,
            "transaction_date": "datetime64[D]",
            "birth_year": np.int32,
            "person": np.int64,
            "fingerprint": np.int64,
        }
        size: int | None = None
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            arr = _column(f.name, value, dtypes[f.name])
            if size is None:
                size = arr.size
            elif arr.size != size:
                raise SamplingError(f"frame column {f.name!r} has {arr.size} rows, not {size}")
            object.__setattr__(self, f.name, arr)

    def __len__(self) -> int:
        return int(self.key.size)

    def take(self, rows: np.ndarray) -> FrameColumns:
        """A new frame with the rows selected by a boolean mask or an index array."""
        parts = {
            f.name: (None if getattr(self, f.name) is None else getattr(self, f.name)[rows])
            for f in fields(self)
        }
        return FrameColumns(**parts)
