"""QR codes: fixed mask, vector drawing, decodable."""

from __future__ import annotations

import numpy as np
import pytest
import qrcode
import zxingcpp
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M

from printing.qr import QrCapacityError, qr_matrix, qr_modules, qr_path_ops


def raster(matrix: list[list[bool]], px: int = 4, quiet: int = 4) -> Image.Image:
    m = np.array(matrix, dtype=bool)
    m = np.pad(m, quiet)
    img = np.where(m, 0, 255).astype(np.uint8)
    img = np.kron(img, np.ones((px, px), dtype=np.uint8))
    return Image.fromarray(img, mode="L")


def ops_to_matrix(ops: str, n: int) -> list[list[bool]]:
    """Paint the `re` operators back into a module grid."""
    grid = [[False] * n for _ in range(n)]
    for line in ops.splitlines():
        if line.endswith(" re"):
            x, y, w, _h = (int(v) for v in line.split()[:4])
            for c in range(x, x + w):
                grid[n - 1 - y][c] = True
    return grid


@pytest.mark.parametrize(
    "url",
    [
        "https://ks.gov.vn/f/K7QXM2P9AB",
        "https://khaosat.quangbinh.gov.vn/f/K7QXM2P9AB",
        "https://khaosat.thanhphohanoi.gov.vn/phieu/0123456789ABCDEFGHJKMNPQRSTVWXY?x=1",
    ],
)
def test_qr_decodes_to_the_url(url: str) -> None:
    matrix = qr_matrix(url)
    found = zxingcpp.read_barcodes(raster(matrix))
    assert [r.text for r in found] == [url]
    assert found[0].ec_level == "M"


def test_path_ops_paint_exactly_the_dark_modules() -> None:
    matrix = qr_matrix("https://khaosat.quangbinh.gov.vn/f/K7QXM2P9AB")
    ops = qr_path_ops(matrix)
    assert ops.endswith("f")
    assert ops_to_matrix(ops, len(matrix)) == matrix
    # runs are merged: fewer rectangles than dark modules
    assert ops.count(" re") < sum(map(sum, matrix))


@pytest.mark.parametrize("length", [5, 40, 90, 300])
@pytest.mark.parametrize("mask", [0, 4, 7])
def test_fast_encoder_matches_the_qrcode_package(length: int, mask: int) -> None:
    data = ("https://khaosat.vn/f/" + "x9Kq-Đ" * 60)[:length]
    ours = qr_modules(data, mask_pattern=mask)
    ref = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=0, mask_pattern=mask)
    ref.add_data(data.encode("utf-8"), optimize=0)
    ref.make(fit=True)
    assert ours.shape == (ref.modules_count, ref.modules_count)
    assert (ours == np.array(ref.modules, dtype=bool)).all()


def test_too_long_data_is_refused() -> None:
    with pytest.raises(QrCapacityError):
        qr_modules("x" * 3000)
