"""Stratified simple random sampling without replacement, with ordered reserves.

A stratum is one rated unit × one respondent group. Within it, eligible rows are ranked by the
hash-based random priority of ``sampling.randomness`` (see there for why this is a valid
SRSWOR): the first ``quota`` rows form the main sample in draw order, the next ``reserves`` rows
are the reserve list in the order they are to be used. When a stratum has fewer eligible rows
than its quota, everybody is taken, the shortfall is reported and the reserve list is empty.

Frame digest (canonical encoding, version 1)
--------------------------------------------
The digest of a stratum's eligible frame is the hex SHA-256 of the concatenation of

1. the ASCII bytes ``survey.sampling.frame/v1`` followed by a line feed (0x0A);
2. the stratum key in UTF-8, followed by a line feed;
3. the eligible count N_h as an unsigned 64-bit little-endian integer;
4. one flag byte: 0x00 when only keys are hashed, 0x01 when row fingerprints follow the keys;
5. the eligible keys in ascending order, each a signed 64-bit little-endian integer;
6. with flag 0x01, the rows' fingerprints in that same order, signed 64-bit little-endian.

The keys alone determine the draw (given the seed), so a digest without fingerprints already
proves which list the draw was made from; fingerprints extend the proof to the rows' content.
The digests do not depend on the seed: they can be published before the public value that
fixes the seed is known, which is the order an auditor wants (commit to the list, then draw).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from sampling.errors import SamplingError
from sampling.frame import FrameColumns
from sampling.randomness import priorities, stratum_seed

__all__ = [
    "DIGEST_VERSION",
    "DrawResult",
    "StratumDraw",
    "StratumSpec",
    "combined_digest",
    "draw_all",
    "draw_stratum",
    "frame_digests",
    "stratum_digest",
]

DIGEST_VERSION = b"survey.sampling.frame/v1\n"
_LE_I8 = np.dtype("<i8")


@dataclass(frozen=True, slots=True)
class StratumSpec:
    """One stratum to draw: its key (e.g. "<unit code>:<group>"), quota and number of reserves."""

    key: str
    quota: int
    reserves: int = 0

    def __post_init__(self) -> None:
        for name in ("quota", "reserves"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise SamplingError(f"stratum {self.key!r}: {name} must be a non-negative integer")


@dataclass(frozen=True, slots=True, eq=False)
class StratumDraw:
    """The draw of one stratum. Keys are frame keys (int64), in draw order."""

    key: str
    quota: int
    selected: np.ndarray
    reserves: np.ndarray
    eligible: int  # N_h
    digest: str

    @property
    def n_selected(self) -> int:
        """n_h, the number of main-sample selections."""
        return int(self.selected.size)

    @property
    def shortfall(self) -> int:
        """How many forms the quota misses because the stratum has too few eligible people."""
        return max(self.quota - self.eligible, 0)

    @property
    def weight(self) -> float:
        """Design weight N_h / n_h of each selected person (0.0 when nobody is selected)."""
        return self.eligible / self.n_selected if self.n_selected else 0.0


def _digest(stratum_key: str, keys: np.ndarray, fingerprints: np.ndarray | None) -> str:
    h = hashlib.sha256(DIGEST_VERSION)
    h.update(stratum_key.encode("utf-8") + b"\n")
    h.update(int(keys.size).to_bytes(8, "little") + (b"\x00" if fingerprints is None else b"\x01"))
    h.update(np.ascontiguousarray(keys, dtype=_LE_I8).data)
    if fingerprints is not None:
        h.update(np.ascontiguousarray(fingerprints, dtype=_LE_I8).data)
    return h.hexdigest()


def stratum_digest(
    stratum_key: str, keys: np.ndarray, fingerprints: np.ndarray | None = None
) -> str:
    """Digest of one stratum's eligible frame (any row order; see the module docstring)."""
    keys = np.asarray(keys, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    if keys.size > 1 and np.any(keys[1:] == keys[:-1]):
        raise SamplingError(f"stratum {stratum_key!r}: duplicate frame keys")
    fp = None if fingerprints is None else np.asarray(fingerprints, dtype=np.int64)[order]
    return _digest(stratum_key, keys, fp)


def combined_digest(strata: Sequence[StratumSpec], digests: Sequence[str]) -> str:
    """One SHA-256 over all strata: lines ``<stratum key>\\t<stratum digest>\\n`` in UTF-8."""
    h = hashlib.sha256()
    for spec, digest in zip(strata, digests, strict=True):
        h.update(f"{spec.key}\t{digest}\n".encode())
    return h.hexdigest()


def draw_stratum(
    keys: np.ndarray,
    quota: int,
    reserves: int,
    rng: np.random.Generator | int,
    *,
    stratum_key: str = "",
) -> StratumDraw:
    """Draw one stratum from its eligible ``keys`` (any order, unique).

    ``rng`` is either a Generator, from which one 64-bit priority seed is taken, or the stratum's
    priority seed itself (``stratum_seed(seed, stratum_key)``), in which case the result equals
    that stratum's part of ``draw_all``.
    """
    spec = StratumSpec(stratum_key, quota, reserves)
    keys = np.sort(np.asarray(keys, dtype=np.int64))
    if keys.size > 1 and np.any(keys[1:] == keys[:-1]):
        raise SamplingError(f"stratum {stratum_key!r}: duplicate frame keys")
    if isinstance(rng, np.random.Generator):
        seed = int(rng.integers(0, 2**64, dtype=np.uint64))
    else:
        seed = int(rng)
    ranked = keys[np.argsort(priorities(keys, seed))]  # priorities are distinct: no ties
    n_sel = min(spec.quota, keys.size)
    n_take = min(spec.quota + spec.reserves, keys.size)
    return StratumDraw(
        key=stratum_key,
        quota=spec.quota,
        selected=ranked[:n_sel],
        reserves=ranked[n_sel:n_take],
        eligible=int(keys.size),
        digest=_digest(stratum_key, keys, None),
    )


@dataclass(frozen=True, slots=True, eq=False)
class DrawResult:
    """Result of ``draw_all``, stored column-wise (one Python object per stratum is too slow).

    ``selected_keys[selected_offsets[h]:selected_offsets[h + 1]]`` are stratum h's main sample in
    draw order; likewise for reserves. Index with an int or a stratum key for a ``StratumDraw``.
    """

    seed: int
    strata: tuple[StratumSpec, ...]
    eligible: np.ndarray  # int64 N_h per stratum
    selected_keys: np.ndarray
    selected_offsets: np.ndarray
    reserve_keys: np.ndarray
    reserve_offsets: np.ndarray
    digests: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {s.key: i for i, s in enumerate(self.strata)})

    def __len__(self) -> int:
        return len(self.strata)

    def index(self, stratum_key: str) -> int:
        """Position of a stratum (KeyError when absent)."""
        return self._index[stratum_key]

    def __getitem__(self, item: int | str) -> StratumDraw:
        h = self._index[item] if isinstance(item, str) else int(item)
        spec = self.strata[h]
        so, ro = self.selected_offsets, self.reserve_offsets
        return StratumDraw(
            key=spec.key,
            quota=spec.quota,
            selected=self.selected_keys[so[h] : so[h + 1]],
            reserves=self.reserve_keys[ro[h] : ro[h + 1]],
            eligible=int(self.eligible[h]),
            digest=self.digests[h],
        )

    def __iter__(self) -> Iterator[StratumDraw]:
        return (self[h] for h in range(len(self.strata)))

    @property
    def n_selected(self) -> np.ndarray:
        """n_h per stratum."""
        return np.diff(self.selected_offsets)

    @property
    def shortfall(self) -> np.ndarray:
        """Missing main-sample forms per stratum."""
        quota = np.array([s.quota for s in self.strata], dtype=np.int64)
        return np.maximum(quota - self.eligible, 0)

    @property
    def weights(self) -> np.ndarray:
        """Design weight N_h / n_h per stratum (0.0 where nobody is selected)."""
        n = self.n_selected
        return np.divide(self.eligible, n, out=np.zeros(n.size), where=n > 0)

    @property
    def selected_weights(self) -> np.ndarray:
        """The design weight of each selected person, aligned with ``selected_keys``."""
        return np.repeat(self.weights, self.n_selected)

    @property
    def selected_strata(self) -> np.ndarray:
        """The stratum index of each selected person, aligned with ``selected_keys``."""
        return np.repeat(np.arange(len(self.strata), dtype=np.int32), self.n_selected)

    @property
    def reserve_strata(self) -> np.ndarray:
        """The stratum index of each reserve, aligned with ``reserve_keys``."""
        return np.repeat(np.arange(len(self.strata), dtype=np.int32), np.diff(self.reserve_offsets))

    @property
    def frame_digest(self) -> str:
        """``combined_digest`` of all strata."""
        return combined_digest(self.strata, self.digests)


