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
No Python loop over rows, no argsort and no full-frame temporaries. The strata are split into
two ranges holding about as many eligible rows, one per thread (NumPy's sorts, gathers and
element-wise loops and hashlib release the GIL). Each thread reads the frame a chunk at a time
and packs its rows as (stratum | key prefix | position) uint64 values next to their records
(key, fingerprint), value-sorts them (SIMD sort, several times faster than argsort), then goes
through the sorted rows in steps of whole strata: it gathers the step's records in (stratum,
key) order into a small buffer, hashes each stratum (~3 µs) and draws it, all in cache. Rows
sharing their stratum and key prefix (rare) are put in full-key order within the step. The
draw computes each row's priority and ranks only the rows below a per-stratum priority cut,
those that can be among the first quota + reserves.
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
from sampling.randomness import GAMMA, _mix64_inplace, priorities, stratum_seed

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


def _stratum_seeds(seed: int, specs: Sequence[StratumSpec]) -> np.ndarray:
    sha256, prefix = hashlib.sha256, f"{int(seed)}:"
    raw = b"".join([sha256((prefix + s.key).encode()).digest()[:8] for s in specs])
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64)


_THREADED_FROM = 200_000  # eligible rows; below this a second thread costs more than it saves
_PARTS = 2  # ranges of strata, each packed, sorted, hashed and drawn by its own thread
_CHUNK = 1 << 15  # rows per step of the column passes: their temporaries stay in the L2 cache
_Z = 4.0  # candidate margin in standard deviations (see _draw_chunk)


@dataclass(frozen=True, slots=True, eq=False)
class _Job:
    """What the parts of one draw share, checked once by the calling thread."""

    frame: FrameColumns
    specs: tuple[StratumSpec, ...]
    eligible: np.ndarray | None
    n_eligible: int
    kmin: int  # smallest key and span of the frame's keys (to pack them)
    kspan: int
    seed: int | None  # None: digests only


@dataclass(frozen=True, slots=True, eq=False)
class _Part:
    """Digests, N_h and drawn frame rows (grouped by stratum, in draw order) of some strata."""

    digests: list[bytes]  # raw SHA-256 values; their hex text is in ``hex``
    counts: np.ndarray
    selected: list[np.ndarray]
    reserves: list[np.ndarray]
    hex: list[str] = field(default_factory=list)


def _job(frame: FrameColumns, specs: tuple[StratumSpec, ...], eligible: np.ndarray | None,
         seed: int | None) -> _Job:
    st, keys = frame.stratum, frame.key
    if eligible is not None:
        eligible = np.asarray(eligible, dtype=bool)
        if eligible.shape != keys.shape:
            raise SamplingError("the eligibility mask does not match the frame")
    if st.size and (int(st.min()) < 0 or int(st.max()) >= len(specs)):
        raise SamplingError("a frame row points to a stratum that is not in the list")
    kmin = int(keys.min()) if keys.size else 0
    kspan = int(keys.max()) - kmin if keys.size else 0
    n_eligible = keys.size if eligible is None else int(np.count_nonzero(eligible))
    return _Job(frame, specs, eligible, n_eligible, kmin, kspan, seed)


def _run(job: _Job) -> list[_Part]:
    """Split the strata into consecutive ranges holding about the same number of eligible rows
    and process each range on its own thread (NumPy's sorts, gathers and most element-wise
    operations, and hashlib on large buffers, release the GIL)."""
    n_strata = len(job.specs)
    if job.n_eligible < _THREADED_FROM or _PARTS < 2:
        return [_part(job, 0, n_strata)]
    # Rows per stratum estimated from every 16th row: only the balance depends on it.
    st = job.frame.stratum[::16]
    if job.eligible is not None:
        st = st[job.eligible[::16]]
    cum = np.cumsum(np.bincount(st, minlength=n_strata))
    bounds = np.searchsorted(cum, cum[-1] * np.arange(1, _PARTS) / _PARTS)
    edges = [0, *sorted({int(x) + 1 for x in bounds if 0 <= x < n_strata - 1}), n_strata]
    ranges = list(itertools.pairwise(edges))
    if len(ranges) == 1:
        return [_part(job, 0, n_strata)]
    with ThreadPoolExecutor(max_workers=len(ranges) - 1) as pool:
        later = [pool.submit(_part, job, a, z) for a, z in ranges[1:]]
        first = _part(job, *ranges[0])
        return [first, *(f.result() for f in later)]


