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
4. one flag byte: 0x00 when only keys are hashed, 0x01 when each key is followed by the row's
   fingerprint;
5. for each eligible row in ascending key order: its key as a signed 64-bit little-endian
   integer and, with flag 0x01, its fingerprint in the same encoding right after it.

The keys alone determine the draw (given the seed), so a digest without fingerprints already
proves which list the draw was made from; fingerprints extend the proof to the rows' content.
The digests do not depend on the seed: they can be published before the public value that
fixes the seed is known, which is the order an auditor wants (commit to the list, then draw).

Speed (national case: 5 M rows, 16,605 strata)
----------------------------------------------
No Python loop over rows, and no argsort over all rows: (stratum, key) pairs are packed into one
uint64 and value-sorted (SIMD sort, several times faster than argsort); priorities are computed
for every row in one vectorised pass; a per-stratum priority cut keeps only rows that can be
among the first quota + reserves (about 2 % of the frame), and only those are ranked. The one
loop over strata is the SHA-256 digests (~3 µs each), run on a second thread for big frames.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
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


def _records(keys: np.ndarray, fingerprints: np.ndarray | None) -> np.ndarray:
    """What the digest hashes: the keys, or (key, fingerprint) pairs, little-endian."""
    if fingerprints is None:
        return np.ascontiguousarray(keys, dtype=_LE_I8)
    return np.ascontiguousarray(np.stack([keys, fingerprints], axis=1), dtype=_LE_I8)


def _digest(stratum_key: str, records: np.ndarray) -> str:
    h = hashlib.sha256(DIGEST_VERSION)
    h.update(stratum_key.encode("utf-8") + b"\n")
    h.update(len(records).to_bytes(8, "little") + (b"\x00" if records.ndim == 1 else b"\x01"))
    h.update(np.ascontiguousarray(records, dtype=_LE_I8).data)
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
    return _digest(stratum_key, _records(keys, fp))


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
        digest=_digest(stratum_key, keys),
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
    counts: np.ndarray  # N_h
    starts: np.ndarray  # offsets, length S + 1
    records: np.ndarray  # what the digest hashes: ``keys``, or (key, fingerprint) rows


def _stratum_bits(n_strata: int) -> int:
    return max((n_strata - 1).bit_length(), 1)


def _check_strata(strata: Sequence[StratumSpec]) -> tuple[StratumSpec, ...]:
    specs = tuple(strata)
    if not specs:
        raise SamplingError("no strata to draw")
    if len({s.key for s in specs}) != len(specs):
        raise SamplingError("stratum keys must be unique")
    return specs


def _offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _sort_frame(frame: FrameColumns, n_strata: int, eligible: np.ndarray | None) -> _Sorted:
    keys, st, fp = frame.key, frame.stratum, frame.fingerprint
    if eligible is not None:
        eligible = np.asarray(eligible, dtype=bool)
        if eligible.shape != keys.shape:
            raise SamplingError("the eligibility mask does not match the frame")
    if st.size and (int(st.min()) < 0 or int(st.max()) >= n_strata):
        raise SamplingError("a frame row points to a stratum that is not in the list")
    b = _stratum_bits(n_strata)
    kmin = int(keys.min()) if keys.size else 0
    kspan = int(keys.max()) - kmin if keys.size else 0
    if fp is None and kspan < (1 << (64 - b)):
        return _sort_packed_keys(keys, st, eligible, n_strata, b, kmin)
    if 64 - b - max(len(frame).bit_length(), 1) >= 8:
        return _sort_packed_rows(keys, st, fp, eligible, n_strata, b, kmin, kspan)
    if eligible is not None:  # more than 2**40 rows: never in practice
        keys, st = keys[eligible], st[eligible]
        fp = None if fp is None else fp[eligible]
    order = np.lexsort((keys, st))
    sorted_keys, sorted_st = keys[order], st[order]
    if np.any((sorted_keys[1:] == sorted_keys[:-1]) & (sorted_st[1:] == sorted_st[:-1])):
        raise SamplingError("duplicate frame keys within a stratum")
    counts = np.bincount(st, minlength=n_strata).astype(np.int64)
    return _Sorted(sorted_keys, counts, _offsets(counts),
                   _records(sorted_keys, None if fp is None else fp[order]))


def _stratum_starts(packed: np.ndarray, n_strata: int, b: int) -> np.ndarray:
    """Offsets of each stratum in values sorted with the stratum in the top ``b`` bits."""
    bounds = np.arange(n_strata, dtype=np.uint64) << np.uint64(64 - b)
    return np.append(np.searchsorted(packed, bounds), packed.size).astype(np.int64)


