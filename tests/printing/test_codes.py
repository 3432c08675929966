"""Short codes: alphabet, check symbol, normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from printing.codes import (
    ALPHABET,
    CODE_LENGTH,
    MAX_VALUE,
    ShortCodeError,
    decode_short_code,
    encode_value,
    format_short_code,
    make_short_code,
    normalise_short_code,
    validate_short_code,
)


def sample_codes(n: int = 300) -> list[str]:
    rng = np.random.default_rng(2026)
    return [make_short_code(rng) for _ in range(n)]


def test_alphabet_is_unambiguous_and_prime_sized() -> None:
    assert len(ALPHABET) == 31
    assert all(n % d for n in [len(ALPHABET)] for d in range(2, 31))
    assert not set("ILOUZ") & set(ALPHABET)
    assert len(set(ALPHABET)) == len(ALPHABET)


def test_random_part_has_at_least_40_bits() -> None:
    assert MAX_VALUE >= 2**40


def test_generated_codes_are_valid_and_reproducible() -> None:
    codes = sample_codes()
    assert all(len(c) == CODE_LENGTH and set(c) <= set(ALPHABET) for c in codes)
    assert all(validate_short_code(c) for c in codes)
    assert codes == sample_codes()  # same seed, same codes
    assert len(set(codes)) == len(codes)
    assert validate_short_code(make_short_code())  # secrets


def test_every_substitution_and_adjacent_transposition_is_detected() -> None:
    for code in sample_codes(200):
        for i, ch in enumerate(code):
            for other in ALPHABET:
                if other != ch:
                    assert not validate_short_code(code[:i] + other + code[i + 1 :])
        for i in range(len(code) - 1):
            if code[i] != code[i + 1]:
                swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
                assert not validate_short_code(swapped)


def test_normalisation_accepts_what_people_type() -> None:
    code = encode_value(123_456_789_012)
    printed = format_short_code(code)
    assert printed == f"{code[:5]}-{code[5:]}"
    assert validate_short_code(printed)
    assert validate_short_code(" " + printed.lower().replace("-", " - ") + " ")
    with_zero_one = encode_value(0)  # all zeros but the check symbol
    assert normalise_short_code(with_zero_one.replace("0", "O")) == with_zero_one
    assert normalise_short_code("il-oz") == "1102"


def test_encode_decode_round_trip_and_bounds() -> None:
    for value in (0, 1, 31, 2**40, MAX_VALUE - 1):
        assert decode_short_code(encode_value(value)) == value
    assert make_short_code(42) == encode_value(42)
    with pytest.raises(ShortCodeError):
        encode_value(MAX_VALUE)
    good = encode_value(987_654_321)
    bad = good[:-1] + ALPHABET[(ALPHABET.index(good[-1]) + 1) % len(ALPHABET)]
    with pytest.raises(ShortCodeError):
        decode_short_code(bad)
    assert not validate_short_code("") and not validate_short_code("ABCDE")
    assert not validate_short_code("U" * CODE_LENGTH)
