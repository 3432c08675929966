"""QR codes drawn as vector rectangles, encoded fast.

The `qrcode` package picks the best of eight mask patterns by scoring each candidate (~6 ms per
code) and, even with the mask fixed, spends ~1.5 ms in pure-Python bit buffers, Reed–Solomon
polynomials and module placement. Any mask decodes (the score only nudges robustness), so we fix
the mask and do the per-code work with NumPy: Reed–Solomon parity is linear over GF(2), so each
block's parity bits are a matrix product of its data bits; module placement is a precomputed
scatter. Function patterns, format/version information and the placement order come from the
`qrcode` package itself, once per version. Byte mode, error-correction level M. Output is
identical to `qrcode` with the same version and mask (tested).

Codes are drawn as merged horizontal runs in module units (short integer PDF operators), to be
placed with a transformation matrix; no raster image is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import qrcode
from qrcode import base as qr_base
from qrcode import util as qr_util
from qrcode.constants import ERROR_CORRECT_M

QUIET_ZONE = 4  # modules of white space the standard asks for around the symbol
FIXED_MASK = 4  # any of 0..7 decodes; 4 (checker blocks) avoids long stripes
MAX_VERSION = 40


class QrCapacityError(ValueError):
    """The data does not fit a version-40 QR code at level M."""


# --- GF(256) Reed–Solomon, used only to build the parity matrices ----------------------------

_EXP = [0] * 512
_LOG = [0] * 256
_x = 1
for _i in range(255):
    _EXP[_i] = _x
    _LOG[_x] = _i
    _x <<= 1
    if _x & 0x100:
        _x ^= 0x11D
for _i in range(255, 512):
    _EXP[_i] = _EXP[_i - 255]


def _gf_mul(a: int, b: int) -> int:
    return 0 if a == 0 or b == 0 else _EXP[_LOG[a] + _LOG[b]]


def _generator(degree: int) -> list[int]:
    g = [1]
    for i in range(degree):
        nxt = [0] * (len(g) + 1)
        for j, coef in enumerate(g):
            nxt[j] ^= coef
            nxt[j + 1] ^= _gf_mul(coef, _EXP[i])
        g = nxt
    return g


def _rs_parity(data: list[int], ec_count: int) -> list[int]:
    gen = _generator(ec_count)
    rem = [0] * ec_count
    for b in data:
        factor = b ^ rem[0]
        rem = rem[1:] + [0]
        if factor:
            for j in range(ec_count):
                rem[j] ^= _gf_mul(gen[j + 1], factor)
    return rem


@cache
def _parity_matrix(data_count: int, ec_count: int) -> np.ndarray:
    """(8·data_count × 8·ec_count) float32 matrix: parity bits = data bits · M (mod 2)."""
    rows = np.zeros((8 * data_count, 8 * ec_count), dtype=np.float32)
    for i in range(data_count):
        unit = [0] * data_count
        unit[i] = 1
        base = _rs_parity(unit, ec_count)  # parity of the byte value 1 at position i
        for bit in range(8):
            value = 0x80 >> bit
            parity = bytes(_gf_mul(value, p) for p in base)
            rows[8 * i + bit] = np.unpackbits(np.frombuffer(parity, dtype=np.uint8))
    return rows


# --- per-version geometry --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Version:
    number: int
    size: int
    data_codewords: int
    blocks: tuple[tuple[int, int], ...]  # (data_count, ec_count) per block
    template: np.ndarray  # bool modules: function patterns and format info, data area False
    rows: np.ndarray  # data module coordinates, in placement order
    cols: np.ndarray
    mask: np.ndarray  # mask bit at each data module, in placement order
    interleave: np.ndarray  # codeword order: indices into data blocks then parity blocks


@cache
def _version(number: int, mask_pattern: int) -> _Version:
    code = qrcode.QRCode(version=number, error_correction=ERROR_CORRECT_M, border=0,
                         mask_pattern=mask_pattern)
    n = number * 4 + 17
    code.modules_count = n
    code.modules = [[None] * n for _ in range(n)]
    code.setup_position_probe_pattern(0, 0)
    code.setup_position_probe_pattern(n - 7, 0)
    code.setup_position_probe_pattern(0, n - 7)
    code.setup_position_adjust_pattern()
    code.setup_timing_pattern()
    code.setup_type_info(False, mask_pattern)
    if number >= 7:
        code.setup_type_number(False)
    free = [[m is None for m in row] for row in code.modules]
    template = np.array([[bool(m) for m in row] for row in code.modules], dtype=bool)
    # the placement walk of the standard (same as qrcode's map_data)
    rows, cols = [], []
    row, inc = n - 1, -1
    for col in range(n - 1, 0, -2):
        if col <= 6:
            col -= 1
        while True:
            for c in (col, col - 1):
                if free[row][c]:
                    rows.append(row)
                    cols.append(c)
            row += inc
            if row < 0 or row >= n:
                row -= inc
                inc = -inc
                break
    mask_func = qr_util.mask_func(mask_pattern)
    mask = np.array([bool(mask_func(r, c)) for r, c in zip(rows, cols, strict=True)])
    blocks = tuple(
        (b.data_count, b.total_count - b.data_count)
        for b in qr_base.rs_blocks(number, ERROR_CORRECT_M)
    )
    # codewords are sent column-wise: byte i of every data block, then of every parity block
    order: list[int] = []
    start = 0
    for part in (0, 1):
        lengths = [blk[part] for blk in blocks]
        offsets = np.cumsum([0] + lengths[:-1]) + start
        for i in range(max(lengths)):
            order += [int(off) + i for off, ln in zip(offsets, lengths, strict=True) if i < ln]
        start += sum(lengths)
    return _Version(number, n, sum(d for d, _ in blocks), blocks, template,
                    np.array(rows), np.array(cols), mask, np.array(order))


def _count_bits(version: int) -> int:
    return 8 if version < 10 else 16


@cache
def _capacity(version: int) -> int:
    blocks = qr_base.rs_blocks(version, ERROR_CORRECT_M)
    return sum(b.data_count for b in blocks)


def _fit_version(length: int) -> int:
    for v in range(1, MAX_VERSION + 1):
        if 4 + _count_bits(v) + 8 * length <= 8 * _capacity(v):
            return v
    raise QrCapacityError("data too long for a QR code")


def _data_codewords(payload: bytes, version: int, capacity: int) -> np.ndarray:
    """Mode, count, data, terminator and padding as `capacity` bytes."""
    cb = _count_bits(version)
    value = (0b0100 << cb) | len(payload)  # byte mode indicator, character count
    head_bits = 4 + cb
    bits = np.concatenate([
        np.unpackbits(np.frombuffer(value.to_bytes(3, "big"), dtype=np.uint8))[-head_bits:],
        np.unpackbits(np.frombuffer(payload, dtype=np.uint8)),
    ])
    limit = 8 * capacity
    bits = np.concatenate([bits, np.zeros(min(4, limit - len(bits)), dtype=np.uint8)])
    if len(bits) % 8:
        bits = np.concatenate([bits, np.zeros(8 - len(bits) % 8, dtype=np.uint8)])
    data = np.packbits(bits)
    pad = np.resize(np.array([0xEC, 0x11], dtype=np.uint8), capacity - len(data))
    return np.concatenate([data, pad])


def qr_modules(data: str | bytes, *, mask_pattern: int = FIXED_MASK,
               version: int | None = None) -> np.ndarray:
    """Module matrix (row 0 at the top, True = dark) of `data` in byte mode at level M."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    v = version or _fit_version(len(payload))
    info = _version(v, mask_pattern)
    codewords = _data_codewords(payload, v, info.data_codewords)
    parts = [codewords]
    offset = 0
    for dc, ec in info.blocks:
        block_bits = np.unpackbits(codewords[offset : offset + dc]).astype(np.float32)
        offset += dc
        parity_bits = (block_bits @ _parity_matrix(dc, ec)) % 2
        parts.append(np.packbits(parity_bits.astype(np.uint8)))
    stream = np.concatenate(parts)[info.interleave]
    bits = np.unpackbits(stream).astype(bool)
    placed = np.zeros(len(info.rows), dtype=bool)  # remainder bits stay 0
    placed[: len(bits)] = bits
    modules = info.template.copy()
    modules[info.rows, info.cols] = placed ^ info.mask
    return modules


def qr_matrix(data: str, *, mask_pattern: int = FIXED_MASK) -> list[list[bool]]:
    """`qr_modules` as nested lists."""
    return qr_modules(data, mask_pattern=mask_pattern).tolist()


def qr_path_ops(matrix: np.ndarray | list[list[bool]]) -> str:
    """PDF path operators filling the dark modules, one module = 1 unit, origin bottom-left."""
    m = np.asarray(matrix, dtype=bool)
    n = m.shape[0]
    padded = np.zeros((n, n + 2), dtype=np.int8)
    padded[:, 1:-1] = m
    edges = np.diff(padded, axis=1)
    r, c = np.nonzero(edges)  # row-major: each run's start (+1) is followed by its end (−1)
    starts, rows = c[0::2], r[0::2]
    runs = np.stack([starts, n - 1 - rows, c[1::2] - starts], axis=1)
    return ("%d %d %d 1 re\n" * len(runs)) % tuple(runs.ravel().tolist()) + "f"


def qr_form_stream(data: str) -> tuple[int, str]:
    """(module count, content stream) for a form XObject drawing `data`'s QR code in black."""
    modules = qr_modules(data)
    return modules.shape[0], "0 g\n" + qr_path_ops(modules)
