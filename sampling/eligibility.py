"""Eligibility filters applied to a frame before the draw.

Each excluded row gets exactly one reason: the first that applies in the order of
``ExclusionReason`` values (phone, date, period, age, earlier campaign, duplicate phone). The two
last filters only look at rows that passed the earlier ones, so a duplicate phone keeps its first
*eligible* entry, not an entry that would be dropped anyway.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

import numpy as np

from sampling.errors import SamplingError
from sampling.frame import MISSING_BIRTH_YEAR, MISSING_ID, FrameColumns
from sampling.randomness import GAMMA

__all__ = [
    "DedupScope",
    "Eligibility",
    "EligibilityRules",
    "ExclusionReason",
    "check_eligibility",
    "isin_sorted",
]


_THREADED_SORT_FROM = 500_000  # rows; below this a thread costs more than it saves
_CHUNK = 1 << 16  # rows per step of the column passes: their temporaries stay in cache
_NAT = np.iinfo(np.int64).min  # datetime64 NaT as an integer


class ExclusionReason(IntEnum):
    """Why a frame row may not be drawn (the value is the code stored per row; 0 = eligible)."""

    NO_PHONE = 1
    MISSING_DATE = 2
    OUTSIDE_PERIOD = 3
    UNDERAGE = 4
    PREVIOUSLY_SAMPLED = 5
    DUPLICATE_PHONE = 6

    @property
    def label(self) -> str:
        """Vietnamese description of the reason."""
        return _REASON_LABELS[self]


_REASON_LABELS: dict[ExclusionReason, str] = {
    ExclusionReason.NO_PHONE: "Thiếu số điện thoại",
    ExclusionReason.MISSING_DATE: "Thiếu ngày giao dịch",
    ExclusionReason.OUTSIDE_PERIOD: "Giao dịch ngoài kỳ đánh giá",
    ExclusionReason.UNDERAGE: "Chưa đủ 18 tuổi",
    ExclusionReason.PREVIOUSLY_SAMPLED: "Đã được chọn ở đợt khảo sát trước",
    ExclusionReason.DUPLICATE_PHONE: "Trùng số điện thoại",
}


class DedupScope(StrEnum):
    """Where "one person per phone" applies."""

    NONE = "none"
    STRATUM = "stratum"  # at most one entry per phone within each stratum
    FRAME = "frame"  # the entry with the smallest key wins across the whole frame


def _sorted_ids(values: Collection[int] | np.ndarray) -> np.ndarray:
    arr = np.unique(np.asarray(list(values) if not isinstance(values, np.ndarray) else values,
                               dtype=np.int64))
    return arr[arr != MISSING_ID]


@dataclass(frozen=True, slots=True, eq=False)
class EligibilityRules:
    """Which filters to apply. Everything is off by default; see ``for_campaign``.

    period_start/period_end: inclusive reference period of the transaction date.
    reference_year/min_age:  a row with a birth year is excluded when
                             reference_year − birth_year < min_age (the year is all we know, so
                             people turning 18 during the reference year count as adults).
    excluded_phones/persons: identifiers of people sampled in a previous campaign, in the same
                             encoding as the frame's ``phone`` / ``person`` columns.
    """

    require_phone: bool = False
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    reference_year: int | None = None
    min_age: int = 18
    one_per_phone: DedupScope = DedupScope.NONE
    excluded_phones: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    excluded_persons: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def __post_init__(self) -> None:
        object.__setattr__(self, "excluded_phones", _sorted_ids(self.excluded_phones))
        object.__setattr__(self, "excluded_persons", _sorted_ids(self.excluded_persons))
        if (
            self.period_start is not None
            and self.period_end is not None
            and self.period_end < self.period_start
        ):
            raise SamplingError("the reference period ends before it starts")

    @classmethod
    def for_campaign(
        cls,
        *,
        phone_mode: bool,
        period_start: dt.date | None,
        period_end: dt.date | None,
        reference_year: int | None,
        excluded_phones: Collection[int] | np.ndarray = (),
        excluded_persons: Collection[int] | np.ndarray = (),
        one_per_phone: DedupScope = DedupScope.FRAME,
    ) -> EligibilityRules:
        """The usual rules: phone required in phone mode, period, adults, one entry per phone."""
        return cls(
            require_phone=phone_mode,
            period_start=period_start,
            period_end=period_end,
            reference_year=reference_year,
            one_per_phone=one_per_phone,
            excluded_phones=np.asarray(list(excluded_phones), np.int64)
            if not isinstance(excluded_phones, np.ndarray)
            else excluded_phones,
            excluded_persons=np.asarray(list(excluded_persons), np.int64)
            if not isinstance(excluded_persons, np.ndarray)
            else excluded_persons,
        )


@dataclass(frozen=True, slots=True, eq=False)
class Eligibility:
    """Result of the filters: a reason code per row (0 = eligible) and counts per reason."""

    reason: np.ndarray  # uint8, one per frame row
    counts: dict[ExclusionReason, int]

    @property
    def mask(self) -> np.ndarray:
        """Boolean mask of eligible rows."""
        return self.reason == 0

    @property
    def eligible_count(self) -> int:
        """Number of eligible rows."""
        return int(self.reason.size - sum(self.counts.values()))

    def by_stratum(self, stratum: np.ndarray, n_strata: int) -> np.ndarray:
        """Counts per stratum: shape (n_strata, 1 + len(ExclusionReason)); column 0 = eligible,
        column r = rows excluded for ``ExclusionReason(r)``."""
        width = len(ExclusionReason) + 1
        flat = np.asarray(stratum, np.int64) * width + self.reason
        return np.bincount(flat, minlength=n_strata * width).reshape(n_strata, width)


def _bucket(values: np.ndarray, shift: int) -> np.ndarray:
    """Multiplicative (Fibonacci) hash of int64 values to ``64 - shift`` bits, as indices."""
    h = values.view(np.uint64) * GAMMA  # wraps modulo 2**64 by design
    h >>= np.uint64(shift)
    return h.view(np.intp) if np.dtype(np.intp).itemsize == 8 else h.astype(np.intp)


def isin_sorted(values: np.ndarray, members: np.ndarray) -> np.ndarray:
    """``np.isin(values, members)`` for int64 ``members`` already sorted and unique.

    A bitmap of multiplicative hashes filters out almost every non-member with one cache-friendly
    gather; only the survivors pay for a binary search. Several times faster than ``np.isin``
    on millions of rows.
    """
    values = np.ascontiguousarray(values, np.int64)
    out = np.zeros(values.size, dtype=bool)
    if members.size == 0 or values.size == 0:
        return out
    if members.size < 16 or values.size < 8 * members.size:
        cand = np.arange(values.size)
    else:
        bits = min(max(int(members.size * 32).bit_length(), 10), 26)
        table = np.zeros(1 << bits, dtype=bool)
        table[_bucket(members, 64 - bits)] = True
        cand = np.flatnonzero(table[_bucket(values, 64 - bits)])
    sub = values[cand]
    idx = np.searchsorted(members, sub)
    idx[idx == members.size] = 0
    out[cand] = members[idx] == sub
    return out


def _packable(phone: np.ndarray) -> tuple[int, int]:
    """Bits for a row index beside the phone in one uint64 (0 when phones are too wide), and
    the largest phone."""
    i_bits = max(phone.size.bit_length(), 1)
    if phone.size == 0:
        return 0, 0
    highest = int(phone.max())
    if int(phone.min()) >= 0 and highest < (1 << (64 - i_bits)):
        return i_bits, highest
    return 0, highest


@dataclass(frozen=True, slots=True, eq=False)
class _PhoneRows:
    """What the phone rules need from the rows whose phone lies in one range of values."""

    excluded: np.ndarray  # rows whose phone is an excluded (earlier campaign) phone
    shared: np.ndarray  # rows whose phone appears more than once, grouped by phone...
    shared_phone: np.ndarray  # ...and that phone


def _phone_range(phone: np.ndarray, i_bits: int, lo: int, hi: int,
                 excluded_phones: np.ndarray, dedup: bool) -> _PhoneRows:
    """Rows with lo <= phone <= hi (lo >= 1: 0 is a missing phone) grouped by phone.

    One value sort of (phone | row) groups equal phones without an argsort; the column is read a
    chunk at a time so that only the sorted values are a large array. Separate ranges of phone
    values share no phone, so two threads can each take one.
    """
    n = phone.size
    top = np.uint64(i_bits)
    values = np.empty(n, dtype=np.uint64)  # only the pages written are committed
    off = 0
    for i in range(0, n, _CHUNK):
        p = phone[i : i + _CHUNK]
        r = np.flatnonzero((p >= lo) & (p <= hi))
        end = off + r.size
        v = values[off:end]
        np.left_shift(p[r].view(np.uint64), top, out=v)
        r += i
        v |= r.view(np.uint64)
        off = end
    values = values[:off]
    values.sort()
    row_mask = np.uint64((1 << i_bits) - 1)

    # Rows with an excluded phone: the first found by binary search, the others (phones are
    # seldom repeated) by stepping on while the phone stays the same.
    ex = excluded_phones[(excluded_phones >= lo) & (excluded_phones <= hi)].view(np.uint64)
    at = np.searchsorted(values, ex << top)
    found = [at[:0]]
    while at.size:
        inside = at < values.size
        at, ex = at[inside], ex[inside]
        same = (values[at] >> top) == ex
        at, ex = at[same], ex[same]
        found.append(at)
        at = at + 1
    excluded = (values[np.concatenate(found)] & row_mask).view(np.int64)

    shared = np.empty(0, dtype=np.int64)
    shared_phone = np.empty(0, dtype=np.int64)
    if dedup and values.size > 1:
        # Rows i and i + 1 share their phone when their values differ in the row bits only.
        nxt, prev = values[1:], values[:-1]
        ties = [np.flatnonzero((nxt[i : i + _CHUNK] ^ prev[i : i + _CHUNK]) <= row_mask) + i
                for i in range(0, prev.size, _CHUNK)]
        at = values[_with_next(np.concatenate(ties))]
        shared = (at & row_mask).view(np.int64)
        shared_phone = (at >> top).view(np.int64)
    return _PhoneRows(excluded, shared, shared_phone)


def _with_next(t: np.ndarray) -> np.ndarray:
    """The sorted union of ``t`` and ``t + 1`` for sorted unique ``t`` (np.union1d is a lot
    slower: it goes through np.unique)."""
    both = np.concatenate((t, t + 1))
    both.sort()
    return both[np.concatenate(([True], both[1:] != both[:-1]))] if both.size else both


def _phone_rules_sorted(
    frame: FrameColumns, rules: EligibilityRules, reason: np.ndarray, parts: list[_PhoneRows]
) -> None:
    """Earlier-campaign phones and one-entry-per-phone from the rows found by ``_phone_range``.

    Only the few rows the rules concern are checked for earlier exclusion reasons, so the
    phone sorts do not wait for the row-wise rules.
    """
    if rules.excluded_phones.size:
        rows = np.concatenate([p.excluded for p in parts])
        reason[rows[reason[rows] == 0]] = ExclusionReason.PREVIOUSLY_SAMPLED
    if rules.one_per_phone is DedupScope.NONE:
        return
    rows = np.concatenate([p.shared for p in parts])
    phone = np.concatenate([p.shared_phone for p in parts])
    still = reason[rows] == 0  # duplicates among still-eligible rows only
    rows, phone = rows[still], phone[still]
    if rows.size == 0:
        return
    if rules.one_per_phone is DedupScope.STRATUM:
        _dedup_rows(frame, rows, reason, rules.one_per_phone)
        return
    # Rows are grouped by phone already: the smallest key of each run wins (no sort needed).
    k = frame.key[rows]
    start = np.flatnonzero(np.concatenate(([True], phone[1:] != phone[:-1])))
    smallest = np.repeat(np.minimum.reduceat(k, start), np.diff(np.append(start, k.size)))
    reason[rows[k != smallest]] = ExclusionReason.DUPLICATE_PHONE


def _phone_rules_hashed(frame: FrameColumns, rules: EligibilityRules, reason: np.ndarray) -> None:
    """Any 64-bit phone identifiers: both rules only concern rows whose phone is in a small set
    (excluded phones, or phones seen more than once), which one membership test finds."""
    phone = frame.phone
    assert phone is not None
    rows = np.flatnonzero((reason == 0) & (phone != MISSING_ID))
    ph = phone[rows]
    dedup = rules.one_per_phone is not DedupScope.NONE
    repeated = np.empty(0, np.int64)
    if dedup:
        s = np.sort(ph)
        repeated = np.unique(s[1:][s[1:] == s[:-1]])
    members = np.union1d(rules.excluded_phones, repeated)
    if members.size == 0:
        return
    rows = rows[isin_sorted(ph, members)]
    if rules.excluded_phones.size:
        before = isin_sorted(phone[rows], rules.excluded_phones)
        reason[rows[before]] = ExclusionReason.PREVIOUSLY_SAMPLED
        rows = rows[~before]
    if dedup and rows.size:
        _dedup_rows(frame, rows[isin_sorted(phone[rows], repeated)], reason, rules.one_per_phone)


def _dedup_rows(
    frame: FrameColumns, rows: np.ndarray, reason: np.ndarray, scope: DedupScope
) -> None:
    """Mark DUPLICATE_PHONE on ``rows`` (eligible rows sharing a phone) except each first."""
    assert frame.phone is not None
    p, k = frame.phone[rows], frame.key[rows]
    if scope is DedupScope.STRATUM:
        st = frame.stratum[rows]
        order = np.lexsort((k, p, st))
        st = st[order]
    else:
        order = np.lexsort((k, p))
    rows, p, k = rows[order], p[order], k[order]
    start = np.ones(rows.size, dtype=bool)
    start[1:] = p[1:] != p[:-1]
    if scope is DedupScope.STRATUM:
        start[1:] |= st[1:] != st[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(rows.size), 0))
    # Keep every row carrying the group's smallest key: a shared list drawn for several units
    # repeats the same entry (same key) in several strata, and each copy stays eligible.
    reason[rows[k != k[first]]] = ExclusionReason.DUPLICATE_PHONE


def _row_rules(frame: FrameColumns, rules: EligibilityRules, reason: np.ndarray) -> None:
    """The rules that look at one row at a time, a chunk of rows at a time (the temporaries
    stay in cache), written from the last reason to the first so that the first reason that
    applies is the one left standing."""
    by = frame.birth_year if rules.reference_year is not None else None  # None: no age rule
    dates = None
    if rules.period_start is not None or rules.period_end is not None:
        assert frame.transaction_date is not None
        dates = frame.transaction_date.view(np.int64)  # days since 1970; NaT = int64 min
    start = None if rules.period_start is None else _days(rules.period_start)
    end = None if rules.period_end is None else _days(rules.period_end)
    phone = frame.phone if rules.require_phone else None
    assert not rules.require_phone or phone is not None
    # A known birth year above ``adult`` is under age; 0 (missing) is not when adult >= 0.
    adult = None if rules.reference_year is None else rules.reference_year - rules.min_age
    for i in range(0, reason.size, _CHUNK):
        out = reason[i : i + _CHUNK]
        out[:] = 0
        if by is not None and adult is not None:
            b = by[i : i + _CHUNK]
            young = b > adult
            if adult < MISSING_BIRTH_YEAR:
                young &= b != MISSING_BIRTH_YEAR
            np.putmask(out, young, np.uint8(ExclusionReason.UNDERAGE))
        if dates is not None:
            d = dates[i : i + _CHUNK]
            if start is not None and end is not None:
                # One unsigned comparison for both ends (d < start wraps to a huge value).
                outside = (d - start).view(np.uint64) > np.uint64(end - start)
            elif start is not None:
                outside = d < start
            else:
                outside = d > end
            np.putmask(out, outside, np.uint8(ExclusionReason.OUTSIDE_PERIOD))
            np.putmask(out, d == _NAT, np.uint8(ExclusionReason.MISSING_DATE))
        if phone is not None:
            np.putmask(out, phone[i : i + _CHUNK] == MISSING_ID, np.uint8(ExclusionReason.NO_PHONE))


def _days(day: dt.date) -> int:
    return int(np.datetime64(day, "D").astype(np.int64))


def check_eligibility(frame: FrameColumns, rules: EligibilityRules) -> Eligibility:
    """Apply ``rules`` to ``frame``; vectorised, independent of row order.

    Raises ``SamplingError`` when a rule needs a column the frame does not have.
    """
    needs_phone = (
        rules.require_phone
        or rules.one_per_phone is not DedupScope.NONE
        or rules.excluded_phones.size > 0
    )
    if needs_phone and frame.phone is None:
        raise SamplingError("the phone rules need the frame's phone column")
    if rules.excluded_persons.size and frame.person is None:
        raise SamplingError("excluding earlier persons needs the frame's person column")
    checks_period = rules.period_start is not None or rules.period_end is not None
    if checks_period and frame.transaction_date is None:
        raise SamplingError("the reference period needs the frame's transaction dates")

    reason = np.empty(len(frame), dtype=np.uint8)
    phone_rules = rules.excluded_phones.size > 0 or rules.one_per_phone is not DedupScope.NONE
    i_bits, highest = (_packable(frame.phone) if phone_rules and frame.phone is not None
                       else (0, 0))
    if not i_bits:
        _row_rules(frame, rules, reason)
        _person_rule(frame, rules, reason)
        if phone_rules:
            _phone_rules_hashed(frame, rules, reason)
        return _result(reason)

    phone = frame.phone
    assert phone is not None
    dedup = rules.one_per_phone is not DedupScope.NONE
    if len(frame) < _THREADED_SORT_FROM:
        _row_rules(frame, rules, reason)
        parts = [_phone_range(phone, i_bits, 1, highest, rules.excluded_phones, dedup)]
    else:
        # The phone sort needs no other rule, and two ranges of phone values share no phone:
        # a second thread sorts the upper range meanwhile. This thread also applies the
        # row-wise rules, so it takes somewhat fewer phones.
        sample = np.sort(phone[:: max(len(frame) // 4096, 1)])
        split = max(int(sample[int(sample.size * 0.45)]), 1)
        with ThreadPoolExecutor(max_workers=1) as pool:
            upper = pool.submit(_phone_range, phone, i_bits, split, highest,
                                rules.excluded_phones, dedup)
            _row_rules(frame, rules, reason)
            parts = [_phone_range(phone, i_bits, 1, split - 1, rules.excluded_phones, dedup)]
            parts.append(upper.result())
    _person_rule(frame, rules, reason)
    _phone_rules_sorted(frame, rules, reason, parts)
    return _result(reason)


def _person_rule(frame: FrameColumns, rules: EligibilityRules, reason: np.ndarray) -> None:
    if rules.excluded_persons.size:
        assert frame.person is not None
        earlier = isin_sorted(frame.person, rules.excluded_persons) & (reason == 0)
        np.putmask(reason, earlier, np.uint8(ExclusionReason.PREVIOUSLY_SAMPLED))


def _result(reason: np.ndarray) -> Eligibility:
    # One comparison and count per reason: cheaper than bincount, which widens every code.
    counts = {r: int(np.count_nonzero(reason == r)) for r in ExclusionReason}
    return Eligibility(reason=reason, counts=counts)
