"""Vietnamese phone-number normalisation for frame imports (pure, no Flask/DB).

`parse_phone` turns whatever a spreadsheet holds in a phone cell (text with spaces, dots and
dashes, "+84"/"84"/"0084" prefixes, Excel damage such as a lost leading zero, "912345678.0" or
"9.12345678E+08", numeric cells given as int/float, pre-2018 11-digit mobile numbers) into a
`PhoneResult` with the number in E.164 form.

The `phonenumbers` library decides validity, but calling it costs ~40 µs per number, which would
dominate a million-row import. So we ask it once per (3-digit national prefix, length) pair, the
first time the pair is seen, on a handful of probe numbers; where every probe gets the same
verdict the pair goes into a lookup table, and ordinary numbers are decided by a set lookup.
Only numbers whose prefix the metadata splits more finely (or that are odd in other ways) reach
`phonenumbers`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

import phonenumbers
from phonenumbers import PhoneNumberType

__all__ = [
    "LEGACY_MOBILE_PREFIXES",
    "PhoneIssue",
    "PhoneKind",
    "PhoneResult",
    "clear_phone_cache",
    "fast_mobile_e164",
    "learn_prefixes",
    "mobile_prefixes",
    "parse_phone",
]


class PhoneKind(enum.StrEnum):
    """What kind of number a cell held."""

    MOBILE = "mobile"
    LANDLINE = "landline"
    INVALID = "invalid"
    EMPTY = "empty"


class PhoneIssue(enum.StrEnum):
    """Why a number is invalid, or what was noteworthy about a valid one."""

    OK = "ok"
    EMPTY = "empty"
    NOT_A_NUMBER = "not_a_number"  # letters or other junk where digits were expected
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    FOREIGN = "foreign"  # a valid-looking number outside Vietnam
    UNKNOWN_PREFIX = "unknown_prefix"  # right length, but no network uses this prefix
    SERVICE_NUMBER = "service_number"  # toll-free, premium, VoIP...: not a person


class PhoneResult(NamedTuple):
    """Outcome of parsing one phone cell.

    `e164` is set for MOBILE and LANDLINE only. `converted_legacy` tells that an old 11-digit
    mobile number was rewritten to its 10-digit form. `multiple` tells that the cell held more
    than one number and the first valid one was kept.
    """

    e164: str | None
    kind: PhoneKind
    reason: PhoneIssue = PhoneIssue.OK
    converted_legacy: bool = False
    multiple: bool = False

    @property
    def ok(self) -> bool:
        """True when the number can be stored (mobile or landline)."""
        return self.e164 is not None


# Pre-2018 11-digit mobile prefixes (national, without the trunk 0) → today's prefix.
LEGACY_MOBILE_PREFIXES: dict[str, str] = {
    "162": "32", "163": "33", "164": "34", "165": "35", "166": "36", "167": "37",
    "168": "38", "169": "39",
    "120": "70", "121": "79", "122": "77", "126": "76", "128": "78",
    "123": "83", "124": "84", "125": "85", "127": "81", "129": "82",
    "186": "56", "188": "58",
    "199": "59",
}  # fmt: skip

EMPTY_RESULT = PhoneResult(None, PhoneKind.EMPTY, PhoneIssue.EMPTY)

_TYPE_TO_KIND: dict[int, PhoneKind] = {
    PhoneNumberType.MOBILE: PhoneKind.MOBILE,
    PhoneNumberType.FIXED_LINE: PhoneKind.LANDLINE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: PhoneKind.MOBILE,
}


def _classify_slow(nsn: str) -> PhoneKind | PhoneIssue:
    """Ask phonenumbers about one national significant number (digits, no trunk 0).

    The PhoneNumber is built directly: `phonenumbers.parse` would re-do the text clean-up we
    have already done and costs most of the ~40 µs.
    """
    if not nsn.isdigit() or nsn[0] == "0":
        return PhoneIssue.NOT_A_NUMBER
    number = phonenumbers.PhoneNumber(country_code=84, national_number=int(nsn))
    number_type = phonenumbers.number_type(number)
    if number_type == PhoneNumberType.UNKNOWN:
        return PhoneIssue.UNKNOWN_PREFIX
    kind = _TYPE_TO_KIND.get(number_type)
    return kind if kind is not None else PhoneIssue.SERVICE_NUMBER


_UNDECIDED = object()  # the prefix table's marker for "metadata not uniform: ask every time"
# (3-digit prefix, NSN length) → verdict, filled lazily the first time a pair is seen.
_PREFIX_TABLE: dict[tuple[str, int], object] = {}
# 3-digit prefixes of 9-digit mobile NSNs seen so far: the fast path in parse_phone.
_MOBILE9: set[str] = set()


def _prefix_verdict(prefix: str, length: int) -> PhoneKind | PhoneIssue | None:
    """Verdict for every number with this prefix and length, or None if it depends on more.

    Asked of phonenumbers once per pair on probe numbers: each digit repeated over the remaining
    positions plus two mixed suffixes, so a digit class after the prefix (e.g. VN's "121[0-3]")
    shows up as disagreement and the pair is left to the slow path.
    """
    key = (prefix, length)
    verdict = _PREFIX_TABLE.get(key)
    if verdict is None:
        rest = length - 3
        probes = [str(d) * rest for d in range(10)]
        probes += ["1234567890"[:rest], "9876543210"[:rest]]
        verdicts = {_classify_slow(prefix + s) for s in probes}
        verdict = verdicts.pop() if len(verdicts) == 1 else _UNDECIDED
        _PREFIX_TABLE[key] = verdict
        if length == 9 and verdict is PhoneKind.MOBILE:
            _MOBILE9.add(prefix)
    return None if verdict is _UNDECIDED else verdict  # type: ignore[return-value]


_CACHE: dict[object, PhoneResult] = {}
_CACHE_LIMIT = 200_000  # bounded memory: the cache is simply dropped when it grows past this

_SPLIT_RE = re.compile(r"[,;/|\n]|\s-\s|\s+(?:hoặc|hoac|or)\s+", re.IGNORECASE)
_DROP_RE = re.compile(r"[\s.\-()\[\]'\"_]+")
_EXCEL_FLOAT_RE = re.compile(r"\d+(?:\.\d*)?(?:[eE][+]?\d+)?")


def clear_phone_cache() -> None:
    """Forget cached results (tests, or between imports to free memory)."""
    _CACHE.clear()


def parse_phone(raw: object) -> PhoneResult:
    """Normalise one phone cell (str, int, float or None) to a `PhoneResult`.

    Clean mobile numbers take a fast path; other results are cached by raw value (bounded), so
    repeated odd values cost one dict lookup.
    """
    if type(raw) is str:
        e164 = fast_mobile_e164(raw)
        if e164 is not None:
            # Not cached: clean numbers are mostly unique and this is as cheap as a lookup.
            return _new(PhoneResult, (e164, _MOBILE, _OK, False, False))
        # Digits with the usual separators ("0912 345 678", "+84 912.345.678", "01621234567",
        # "024 3812 3456"): one C-level translate, then straight to the digit rules.
        digits = raw.translate(_SEPARATORS)
        plus = digits[:1] == "+"
        if plus:
            digits = digits[1:]
        if (
            digits.isdigit()
            and digits.isascii()
            and not ("." in raw and raw.rstrip("0").endswith("."))  # Excel's "912345678.0"
        ):
            if not plus:
                e164 = fast_mobile_e164(digits)
                if e164 is not None:
                    return _new(PhoneResult, (e164, _MOBILE, _OK, False, False))
            return _parse_digits(digits, plus=plus)
    cached = _CACHE.get(raw)
    if cached is not None:
        return cached
    result = _parse_uncached(raw)
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[raw] = result
    return result


# Separators people type inside a number: deleted in one C call before the digit rules.
_SEPARATORS = str.maketrans("", "", " .-()\xa0\t")
_new = tuple.__new__  # builds a PhoneResult without NamedTuple.__new__'s argument handling
_MOBILE = PhoneKind.MOBILE
_OK = PhoneIssue.OK


def mobile_prefixes() -> set[str]:
    """The live set of 3-digit prefixes known to be 9-digit mobile NSNs (grows as seen).

    For callers that inline the fast path: `len(s) == 10 and s[0] == "0" and s.isdigit()
    and s[1:4] in mobile_prefixes()` means `s` is a valid mobile "+84" + s[1:].
    """
    return _MOBILE9


def learn_prefixes(prefixes: Iterable[str]) -> set[str]:
    """Decide each 3-digit prefix for 9-digit numbers now (phonenumbers, once per prefix), so
    that callers inlining the fast path see every mobile prefix of their data in
    `mobile_prefixes()` from the first row on. Returns that set."""
    for prefix in prefixes:
        if len(prefix) == 3 and prefix.isdigit() and prefix.isascii() and prefix[0] != "0":
            _prefix_verdict(prefix, 9)
    return _MOBILE9


def fast_mobile_e164(raw: str) -> str | None:
    """E.164 for the two common shapes of a current mobile number, else None.

    "0912345678" and "912345678" (leading zero lost in Excel), digits only, with a prefix
    already confirmed as mobile by phonenumbers. Anything else returns None and must go
    through `parse_phone`.
    """
    n = len(raw)
    if n == 10:
        if raw[0] == "0" and raw.isdigit() and raw[1:4] in _MOBILE9:
            return "+84" + raw[1:]
    elif n == 9 and raw.isdigit() and raw[:3] in _MOBILE9:
        return "+84" + raw
    return None


def _parse_uncached(raw: object) -> PhoneResult:
    if raw is None or raw == "":
        return EMPTY_RESULT
    if isinstance(raw, bool):
        return PhoneResult(None, PhoneKind.INVALID, PhoneIssue.NOT_A_NUMBER)
    if isinstance(raw, int):
        return _parse_digits(str(raw), plus=False)
    if isinstance(raw, float):
        # Excel stores phone columns typed as numbers: 912345678.0.
        if raw != raw or raw < 0 or raw != int(raw):
            return PhoneResult(None, PhoneKind.INVALID, PhoneIssue.NOT_A_NUMBER)
        return _parse_digits(str(int(raw)), plus=False)
    text = str(raw).strip()
    if not text:
        return EMPTY_RESULT
    if not text.isascii():
        # Full-width digits and similar: map to ASCII; other letters make it invalid below.
        text = "".join(str(int(c)) if c.isdecimal() else c for c in text)
    parts = [p for p in _SPLIT_RE.split(text) if p.strip()]
    if len(parts) > 1:
        first_error: PhoneResult | None = None
        for part in parts:
            result = _parse_text(part)
            if result.ok:
                return result._replace(multiple=True)
            first_error = first_error or result
        assert first_error is not None
        return first_error
    return _parse_text(text)


def _parse_text(text: str) -> PhoneResult:
    text = text.strip()
    # Excel damage: "912345678.0", "9.12345678E+08" (a number shown in scientific format).
    if ("." in text or "e" in text or "E" in text) and _EXCEL_FLOAT_RE.fullmatch(text):
        digits = _excel_number_digits(text)
        if digits is not None:
            return _parse_digits(digits, plus=False)
    plus = text.startswith("+")
    cleaned = _DROP_RE.sub("", text[1:] if plus else text)
    if not cleaned:
        return EMPTY_RESULT if not plus else _invalid(PhoneIssue.NOT_A_NUMBER)
    if not cleaned.isdigit():
        return _invalid(PhoneIssue.NOT_A_NUMBER)
    return _parse_digits(cleaned, plus=plus)


def _excel_number_digits(text: str) -> str | None:
    """Digits of an integral number written as decimal or scientific notation, else None."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if value != value.to_integral_value() or value < 0:
        return None
    return str(int(value))


def _invalid(reason: PhoneIssue) -> PhoneResult:
    return PhoneResult(None, PhoneKind.INVALID, reason)


def _parse_digits(digits: str, *, plus: bool) -> PhoneResult:
    """Strip the country/trunk prefix from a digit string and classify the national number."""
    if plus:
        if not digits.startswith("84"):
            return _invalid(PhoneIssue.FOREIGN)
        nsn = digits[2:]
    elif digits.startswith("0084"):
        nsn = digits[4:]
    elif digits.startswith("00"):
        return _invalid(PhoneIssue.FOREIGN)
    elif digits.startswith("0"):
        nsn = digits[1:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        # 84 + 9-digit mobile or 84 + 10-digit landline/legacy. A bare 9-digit "84..." is a
        # Vinaphone 084 mobile that lost its leading zero, handled by the branch below.
        nsn = digits[2:]
    else:
        nsn = digits  # leading zero lost (Excel numeric cell)
    converted = False
    if len(nsn) == 10 and nsn[:3] in LEGACY_MOBILE_PREFIXES:
        nsn = LEGACY_MOBILE_PREFIXES[nsn[:3]] + nsn[3:]
        converted = True
    if len(nsn) < 9:
        return _invalid(PhoneIssue.TOO_SHORT)
    if len(nsn) > 10:
        return _invalid(PhoneIssue.TOO_LONG)
    verdict = _prefix_verdict(nsn[:3], len(nsn))
    if verdict is None:
        verdict = _classify_slow(nsn)
    if isinstance(verdict, PhoneKind):
        return _new(PhoneResult, ("+84" + nsn, verdict, _OK, converted, False))
    return _invalid(verdict)
