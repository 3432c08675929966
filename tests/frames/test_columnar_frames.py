"""The columnar import reads CSV with polars only where that gives exactly what the `csv`
module gives: compare both readers, block by block, on files made to trip polars up."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from survey_app.frames import reader
from survey_app.frames.reader import open_table
from survey_app.frames.rows import FrameRecord, validate_rows

HEADER = "TÊN CƠ QUAN\nDANH SÁCH\n\nTT,Họ và tên,Thủ tục,Địa chỉ,Số điện thoại,Ngày\n"


def _rows(i: int) -> str:
    return (f'{i},Nguyễn Văn {chr(65 + i % 26)},Đăng ký khai sinh,"Thôn {i}, xã A",'
            f"09{12345600 + i:08d},0{1 + i % 9}/05/2022\n")


def _results(path: Path, *, polars: bool) -> list[tuple]:
    with open_table(path) as table:
        if not polars:
            table._frames = None  # the row reader only
        out = []
        for r in validate_rows(table, phone_required=False, reference_year=2022, chunk_rows=7):
            d = dataclasses.asdict(r) if isinstance(r, FrameRecord) else dataclasses.asdict(r)
            out.append(tuple(sorted((k, repr(v)) for k, v in d.items())))
        return out


BODIES = {
    "plain": "".join(_rows(i) for i in range(40)),
    "blank lines": "".join(_rows(i) + ("\n" if i % 7 == 0 else "") for i in range(40)),
    "multi-line cell": "".join(_rows(i) for i in range(20)) + '21,"Trần\nThị B",x,y,0912000111,\n'
    + "".join(_rows(i) for i in range(22, 40)),
    "malformed quotes": "".join(_rows(i) for i in range(20)) + '21,Lê "Tí" Văn,x,"y"z,0912000112,\n'
    + "".join(_rows(i) for i in range(22, 40)),
    "lone CR": "".join(_rows(i) for i in range(20)) + "21,Phạm C,x,y\r0912000113,\n"
    + "".join(_rows(i) for i in range(22, 40)),
    "ragged": "".join(_rows(i) for i in range(10)) + "11,Hoàng D\n12,Vũ E,a,b,0912000114,,x,y\n"
    + "".join(_rows(i) for i in range(13, 40)),
    "decomposed": "".join(_rows(i) for i in range(10)).replace("ễ", "e\u0302\u0303")
    + "".join(_rows(i) for i in range(10, 40)),
}


@pytest.mark.parametrize("name", list(BODIES))
@pytest.mark.parametrize("block", [150, 1 << 20])
def test_polars_blocks_match_the_row_reader(tmp_path: Path, monkeypatch, name: str,
                                            block: int) -> None:
    monkeypatch.setattr(reader, "_FRAME_BYTES", block)  # many blocks, fallback mid-file
    path = tmp_path / "ds.csv"
    path.write_text(HEADER + BODIES[name], encoding="utf-8")
    expected = _results(path, polars=False)
    assert len(expected) >= 38
    assert _results(path, polars=True) == expected


def test_legacy_bytes_mid_file_fall_back_to_the_row_reader(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(reader, "_FRAME_BYTES", 200)
    body = "".join(_rows(i) for i in range(30)).encode()
    path = tmp_path / "ds.csv"
    # A row pasted from a Windows-1258 file: not UTF-8, read as Windows-1258 by the row reader.
    path.write_bytes(HEADER.encode() + body + "31,Ng\u00f4 V\u0103n F,x,y,0912000115,\n".encode(
        "cp1258") + body)
    expected = _results(path, polars=False)
    got = _results(path, polars=True)
    assert got == expected
    assert any("Ngô Văn F" in repr(r) for r in got)


def test_polars_path_is_taken_for_a_clean_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "ds.csv"
    path.write_text(HEADER + BODIES["plain"], encoding="utf-8-sig")
    with open_table(path) as table:
        assert table._frames is not None
        rows, block = next(table.frames(1000))
        assert rows.to_list()[:2] == [5, 6] and block.width == 6