def _pack(job: _Job, a: int, z: int, b: int, shift: int, pos_bits: int
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The eligible rows of strata a..z-1, read from the frame a chunk at a time.

    Returns, in frame order, ``packed``: uint64 values (stratum − a | key prefix | position),
    ``records``: what the digest hashes (the key, or the key and fingerprint as one 16-byte
    item), and ``rows``: the frame row of each. Sorting ``packed`` sorts the rows by (stratum,
    key prefix) and the position comes back out of each value, so no argsort is needed (a
    value sort is several times faster). The temporaries of a chunk stay in cache; only the
    three outputs are full-size arrays, and the records are gathered from the part's own array
    (smaller and denser than the frame's columns, so fewer cache and TLB misses).
    """
    frame, eligible = job.frame, job.eligible
    st, keys, fps, n = frame.stratum, frame.key, frame.fingerprint, len(frame)
    lower, upper = a > 0, z < len(job.specs)
    cap = job.n_eligible  # only the pages written are committed
    packed = np.empty(cap, dtype=np.uint64)
    records = np.empty((cap, 1 if fps is None else 2), dtype=_LE_I8)
    rows = np.empty(cap, dtype=np.int32 if n <= 2**31 else np.int64)
    top, sh, pb = np.uint64(64 - b), np.uint64(shift), np.uint64(pos_bits)
    kmin = np.int64(job.kmin)
    off = 0
    for i in range(0, n, _CHUNK):
        j = min(i + _CHUNK, n)
        s = st[i:j]
        sel = None if eligible is None else eligible[i:j]
        if lower:
            sel = s >= a if sel is None else sel & (s >= a)
        if upper:
            sel = s < z if sel is None else sel & (s < z)
        r = np.arange(j - i) if sel is None else np.flatnonzero(sel)
        end = off + r.size
        v = packed[off:end]
        np.subtract(s[r], a, out=v, casting="unsafe")
        v <<= top
        k = keys[i:j][r]
        records[off:end, 0] = k
        if fps is not None:
            records[off:end, 1] = fps[i:j][r]
        k -= kmin  # wraps modulo 2**64: read as unsigned, it is the exact distance to kmin
        pre = k.view(np.uint64)
        pre >>= sh
        pre <<= pb
        v |= pre
        v |= np.arange(off, end, dtype=np.uint64)
        np.add(r, i, out=rows[off:end], casting="unsafe")
        off = end
    return packed[:off], records[:off], rows[:off]


def _part(job: _Job, a: int, z: int) -> _Part:
    """Sort, hash and draw the eligible rows of strata a..z-1 (one thread's work)."""
    n_strata = z - a
    b = _stratum_bits(n_strata)
    pos_bits = max(job.n_eligible.bit_length(), 1)
    room = 64 - b - pos_bits  # bits left for the key prefix
    if room < 1:
        raise SamplingError("too many frame rows or strata to sort")
    shift = max(job.kspan.bit_length() - room, 0)
    packed, records, rows = _pack(job, a, z, b, shift, pos_bits)
    packed.sort()  # a SIMD value sort
    top = np.uint64(64 - b)
    bounds = np.arange(n_strata, dtype=np.uint64) << top
    starts = np.append(np.searchsorted(packed, bounds), packed.size)
    counts = np.diff(starts)

    # Steps of whole strata, about _CHUNK rows each: each step gathers its records in sorted
    # order into a small buffer, hashes its strata and draws them, all in cache.
    targets = np.arange(_CHUNK, packed.size, _CHUNK)
    cuts = np.searchsorted(starts, targets, side="right") - 1
    edges = np.unique(np.concatenate(([0], cuts, [n_strata]))).tolist()
    bounds_list = starts.tolist()
    sizes = np.diff(starts[edges])

    specs = job.specs[a:z]
    hasher = _Hasher(specs, counts, records.shape[1])
    drawer = None if job.seed is None else _Drawer(job.seed, specs, counts)
    out = _Part([], counts, [], [])
    # One 16-byte (key, fingerprint) item per row: gathered as complex128, which NumPy copies
    # faster than a structured or void item.
    items = records.view(np.complex128 if records.shape[1] == 2 else _LE_I8).reshape(-1)
    buffer = np.empty(int(sizes.max()) if sizes.size else 0, dtype=items.dtype)
    pos_mask = np.uint64((1 << pos_bits) - 1)
    for h0, h1 in itertools.pairwise(edges):
        i, j = bounds_list[h0], bounds_list[h1]
        v = packed[i:j]
        pos = (v & pos_mask).view(np.int64)
        chunk = np.take(items, pos, out=buffer[: j - i], mode="clip")  # positions are valid
        recs = chunk.view(_LE_I8).reshape(j - i, records.shape[1])
        if j - i > 1:
            tie = (v[1:] ^ v[:-1]) <= pos_mask  # same stratum and key prefix
            if tie.any():
                order = _untie(recs[:, 0], tie)
                chunk[:] = chunk[order]
                pos = pos[order]
        hasher.hash(out.digests, recs, h0, h1, bounds_list)
        if drawer is not None:
            drawer.draw(out, rows, pos, recs[:, 0], h0, h1, starts[h0 : h1 + 1] - i)
    text = b"".join(out.digests).hex()  # on this thread too: one hex conversion per part
    out.hex.extend(text[k : k + 64] for k in range(0, len(text), 64))
    return out


def _untie(keys: np.ndarray, tie: np.ndarray) -> np.ndarray:
    """The order that puts runs of rows sharing their stratum and key prefix (``tie[i]``: rows
    i and i + 1 do) in full-key order. Rare with hash keys; equal full keys are duplicates."""
    t = np.flatnonzero(tie)
    at = np.union1d(t, t + 1)
    after_tie = np.zeros(keys.size, dtype=bool)
    after_tie[1:] = tie
    run = np.cumsum(~after_tie[at])  # a run starts at a row not tied to the one before
    local = np.lexsort((keys[at], run))
    full = keys[at][local]
    if np.any((full[1:] == full[:-1]) & (run[1:] == run[:-1])):
        raise SamplingError("duplicate frame keys within a stratum")
    order = np.arange(keys.size)
    order[at] = at[local]
    return order


class _Hasher:
    """Frame digests of consecutive strata, fed with their records one step at a time."""

    def __init__(self, specs: Sequence[StratumSpec], counts: np.ndarray, width: int) -> None:
        flag = b"\x00" if width == 1 else b"\x01"
        n = counts.astype("<u8").tobytes()
        # Headers built beforehand and the common prefix hashed once and copied: the loop over
        # strata holds the GIL between hash updates, so it is kept to the bare calls.
        self.headers = [spec.key.encode("utf-8") + b"\n" + n[8 * h : 8 * h + 8] + flag
                        for h, spec in enumerate(specs)]
        self.base = hashlib.sha256(DIGEST_VERSION)
        self.width = 8 * width

    def hash(self, out: list[bytes], records: np.ndarray, h0: int, h1: int,
             starts: list[int]) -> None:
        """Append the digests of strata h0..h1-1, whose records (in order) are ``records``."""
        view = memoryview(records.reshape(-1).view(np.uint8))
        w, i = self.width, starts[h0]
        ends = [w * (x - i) for x in starts[h0 : h1 + 1]]
        copy, append = self.base.copy, out.append
        for header, a, z in zip(self.headers[h0:h1], ends[:-1], ends[1:], strict=True):
            d = copy()
            d.update(header)
            d.update(view[a:z])
            append(d.digest())


class _Drawer:
    """The draw of consecutive strata, one step of whole strata at a time.

    Each row gets its priority (see ``sampling.randomness``) and a stratum's rows are ranked by
    it. Only rows that can be among the first quota + reserves of their stratum are ranked: a
    stratum's priorities are i.i.d. uniform on [0, 2**64), so keeping those below
    (n_take + Z·√n_take + Z)/N_h of the range keeps n_take + Z·√n_take + Z rows on average and
    fewer than n_take with probability ~3e-5. Strata where that happens (or where the fraction
    is large) keep all their rows. The cut only decides which rows are looked at: the result is
    exactly the first n_take by priority either way.
    """

    def __init__(self, seed: int, specs: Sequence[StratumSpec], counts: np.ndarray) -> None:
        self.seeds = _stratum_seeds(seed, specs)
        quota = np.array([s.quota for s in specs], dtype=np.int64)
        take = quota + np.array([s.reserves for s in specs], dtype=np.int64)
        self.n_sel = np.minimum(quota, counts)
        self.n_take = n_take = np.minimum(take, counts)
        frac = np.divide(n_take + _Z * np.sqrt(n_take) + _Z, counts, out=np.ones(counts.size),
                         where=counts > 0)
        cut = (np.minimum(frac, 0.5) * 2.0**64).astype(np.uint64)
        cut[frac > 0.5] = np.uint64(2**64 - 1)
        cut[n_take == 0] = 0  # a row with priority 0 may stay a candidate; the rank drops it
        self.cut = cut

    def draw(self, out: _Part, rows: np.ndarray, pos: np.ndarray, keys: np.ndarray,
             h0: int, h1: int, starts: np.ndarray) -> None:
        """Rank the rows of strata h0..h1-1: their ``keys`` and ``pos`` (position in ``rows``,
        the part's frame rows), stratum h's from ``starts[h - h0]`` to ``starts[h - h0 + 1]``."""
        counts = np.diff(starts)
        # Per-stratum values are repeated over the stratum's rows: cheaper than a gather.
        prio = keys.view(np.uint64) * GAMMA  # wraps modulo 2**64 by design
        prio += np.repeat(self.seeds[h0:h1], counts)
        _mix64_inplace(prio)  # = priorities(keys, seed of each row's stratum)
        keep = prio <= np.repeat(self.cut[h0:h1], counts)
        cand = np.flatnonzero(keep)
        n_take = self.n_take[h0:h1]
        first = np.searchsorted(cand, starts)  # each stratum's first candidate
        if np.any(np.diff(first) < n_take):  # a stratum short of candidates keeps all its rows
            keep |= np.repeat(np.diff(first) < n_take, counts)
            cand = np.flatnonzero(keep)
            first = np.searchsorted(cand, starts)
        c_count = np.diff(first)
        order = _rank_candidates(np.repeat(np.arange(h1 - h0), c_count), prio[cand], h1 - h0)
        ranked = pos[cand[order]]  # still grouped by stratum: ``first`` holds
        start = first[:-1]
        n_sel = self.n_sel[h0:h1]
        out.selected.append(rows[ranked[_ranges(start, start + n_sel)]].astype(np.int64))
        out.reserves.append(rows[ranked[_ranges(start + n_sel, start + n_take)]].astype(np.int64))


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of arange(lo[i], hi[i]) for all i, vectorised."""
    length = hi - lo
    ends = np.cumsum(length)
    total = int(ends[-1]) if ends.size else 0
    return np.repeat(lo - (ends - length), length) + np.arange(total)


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


def _hex(parts: list[_Part]) -> tuple[str, ...]:
    return tuple(d for part in parts for d in part.hex)


def frame_digests(
    frame: FrameColumns, strata: Sequence[StratumSpec], eligible: np.ndarray | None = None
) -> tuple[str, ...]:
    """Digest of each stratum's eligible frame, computable before the seed is known."""
    specs = _check_strata(strata)
    return _hex(_run(_job(frame, specs, eligible, None)))


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
    stratum_seed(seed, "")  # validates the seed once
    parts = _run(_job(frame, specs, eligible, int(seed)))
    counts = np.concatenate([p.counts for p in parts])
    selected = np.concatenate([r for p in parts for r in p.selected] or [np.empty(0, np.int64)])
    reserves = np.concatenate([r for p in parts for r in p.reserves] or [np.empty(0, np.int64)])
    quota = np.array([s.quota for s in specs], dtype=np.int64)
    reserve = np.array([s.reserves for s in specs], dtype=np.int64)
    n_sel = np.minimum(quota, counts)
    n_take = np.minimum(quota + reserve, counts)
    return DrawResult(
        seed=int(seed),
        strata=specs,
        eligible=counts,
        selected_keys=frame.key[selected],
        selected_offsets=_offsets(n_sel),
        reserve_keys=frame.key[reserves],
        reserve_offsets=_offsets(n_take - n_sel),
        digests=_hex(parts),
        selected_rows=selected,
        reserve_rows=reserves,
    )
