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
No Python loop over rows, and no argsort over all rows. The draw itself needs no sort of the
frame: priorities are computed for every eligible row in one vectorised pass, a per-stratum
priority cut keeps only rows that can be among the first quota + reserves (about 2 % of the
frame), and only those are ranked. The digests need every eligible row in (stratum, key)
order: (stratum, key) pairs are packed into one uint64 and value-sorted (SIMD sort, several
times faster than argsort), then each stratum is hashed (~3 µs per stratum). For big frames
that sort-and-hash runs on two worker threads, a quarter of the strata at a time, while the
calling thread draws (NumPy's sort and hashlib release the GIL).
"""

from __future__ import annotations

import hashlib
import itertools
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
    # Position in the frame of each selected / reserve key (``draw_all``: the row that was
    # drawn, e.g. to find its database record without searching the keys).
    selected_rows: np.ndarray | None = None
    reserve_rows: np.ndarray | None = None
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
    """Eligible rows of consecutive strata sorted by (stratum, key)."""

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


@dataclass(frozen=True, slots=True, eq=False)
class _Rows:
    """The eligible rows of a frame (in frame order) with their strata, checked once."""

    frame: FrameColumns
    n_strata: int
    rows: np.ndarray  # int64 positions in the frame
    stratum: np.ndarray  # int64 stratum of each
    counts: np.ndarray  # N_h
    kmin: int  # smallest and span of all the frame's keys (to pack them)
    kspan: int


def _eligible_rows(frame: FrameColumns, n_strata: int, eligible: np.ndarray | None) -> _Rows:
    st = frame.stratum
    if eligible is not None:
        eligible = np.asarray(eligible, dtype=bool)
        if eligible.shape != frame.key.shape:
            raise SamplingError("the eligibility mask does not match the frame")
    if st.size and (int(st.min()) < 0 or int(st.max()) >= n_strata):
        raise SamplingError("a frame row points to a stratum that is not in the list")
    rows = np.arange(st.size) if eligible is None else np.flatnonzero(eligible)
    stratum = st[rows].astype(np.int64)
    keys = frame.key
    kmin = int(keys.min()) if keys.size else 0
    kspan = int(keys.max()) - kmin if keys.size else 0
    counts = np.bincount(stratum, minlength=n_strata).astype(np.int64)
    return _Rows(frame, n_strata, rows, stratum, counts, kmin, kspan)


def _sort_strata(el: _Rows, a: int, z: int) -> _Sorted:
    """Eligible rows of strata a..z-1 sorted by (stratum, key), as the digests need them."""
    if a == 0 and z == el.n_strata:
        rows, st = el.rows, el.stratum
    else:
        pos = np.flatnonzero((el.stratum >= a) & (el.stratum < z))
        rows, st = el.rows[pos], el.stratum[pos] - a
    n_strata = z - a
    keys, fp = el.frame.key[rows], el.frame.fingerprint
    fp = None if fp is None else fp[rows]
    b = _stratum_bits(n_strata)
    if fp is None and el.kspan < (1 << (64 - b)):
        return _sort_packed_keys(keys, st, n_strata, b, el.kmin)
    if 64 - b - max(keys.size.bit_length(), 1) >= 8:
        return _sort_packed_rows(keys, fp, st, n_strata, b, el.kmin, el.kspan)
    # More than 2**40 rows: never in practice.
    order = np.lexsort((keys, st))
    sorted_keys, sorted_st = keys[order], st[order]
    if np.any((sorted_keys[1:] == sorted_keys[:-1]) & (sorted_st[1:] == sorted_st[:-1])):
        raise SamplingError("duplicate frame keys within a stratum")
    counts = np.bincount(st, minlength=n_strata).astype(np.int64)
    return _Sorted(sorted_keys, counts, _offsets(counts),
                   _records(sorted_keys, None if fp is None else fp[order]))


def _sort_frame(frame: FrameColumns, n_strata: int, eligible: np.ndarray | None) -> _Sorted:
    return _sort_strata(_eligible_rows(frame, n_strata, eligible), 0, n_strata)


def _stratum_starts(packed: np.ndarray, n_strata: int, b: int) -> np.ndarray:
    """Offsets of each stratum in values sorted with the stratum in the top ``b`` bits."""
    bounds = np.arange(n_strata, dtype=np.uint64) << np.uint64(64 - b)
    return np.append(np.searchsorted(packed, bounds), packed.size).astype(np.int64)


def _sort_packed_keys(
    keys: np.ndarray, st: np.ndarray, n_strata: int, b: int, kmin: int
) -> _Sorted:
    """Keys spanning less than 2**(64 − b): sort (stratum | key − min) values, nothing else."""
    packed = st.astype(np.uint64)
    packed <<= np.uint64(64 - b)
    packed |= (keys - np.int64(kmin)).view(np.uint64)
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
    fp: np.ndarray | None,
    st: np.ndarray,
    n_strata: int,
    b: int,
    kmin: int,
    kspan: int,
) -> _Sorted:
    """Wide keys (63-bit hashes) or fingerprints: sort (stratum | key prefix | position)
    values.

    The position comes back out of each sorted value, so the sort yields the permutation
    without an argsort. Keys sharing their prefix within a stratum (rare) are put in full-key
    order afterwards, on those rows only.
    """
    i_bits = max(keys.size.bit_length(), 1)
    room = 64 - b - i_bits
    shift = max(kspan.bit_length() - room, 0)
    v = st.astype(np.uint64)
    v <<= np.uint64(64 - b)
    prefix = (keys - np.int64(kmin)).view(np.uint64)
    prefix >>= np.uint64(shift)
    prefix <<= np.uint64(i_bits)
    v |= prefix
    v |= np.arange(keys.size, dtype=np.uint64)
    v.sort()
    perm = (v & np.uint64((1 << i_bits) - 1)).view(np.int64)
    tie = (v[1:] ^ v[:-1]) < np.uint64(1 << i_bits)  # same (stratum | key prefix)
    if tie.any():
        if shift == 0:
            raise SamplingError("duplicate frame keys within a stratum")
        tied = np.zeros(v.size, dtype=bool)
        tied[1:] = tie
        tied[:-1] |= tie
        at = np.flatnonzero(tied)
        run = np.cumsum(np.concatenate(([True], ~tie)))[at]
        sub = perm[at]
        sub = sub[np.lexsort((keys[sub], run))]
        perm[at] = sub
        full = keys[sub]
        if np.any((full[1:] == full[:-1]) & (run[1:] == run[:-1])):
            raise SamplingError("duplicate frame keys within a stratum")
    starts = _stratum_starts(v, n_strata, b)
    if fp is None:
        sorted_keys = keys[perm]
        return _Sorted(sorted_keys, np.diff(starts), starts, sorted_keys)
    # One random gather of 16-byte (key, fingerprint) items costs half of two separate ones.
    pairs = np.empty((keys.size, 2), dtype=np.int64)
    pairs[:, 0] = keys
    pairs[:, 1] = fp
    pairs = pairs.view("V16").reshape(-1)[perm].view(np.int64).reshape(-1, 2)
    return _Sorted(np.ascontiguousarray(pairs[:, 0]), np.diff(starts), starts, pairs)


def _digests(specs: Sequence[StratumSpec], srt: _Sorted) -> tuple[str, ...]:
    starts = srt.starts.tolist()
    records = np.ascontiguousarray(srt.records, dtype=_LE_I8)
    width = 8 * (1 if records.ndim == 1 else records.shape[1])
    view = memoryview(records.view(np.uint8).reshape(-1))
    flag = b"\x00" if records.ndim == 1 else b"\x01"
    # The loop holds the GIL between hash updates: keep it to the bare calls (the common
    # prefix hashed once and copied, headers built beforehand, hex conversion at the end).
    base = hashlib.sha256(DIGEST_VERSION)
    counts = np.diff(srt.starts).astype("<u8").tobytes()
    headers = [spec.key.encode("utf-8") + b"\n" + counts[8 * h : 8 * h + 8] + flag
               for h, spec in enumerate(specs)]
    out = []
    for h, header in enumerate(headers):
        d = base.copy()
        d.update(header)
        d.update(view[width * starts[h] : width * starts[h + 1]])
        out.append(d.digest())
    text = b"".join(out).hex()
    return tuple(text[64 * h : 64 * h + 64] for h in range(len(out)))


def _sorted_digests(specs: Sequence[StratumSpec], el: _Rows, a: int, z: int
                    ) -> tuple[str, ...]:
    """Digests of strata a..z-1 (one unit of work for a thread)."""
    return _digests(specs[a:z], _sort_strata(el, a, z))


def frame_digests(
    frame: FrameColumns, strata: Sequence[StratumSpec], eligible: np.ndarray | None = None
) -> tuple[str, ...]:
    """Digest of each stratum's eligible frame, computable before the seed is known."""
    specs = _check_strata(strata)
    el = _eligible_rows(frame, len(specs), eligible)
    if el.rows.size < _THREADED_FROM:
        return _sorted_digests(specs, el, 0, len(specs))
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        parts = [pool.submit(_sorted_digests, specs, el, a, z) for a, z in _parts(el)]
        return tuple(d for part in parts for d in part.result())


def _stratum_seeds(seed: int, specs: Sequence[StratumSpec]) -> np.ndarray:
    stratum_seed(seed, "")  # validates the seed once
    sha256, prefix = hashlib.sha256, f"{int(seed)}:"
    raw = b"".join([sha256((prefix + s.key).encode()).digest()[:8] for s in specs])
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64)