def _sort_packed_keys(
    keys: np.ndarray,
    st: np.ndarray,
    eligible: np.ndarray | None,
    n_strata: int,
    b: int,
    kmin: int,
) -> _Sorted:
    """Keys spanning less than 2**(64 − b): sort (stratum | key − min) values, nothing else."""
    packed = st.astype(np.uint64)
    packed <<= np.uint64(64 - b)
    packed |= (keys - np.int64(kmin)).view(np.uint64)
    if eligible is not None:
        packed = packed[eligible]
    packed.sort()  # a SIMD value sort: several times faster than argsort
    if packed.size > 1 and bool(np.any(packed[1:] == packed[:-1])):
        raise SamplingError("duplicate frame keys within a stratum")
    starts = _stratum_starts(packed, n_strata, b)
    packed &= np.uint64((1 << (64 - b)) - 1)
    sorted_keys = packed.view(np.int64)
    sorted_keys += np.int64(kmin)
    return _Sorted(sorted_keys, np.diff(starts), starts, sorted_keys)


def _sort_packed_rows(
    keys: np.ndarray,
    st: np.ndarray,
    fp: np.ndarray | None,
    eligible: np.ndarray | None,
    n_strata: int,
    b: int,
    kmin: int,
    kspan: int,
) -> _Sorted:
    """Wide keys (63-bit hashes) or fingerprints: sort (stratum | key prefix | row) values.

    The row index comes back out of each sorted value, so the sort yields the permutation
    without an argsort. Keys sharing their prefix within a stratum (rare) are put in full-key
    order afterwards, on those rows only.
    """
    i_bits = max(keys.size.bit_length(), 1)
    room = 64 - b - i_bits
    shift = max(kspan.bit_length() - room, 0)
    rows = np.arange(keys.size) if eligible is None else np.flatnonzero(eligible)
    v = st[rows].astype(np.uint64)
    v <<= np.uint64(64 - b)
    prefix = (keys[rows] - np.int64(kmin)).view(np.uint64)
    prefix >>= np.uint64(shift)
    prefix <<= np.uint64(i_bits)
    v |= prefix
    v |= rows.view(np.uint64)
    v.sort()
    perm = (v & np.uint64((1 << i_bits) - 1)).view(np.int64)
    tie = (v[1:] ^ v[:-1]) < np.uint64(1 << i_bits)  # same (stratum | key prefix)
    if tie.any():
        if shift == 0:
            raise SamplingError("duplicate frame keys within a stratum")
        tied = np.zeros(v.size, dtype=bool)
        tied[1:] = tie
        tied[:-1] |= tie
        pos = np.flatnonzero(tied)
        run = np.cumsum(np.concatenate(([True], ~tie)))[pos]
        sub = perm[pos]
        sub = sub[np.lexsort((keys[sub], run))]
        perm[pos] = sub
        full = keys[sub]
        if np.any((full[1:] == full[:-1]) & (run[1:] == run[:-1])):
            raise SamplingError("duplicate frame keys within a stratum")
    starts = _stratum_starts(v, n_strata, b)
    if fp is None:
        sorted_keys = keys[perm]
        return _Sorted(sorted_keys, np.diff(starts), starts, sorted_keys)
    # One random gather of 16-byte (key, fingerprint) rows costs half of two separate ones.
    pairs = np.empty((keys.size, 2), dtype=np.int64)
    pairs[:, 0] = keys
    pairs[:, 1] = fp
    # Gather whole 16-byte rows as opaque items: 2-D fancy indexing is ten times slower.
    pairs = pairs.view("V16").reshape(-1)[perm].view(np.int64).reshape(-1, 2)
    return _Sorted(np.ascontiguousarray(pairs[:, 0]), np.diff(starts), starts, pairs)


def _digests(specs: Sequence[StratumSpec], srt: _Sorted) -> tuple[str, ...]:
    starts = srt.starts.tolist()
    records = np.ascontiguousarray(srt.records, dtype=_LE_I8)
    width = 8 * (1 if records.ndim == 1 else records.shape[1])
    view = memoryview(records.view(np.uint8).reshape(-1))
    flag = b"\x00" if records.ndim == 1 else b"\x01"
    sha256 = hashlib.sha256
    out = []
    for h, spec in enumerate(specs):
        a, z = starts[h], starts[h + 1]
        d = sha256(DIGEST_VERSION)
        d.update(spec.key.encode("utf-8") + b"\n" + (z - a).to_bytes(8, "little") + flag)
        d.update(view[width * a : width * z])
        out.append(d.hexdigest())
    return tuple(out)


def frame_digests(
    frame: FrameColumns, strata: Sequence[StratumSpec], eligible: np.ndarray | None = None
) -> tuple[str, ...]:
    """Digest of each stratum's eligible frame, computable before the seed is known."""
    specs = _check_strata(strata)
    return _digests(specs, _sort_frame(frame, len(specs), eligible))


def _stratum_seeds(seed: int, specs: Sequence[StratumSpec]) -> np.ndarray:
    stratum_seed(seed, "")  # validates the seed once
    sha256, prefix = hashlib.sha256, f"{int(seed)}:"
    raw = b"".join([sha256((prefix + s.key).encode()).digest()[:8] for s in specs])
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64)