@dataclass(frozen=True, slots=True, eq=False)
class _Sorted:
    """Eligible rows sorted by (stratum, key)."""

    keys: np.ndarray
    strata: np.ndarray  # stratum index per sorted row
    counts: np.ndarray  # N_h
    starts: np.ndarray  # offsets, length S + 1
    fingerprints: np.ndarray | None


def _stratum_bits(n_strata: int) -> int:
    return max((n_strata - 1).bit_length(), 1)


def _check_strata(strata: Sequence[StratumSpec]) -> tuple[StratumSpec, ...]:
    specs = tuple(strata)
    if not specs:
        raise SamplingError("no strata to draw")
    if len({s.key for s in specs}) != len(specs):
        raise SamplingError("stratum keys must be unique")
    return specs


def _sort_frame(
    frame: FrameColumns, n_strata: int, eligible: np.ndarray | None
) -> _Sorted:
    keys, st, fp = frame.key, frame.stratum, frame.fingerprint
    if eligible is not None:
        eligible = np.asarray(eligible, dtype=bool)
        if eligible.shape != keys.shape:
            raise SamplingError("the eligibility mask does not match the frame")
        keys, st = keys[eligible], st[eligible]
        fp = None if fp is None else fp[eligible]
    if st.size and (int(st.min()) < 0 or int(st.max()) >= n_strata):
        raise SamplingError("a frame row points to a stratum that is not in the list")
    counts = np.bincount(st, minlength=n_strata).astype(np.int64)
    starts = np.zeros(n_strata + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    sorted_st = np.repeat(np.arange(n_strata, dtype=np.int32), counts)
    b = _stratum_bits(n_strata)
    kmin = int(keys.min()) if keys.size else 0
    kspan = int(keys.max()) - kmin if keys.size else 0
    if fp is None and kspan < (1 << (64 - b)):
        # Fast path: pack (stratum, key − min) into one uint64 and sort values, not indices
        # (a SIMD value sort is ~6× faster than argsort on millions of rows).
        packed = st.astype(np.uint64) << np.uint64(64 - b)
        packed |= (keys - np.int64(kmin)).view(np.uint64)
        packed.sort()
        dup = packed.size > 1 and bool(np.any(packed[1:] == packed[:-1]))
        packed &= np.uint64((1 << (64 - b)) - 1)
        sorted_keys = packed.view(np.int64)
        sorted_keys += np.int64(kmin)
        sorted_fp = None
    else:
        order = np.lexsort((keys, st))
        sorted_keys = keys[order]
        sorted_fp = None if fp is None else fp[order]
        same = sorted_keys[1:] == sorted_keys[:-1]
        dup = bool(np.any(same & (sorted_st[1:] == sorted_st[:-1])))
    if dup:
        raise SamplingError("duplicate frame keys within a stratum")
    return _Sorted(sorted_keys, sorted_st, counts, starts, sorted_fp)


def _digests(specs: Sequence[StratumSpec], srt: _Sorted) -> tuple[str, ...]:
    starts = srt.starts.tolist()
    keys_le = np.ascontiguousarray(srt.keys, dtype=_LE_I8)
    kview = memoryview(keys_le.view(np.uint8))
    fview = None
    if srt.fingerprints is not None:
        fview = memoryview(np.ascontiguousarray(srt.fingerprints, dtype=_LE_I8).view(np.uint8))
    flag = b"\x00" if fview is None else b"\x01"
    out = []
    for h, spec in enumerate(specs):
        a, z = starts[h], starts[h + 1]
        d = hashlib.sha256(DIGEST_VERSION)
        d.update(spec.key.encode("utf-8") + b"\n" + (z - a).to_bytes(8, "little") + flag)
        d.update(kview[8 * a : 8 * z])
        if fview is not None:
            d.update(fview[8 * a : 8 * z])
        out.append(d.hexdigest())
    return tuple(out)


def frame_digests(
    frame: FrameColumns, strata: Sequence[StratumSpec], eligible: np.ndarray | None = None
) -> tuple[str, ...]:
    """Digest of each stratum's eligible frame, computable before the seed is known."""
    specs = _check_strata(strata)
    return _digests(specs, _sort_frame(frame, len(specs), eligible))


def draw_all(
    frame: FrameColumns,
    strata: Sequence[StratumSpec],
    seed: int,
    eligible: np.ndarray | None = None,
) -> DrawResult:
    """Draw every stratum of a campaign at once (vectorised; row order does not matter).

    ``frame.stratum`` indexes ``strata``; ``eligible`` is the mask from ``check_eligibility``
    (None: every row is eligible). Stratum h's part of the result equals
    ``draw_stratum(keys_h, quota_h, reserves_h, stratum_seed(seed, key_h), stratum_key=key_h)``.
    """
    specs = _check_strata(strata)
    n_strata = len(specs)
    srt = _sort_frame(frame, n_strata, eligible)
    quota = np.array([s.quota for s in specs], dtype=np.int64)
    n_sel = np.minimum(quota, srt.counts)
    n_take = np.minimum(quota + np.array([s.reserves for s in specs], np.int64), srt.counts)

    seeds = np.array([stratum_seed(seed, s.key) for s in specs], dtype=np.uint64)
    prio = priorities(srt.keys, seeds[srt.strata])

    # Candidates: rows whose priority, truncated to fit beside the stratum index in one uint64,
    # is within the first n_take of their stratum. A value sort finds the per-stratum thresholds;
    # truncation can only add ties, so the exact order is settled on this small subset.
    b = _stratum_bits(n_strata)
    packed = srt.strata.astype(np.uint64) << np.uint64(64 - b)
    packed |= prio >> np.uint64(b)
    ranked = np.sort(packed)
    wanted = n_take > 0
    threshold = np.zeros(n_strata, dtype=np.uint64)
    threshold[wanted] = ranked[srt.starts[:-1][wanted] + n_take[wanted] - 1]
    is_cand = packed <= threshold[srt.strata]
    if not wanted.all():
        is_cand &= wanted[srt.strata]
    cand = np.flatnonzero(is_cand)
    c_st = srt.strata[cand]
    order = np.lexsort((prio[cand], c_st))
    cand, c_st = cand[order], c_st[order]
    c_start = np.zeros(n_strata + 1, dtype=np.int64)
    np.cumsum(np.bincount(c_st, minlength=n_strata), out=c_start[1:])
    rank = np.arange(cand.size, dtype=np.int64) - c_start[c_st]
    in_sample = rank < n_sel[c_st]
    in_reserve = ~in_sample & (rank < n_take[c_st])

    sel_off = np.zeros(n_strata + 1, dtype=np.int64)
    np.cumsum(n_sel, out=sel_off[1:])
    res_off = np.zeros(n_strata + 1, dtype=np.int64)
    np.cumsum(n_take - n_sel, out=res_off[1:])
    return DrawResult(
        seed=int(seed),
        strata=specs,
        eligible=srt.counts,
        selected_keys=srt.keys[cand[in_sample]],
        selected_offsets=sel_off,
        reserve_keys=srt.keys[cand[in_reserve]],
        reserve_offsets=res_off,
        digests=_digests(specs, srt),
    )