_THREADED_FROM = 500_000  # eligible rows; below this threads cost more than they save
_PARTS = 4  # groups of strata sorted and hashed as separate tasks...
_WORKERS = 2  # ...by this many threads: smaller sorts and gathers stay in cache, and two
# digest loops (which hold the GIL between hash updates) rarely run at the same moment
_Z = 4.0  # candidate margin in standard deviations (see _candidates)


def _parts(el: _Rows) -> list[tuple[int, int]]:
    """Consecutive ranges of strata holding about the same number of eligible rows."""
    bounds = np.searchsorted(np.cumsum(el.counts), el.rows.size * np.arange(1, _PARTS) / _PARTS)
    edges = [0, *sorted({int(x) + 1 for x in bounds if 0 <= x < el.n_strata - 1}), el.n_strata]
    return list(itertools.pairwise(edges))


def _candidates(
    prio: np.ndarray, st: np.ndarray, counts: np.ndarray, n_take: np.ndarray
) -> np.ndarray:
    """Rows (positions in ``prio``) that may be among the first ``n_take`` of their stratum.

    A stratum's priorities are i.i.d. uniform on [0, 2**64), so keeping those below
    (n_take + Z·√n_take + Z)/N_h of the range keeps n_take + Z·√n_take + Z rows on average and
    fewer than n_take with probability ~3e-5. Strata where that happens (or where the fraction
    is large) keep all their rows. The cut only decides which rows are looked at: the result
    is exactly the first n_take by priority either way.
    """
    frac = np.divide(n_take + _Z * np.sqrt(n_take) + _Z, counts, out=np.ones(counts.size),
                     where=counts > 0)
    whole = frac > 0.5
    cut = (np.minimum(frac, 0.5) * 2.0**64).astype(np.uint64)
    cut[whole] = np.uint64(2**64 - 1)
    cut[n_take == 0] = 0  # a row with priority 0 may stay a candidate; rank removes it
    keep = prio <= cut[st]
    cand = np.flatnonzero(keep)
    short = np.bincount(st[cand], minlength=counts.size) < n_take
    if short.any():
        keep |= short[st]
        cand = np.flatnonzero(keep)
    return cand