_THREADED_DIGESTS_FROM = 500_000  # rows; below this a thread costs more than it saves
_Z = 4.0  # candidate margin in standard deviations (see _candidates)


def _candidates(
    prio: np.ndarray, srt: _Sorted, n_take: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rows that may be among the first ``n_take`` of their stratum, and their counts.

    A stratum's priorities are i.i.d. uniform on [0, 2**64), so keeping those below
    (n_take + Z·√n_take + Z)/N_h of the range keeps n_take + Z·√n_take + Z rows on average and
    fewer than n_take with probability ~3e-5. Strata where that happens (or where the fraction
    is large) keep all their rows. The cut only decides which rows are looked at: the result
    is exactly the first n_take by priority either way.
    """
    counts = srt.counts
    frac = np.divide(n_take + _Z * np.sqrt(n_take) + _Z, counts, out=np.ones(counts.size),
                     where=counts > 0)
    whole = frac > 0.5
    cut = (np.minimum(frac, 0.5) * 2.0**64).astype(np.uint64)
    cut[whole] = np.uint64(2**64 - 1)
    cut[n_take == 0] = 0  # a row with priority 0 may stay a candidate; rank removes it
    keep = prio <= np.repeat(cut, counts)
    cand = np.flatnonzero(keep)
    c_count = np.diff(np.searchsorted(cand, srt.starts))
    short = np.flatnonzero(c_count < n_take)
    if short.size:
        for h in short.tolist():
            keep[srt.starts[h] : srt.starts[h + 1]] = True
        cand = np.flatnonzero(keep)
        c_count = np.diff(np.searchsorted(cand, srt.starts))
    return cand, c_count


def _rank_candidates(
    cand: np.ndarray, c_count: np.ndarray, prio: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Order candidates by (stratum, priority); return the order and each one's stratum."""
    n_strata = c_count.size
    c_start = _offsets(c_count)
    c_st = np.repeat(np.arange(n_strata, dtype=np.int64), c_count)
    p = prio[cand]
    b = _stratum_bits(n_strata)
    i_bits = max(int(c_count.max()).bit_length(), 1) if c_count.size else 1
    p_bits = 64 - b - i_bits
    if p_bits >= 24:
        # Value sort of (stratum | truncated priority | index in stratum): the index comes back
        # out of the sorted value, so no argsort is needed. Equal truncated priorities are
        # astronomically rare; if they happen the exact lexsort below decides.
        local = np.arange(cand.size, dtype=np.int64) - c_start[c_st]
        v = c_st.astype(np.uint64) << np.uint64(64 - b)
        v |= (p >> np.uint64(64 - p_bits)) << np.uint64(i_bits)
        v |= local.view(np.uint64)
        v.sort()
        if not np.any((v[1:] >> np.uint64(i_bits)) == (v[:-1] >> np.uint64(i_bits))):
            s = (v >> np.uint64(64 - b)).astype(np.int64)
            idx = (v & np.uint64((1 << i_bits) - 1)).astype(np.int64)
            return c_start[s] + idx, s
    order = np.lexsort((p, c_st))
    return order, c_st[order]


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
    seeds = _stratum_seeds(seed, specs)
    srt = _sort_frame(frame, n_strata, eligible)
    quota = np.array([s.quota for s in specs], dtype=np.int64)
    n_sel = np.minimum(quota, srt.counts)
    n_take = np.minimum(quota + np.array([s.reserves for s in specs], np.int64), srt.counts)

    if srt.keys.size >= _THREADED_DIGESTS_FROM:
        # Hashing (hashlib releases the GIL) overlaps the NumPy ranking below on a second core.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(_digests, specs, srt)
            drawn = _rank(srt, seeds, n_sel, n_take)
            digests = pending.result()
    else:
        drawn = _rank(srt, seeds, n_sel, n_take)
        digests = _digests(specs, srt)
    selected, reserves = drawn
    return DrawResult(
        seed=int(seed),
        strata=specs,
        eligible=srt.counts,
        selected_keys=selected,
        selected_offsets=_offsets(n_sel),
        reserve_keys=reserves,
        reserve_offsets=_offsets(n_take - n_sel),
        digests=digests,
    )


def _rank(
    srt: _Sorted, seeds: np.ndarray, n_sel: np.ndarray, n_take: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Selected and reserve keys of all strata, grouped by stratum, each in draw order."""
    prio = priorities(srt.keys, np.repeat(seeds, srt.counts))
    cand, c_count = _candidates(prio, srt, n_take)
    order, c_st = _rank_candidates(cand, c_count, prio)
    ranked = cand[order]
    rank = np.arange(ranked.size, dtype=np.int64) - _offsets(c_count)[c_st]
    in_sample = rank < n_sel[c_st]
    in_reserve = ~in_sample & (rank < n_take[c_st])
    return srt.keys[ranked[in_sample]], srt.keys[ranked[in_reserve]]
