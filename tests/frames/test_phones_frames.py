"""Vietnamese phone normalisation: damage repair, legacy numbers, the fast path's agreement."""

from __future__ import annotations

import numpy as np
import phonenumbers
import pytest

from survey_app.frames.phones import (
    LEGACY_MOBILE_PREFIXES,
    PhoneIssue,
    PhoneKind,
    clear_phone_cache,
    fast_mobile_e164,
    parse_phone,
)

E164 = "+84912345678"


@pytest.mark.parametrize(
    "raw",
    [
        "0912345678",
        "0912 345 678",
        " 0912 345 678 ",
        "0912.345.678",
        "0912-345-678",
        "091-234-5678",
        "(091) 234 5678",
        "(+84) 912 345 678",
        "+84912345678",
        "+84 912 345 678",
        "+84-912-345-678",
        "84912345678",
        "0084912345678",
        "00 84 912 345 678",
        "912345678",  # Excel dropped the leading zero
        "912345678.0",  # ... and showed the float
        "9.12345678E+08",  # ... in scientific notation
        "9.12345678e8",
        912345678,  # numeric cells
        912345678.0,
        "０９１２３４５６７８",  # full-width digits
        "0912\u00a0345\u00a0678",  # NBSP
    ],
)
def test_damaged_mobile_forms(raw: object) -> None:
    clear_phone_cache()
    result = parse_phone(raw)
    assert result.e164 == E164
    assert result.kind is PhoneKind.MOBILE
    assert result.reason is PhoneIssue.OK
    assert not result.converted_legacy


@pytest.mark.parametrize(("old", "new"), sorted(LEGACY_MOBILE_PREFIXES.items()))
def test_every_legacy_prefix_is_converted(old: str, new: str) -> None:
    assert len(LEGACY_MOBILE_PREFIXES) == 21
    for raw in (f"0{old}2345678", f"{old}2345678", f"+84{old}2345678", f"0{old} 234 5678"):
        result = parse_phone(raw)
        assert result.e164 == f"+84{new}2345678", raw
        assert result.kind is PhoneKind.MOBILE  # the new number is valid for phonenumbers
        assert result.converted_legacy


def test_legacy_mapping_matches_the_domain_brief() -> None:
    expected = {
        "0162": "032", "0163": "033", "0164": "034", "0165": "035", "0166": "036",
        "0167": "037", "0168": "038", "0169": "039", "0120": "070", "0121": "079",
        "0122": "077", "0126": "076", "0128": "078", "0123": "083", "0124": "084",
        "0125": "085", "0127": "081", "0129": "082", "0186": "056", "0188": "058",
        "0199": "059",
    }  # fmt: skip
    assert {"0" + k: "0" + v for k, v in LEGACY_MOBILE_PREFIXES.items()} == expected


@pytest.mark.parametrize("raw", ["02438123456", "024 3812 3456", "+84 24 3812 3456", "2438123456",
                                 "02323822222"])  # fmt: skip
def test_landline(raw: str) -> None:
    result = parse_phone(raw)
    assert result.kind is PhoneKind.LANDLINE
    assert result.e164 is not None and result.e164.startswith("+842")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", PhoneIssue.EMPTY),
        ("   ", PhoneIssue.EMPTY),
        (None, PhoneIssue.EMPTY),
        ("abc", PhoneIssue.NOT_A_NUMBER),
        ("không có", PhoneIssue.NOT_A_NUMBER),
        ("0912abc678", PhoneIssue.NOT_A_NUMBER),
        ("12345", PhoneIssue.TOO_SHORT),
        ("09123456", PhoneIssue.TOO_SHORT),
        ("091234567890", PhoneIssue.TOO_LONG),
        ("+6591234567", PhoneIssue.FOREIGN),
        ("0065 9123 4567", PhoneIssue.FOREIGN),
        ("0201234567", PhoneIssue.UNKNOWN_PREFIX),
        ("0891234567", PhoneIssue.UNKNOWN_PREFIX),
        ("1.5", PhoneIssue.TOO_SHORT),  # dots read as separators: "15"
        (1.5, PhoneIssue.NOT_A_NUMBER),
        (-912345678.0, PhoneIssue.NOT_A_NUMBER),
        (True, PhoneIssue.NOT_A_NUMBER),
        ("1800 1234", PhoneIssue.TOO_SHORT),
    ],
)
def test_invalid_numbers(raw: object, reason: PhoneIssue) -> None:
    result = parse_phone(raw)
    assert result.e164 is None
    assert result.reason is reason
    assert result.kind is (PhoneKind.EMPTY if reason is PhoneIssue.EMPTY else PhoneKind.INVALID)
    assert not result.ok