def _rank_candidates(c_st: np.ndarray, p: np.ndarray, n_strata: int) -> np.ndarray:
    """Order of candidates by (stratum, priority)."""
    b = _stratum_bits(n_strata)
    i_bits = max(c_st.size.bit_length(), 1)
    p_bits = 64 - b - i_bits
    if p_bits >= 24:
        # Value sort of (stratum | truncated priority | candidate): the candidate comes back
        # out of the sorted value, so no argsort is needed. Equal truncated priorities within
        # a stratum are rare (~1e-4 per national draw); then the exact lexsort below decides.
        v = c_st.astype(np.uint64) << np.uint64(64 - b)
        v |= (p >> np.uint64(64 - p_bits)) << np.uint64(i_bits)
        v |= np.arange(c_st.size, dtype=np.uint64)
        v.sort()
        if not np.any((v[1:] >> np.uint64(i_bits)) == (v[:-1] >> np.uint64(i_bits))):
            return (v & np.uint64((1 << i_bits) - 1)).astype(np.int64)
    return np.lexsort((p, c_st))


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
    el = _eligible_rows(frame, n_strata, eligible)
    quota = np.array([s.quota for s in specs], dtype=np.int64)
    n_sel = np.minimum(quota, el.counts)
    n_take = np.minimum(quota + np.array([s.reserves for s in specs], np.int64), el.counts)

    if el.rows.size >= _THREADED_FROM:
        # The digests need every eligible row sorted by (stratum, key); the draw does not (it
        # ranks a few candidates per stratum), so the sort and hashing of groups of strata
        # run on worker threads (NumPy's sort and hashlib release the GIL) while this one
        # draws.
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            parts = [pool.submit(_sorted_digests, specs, el, a, z) for a, z in _parts(el)]
            drawn = _rank(el, seeds, n_sel, n_take)
            digests = tuple(d for part in parts for d in part.result())
    else:
        drawn = _rank(el, seeds, n_sel, n_take)
        digests = _sorted_digests(specs, el, 0, n_strata)
    selected, reserves = drawn
    return DrawResult(
        seed=int(seed),
        strata=specs,
        eligible=el.counts,
        selected_keys=frame.key[selected],
        selected_offsets=_offsets(n_sel),
        reserve_keys=frame.key[reserves],
        reserve_offsets=_offsets(n_take - n_sel),
        digests=digests,
        selected_rows=selected,
        reserve_rows=reserves,
    )


def _rank(
    el: _Rows, seeds: np.ndarray, n_sel: np.ndarray, n_take: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Frame rows of the selected and reserve people, grouped by stratum, in draw order."""
    st = el.stratum
    keys = el.frame.key[el.rows]
    prio = priorities(keys, seeds[st])
    cand = _candidates(prio, st, el.counts, n_take)
    c_st = st[cand]
    order = _rank_candidates(c_st, prio[cand], el.n_strata)
    ranked, r_st = cand[order], c_st[order]
    c_count = np.bincount(c_st, minlength=el.n_strata)
    rank = np.arange(ranked.size, dtype=np.int64) - _offsets(c_count)[r_st]
    in_sample = rank < n_sel[r_st]
    in_reserve = ~in_sample & (rank < n_take[r_st])
    return el.rows[ranked[in_sample]], el.rows[ranked[in_reserve]]
