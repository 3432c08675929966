"""Short, human-typable form codes with a check character.

A code is 9 random symbols plus 1 check symbol over a 31-symbol alphabet (Crockford's base 32
without ``Z``, so I, L, O, U and Z never appear). 31⁹ ≈ 2^44.6, so the random part carries more
than 40 bits. Printed as two groups of five: ``K7QXM-2P9AB``.

The check symbol makes the weighted sum Σ (i + 1)·vᵢ over all ten symbols ≡ 0 (mod 31). Because 31
is prime and the weights 1..10 are distinct and non-zero mod 31, every single-symbol
substitution (changes the sum by wᵢ·δ ≢ 0) and every adjacent transposition (changes it by
(wᵢ₊₁ − wᵢ)·δ = ±δ ≢ 0) is detected, including those involving the check symbol itself.
"""

from __future__ import annotations

import secrets

import numpy as np

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXY"
MODULUS = len(ALPHABET)  # 31, prime
RANDOM_LENGTH = 9
CODE_LENGTH = RANDOM_LENGTH + 1
MAX_VALUE = MODULUS**RANDOM_LENGTH  # exclusive upper bound of the random part
GROUP = 5

_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
# Look-alikes a person may type: map them to the symbol they were meant to be.
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1", "Z": "2"})
_SEPARATORS = str.maketrans("", "", " -_.\t\u00a0\u2010\u2011\u2012\u2013\u2014")


class ShortCodeError(ValueError):
    """A short code cannot be made or read."""


def _check_symbol(body: str) -> str:
    total = sum((i + 1) * _VALUE[ch] for i, ch in enumerate(body))
    # Solve total + (n + 1)·c ≡ 0 (mod 31) for c.
    weight = len(body) + 1
    c = (-total * pow(weight, -1, MODULUS)) % MODULUS
    return ALPHABET[c]


def encode_value(value: int) -> str:
    """The 10-symbol code (no separator) for an integer 0 <= value < 31⁹."""
    if not 0 <= value < MAX_VALUE:
        raise ShortCodeError(f"value out of range 0..{MAX_VALUE - 1}")
    digits = []
    for _ in range(RANDOM_LENGTH):
        value, d = divmod(value, MODULUS)
        digits.append(ALPHABET[d])
    body = "".join(reversed(digits))
    return body + _check_symbol(body)


def make_short_code(source: int | np.random.Generator | None = None) -> str:
    """Make a canonical short code (10 symbols, no separator).

    `source` is an integer to encode deterministically, a NumPy Generator (reproducible draws,
    e.g. seeded per campaign), or None for a cryptographically random code from `secrets`.
    """
    if source is None:
        value = secrets.randbelow(MAX_VALUE)
    elif isinstance(source, np.random.Generator):
        value = int(source.integers(0, MAX_VALUE, dtype=np.int64))
    elif isinstance(source, int | np.integer):
        value = int(source)
    else:
        raise TypeError("source must be an int, a numpy Generator or None")
    return encode_value(value)


def normalise_short_code(text: str) -> str:
    """Uppercase, drop spaces and dashes, map O→0, I/L→1, Z→2 (what a person meant)."""
    return text.translate(_SEPARATORS).upper().translate(_CONFUSABLE)


def validate_short_code(text: str) -> bool:
    """True when `text` (in any spacing/case) is a well-formed code whose check symbol holds."""
    code = normalise_short_code(text)
    if len(code) != CODE_LENGTH or any(ch not in _VALUE for ch in code):
        return False
    return sum((i + 1) * _VALUE[ch] for i, ch in enumerate(code)) % MODULUS == 0


def decode_short_code(text: str) -> int:
    """The integer behind a valid code (ShortCodeError when the code is invalid)."""
    if not validate_short_code(text):
        raise ShortCodeError("invalid short code")
    value = 0
    for ch in normalise_short_code(text)[:RANDOM_LENGTH]:
        value = value * MODULUS + _VALUE[ch]
    return value


def format_short_code(text: str) -> str:
    """Print form: groups of five separated by a dash, e.g. ``K7QXM-2P9AB``."""
    code = normalise_short_code(text)
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))
