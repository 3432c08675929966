"""QR codes drawn as vector rectangles.

The `qrcode` package picks the best of eight mask patterns by scoring each candidate, which costs
~6 ms per code. Any mask decodes; the score only nudges robustness, so we fix the mask (≈1 ms) and
emit the dark modules as merged horizontal runs in module units (integers, so the PDF operators are
short), to be placed with a transformation matrix. No raster image is made.
"""

from __future__ import annotations

import qrcode
from qrcode.constants import ERROR_CORRECT_M

QUIET_ZONE = 4  # modules of white space the standard asks for around the symbol
FIXED_MASK = 4  # any of 0..7 decodes; 4 (checker blocks) avoids long stripes


def qr_matrix(data: str, *, mask_pattern: int = FIXED_MASK) -> list[list[bool]]:
    """Module matrix (row 0 at the top, True = dark) of `data` at error-correction level M."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=0, mask_pattern=mask_pattern)
    code.add_data(data)
    code.make(fit=True)
    return [[bool(m) for m in row] for row in code.modules]


def qr_path_ops(matrix: list[list[bool]]) -> str:
    """PDF path operators filling the dark modules, one module = 1 unit, origin bottom-left."""
    n = len(matrix)
    ops: list[str] = []
    for r, row in enumerate(matrix):
        y = n - 1 - r
        c = 0
        while c < n:
            if row[c]:
                start = c
                while c < n and row[c]:
                    c += 1
                ops.append(f"{start} {y} {c - start} 1 re")
            else:
                c += 1
    ops.append("f")
    return "\n".join(ops)


def qr_form_stream(data: str) -> tuple[int, str]:
    """(module count, content stream) for a form XObject drawing `data`'s QR code in black."""
    matrix = qr_matrix(data)
    return len(matrix), "0 g\n" + qr_path_ops(matrix)