def test_service_number_is_not_a_person() -> None:
    result = parse_phone("0672123456")  # VoIP range in phonenumbers' VN metadata
    assert result.kind is PhoneKind.INVALID
    assert result.reason is PhoneIssue.SERVICE_NUMBER


def test_several_numbers_in_one_cell_keep_the_first_valid() -> None:
    result = parse_phone("0912 345 678 / 0987 654 321")
    assert result.e164 == E164 and result.multiple
    result = parse_phone("nhà: 123; 0987654321")
    assert result.e164 == "+84987654321" and result.multiple
    result = parse_phone("0912345678 hoặc 0987654321")
    assert result.e164 == E164 and result.multiple
    assert parse_phone("abc; xyz").kind is PhoneKind.INVALID


def test_cache_returns_same_answers() -> None:
    clear_phone_cache()
    first = [parse_phone(x) for x in ("01621234567", "abc", "02438123456")]
    again = [parse_phone(x) for x in ("01621234567", "abc", "02438123456")]
    assert first == again


def _reference(national: str) -> PhoneKind:
    """What phonenumbers alone says about a 0-prefixed Vietnamese number."""
    number = phonenumbers.parse(national, "VN")
    if not phonenumbers.is_valid_number(number):
        return PhoneKind.INVALID
    t = phonenumbers.number_type(number)
    if t == phonenumbers.PhoneNumberType.MOBILE:
        return PhoneKind.MOBILE
    if t == phonenumbers.PhoneNumberType.FIXED_LINE:
        return PhoneKind.LANDLINE
    return PhoneKind.INVALID


def test_fast_path_agrees_with_phonenumbers_on_random_numbers() -> None:
    rng = np.random.default_rng(2018)
    clear_phone_cache()
    # Every 3-digit mobile prefix and random 10/11-digit strings (legacy-looking ones excluded:
    # those are converted on purpose and phonenumbers rejects their old form).
    samples = [f"0{p}{rng.integers(0, 1_000_000):06d}" for p in range(100, 1000)]
    samples += [f"0{rng.integers(100_000_000, 1_000_000_000)}" for _ in range(1500)]
    samples += [f"02{rng.integers(0, 1_000_000_000):09d}" for _ in range(500)]
    for raw in samples:
        if len(raw) == 11 and raw[1:4] in LEGACY_MOBILE_PREFIXES:
            continue
        result = parse_phone(raw)
        assert result.kind is _reference(raw), raw
        if result.kind is not PhoneKind.INVALID:
            assert phonenumbers.format_number(
                phonenumbers.parse(raw, "VN"), phonenumbers.PhoneNumberFormat.E164
            ) == result.e164
        # The inline fast path never says MOBILE where phonenumbers disagrees.
        fast = fast_mobile_e164(raw)
        if fast is not None:
            assert result.kind is PhoneKind.MOBILE and fast == result.e164


def test_fast_path_does_not_accept_non_digits() -> None:
    assert fast_mobile_e164("0912 34567") is None
    assert fast_mobile_e164("091234567x") is None
    assert fast_mobile_e164("") is None
