"""Frame import benchmark: parse + normalise + validate a large CSV and XLSX list.

Generates a realistic transaction list (seed-004 template with title rows, Vietnamese names,
procedures and addresses, phones with Excel damage, legacy numbers, landlines, duplicates and
garbage), then times, each in a fresh subprocess so peak memory is its own:

- `csv`      plain `csv.reader` over the file (the floor);
- `read`     `open_table` iteration only (encoding/delimiter/header detection, NFC);
- `validate` `open_table` + `validate_rows` (the full pure pipeline);
- `xlsx`     the same pipeline on the XLSX file.

Usage:
    python benchmarks/bench_import.py --rows 1000000 --xlsx-rows 100000 --part parse
    python benchmarks/bench_import.py --part all     # + the end-to-end PostgreSQL import
    python benchmarks/bench_import.py --part e2e --dir /tmp/bench_files  # DB part only
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TITLE_ROWS = [
    ["TÊN CƠ QUAN"],
    ["DANH SÁCH"],
    [
        "Cá nhân, người đại diện tổ chức đã giao dịch, nhận kết quả giải quyết thủ tục hành "
        "chính trong năm 2022 tại Bộ phận một cửa"
    ],
    [],
]
HEADER = [
    "TT",
    "Họ và tên",
    "Tên thủ tục hành chính đã giao dịch",
    "Địa chỉ cư trú hoặc đơn vị công tác (thôn, xã, huyện)",
    "Số điện thoại (bắt buộc phải có)",
    "Ngày trả kết quả",
]

SURNAMES = "Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý".split()
MIDDLE = "Văn Thị Hữu Đức Minh Ngọc Thanh Quốc Xuân Thu Hồng Kim Công Đình Bảo".split()
GIVEN = (
    "An Bình Cường Dũng Giang Hà Hải Hạnh Hiếu Hoa Hùng Hương Khánh Lan Linh Long Mai Nam "
    "Nga Nhung Phong Phúc Phương Quang Sơn Tâm Thảo Thắng Thủy Trang Trung Tuấn Vân Việt Yến"
).split()
PROCEDURES = [
    "Đăng ký khai sinh", "Đăng ký kết hôn", "Đăng ký khai tử", "Chứng thực bản sao từ bản chính",
    "Chứng thực chữ ký", "Xác nhận tình trạng hôn nhân", "Đăng ký thường trú",
    "Cấp giấy chứng nhận quyền sử dụng đất", "Đăng ký biến động đất đai",
    "Cấp giấy phép xây dựng nhà ở riêng lẻ", "Đăng ký hộ kinh doanh", "Trích lục hộ tịch",
    "Giải quyết chế độ trợ cấp xã hội", "Cấp thẻ bảo hiểm y tế cho trẻ em dưới 6 tuổi",
    "Đăng ký giám hộ", "Thay đổi, cải chính hộ tịch", "Hòa giải tranh chấp đất đai",
]  # fmt: skip
COMMUNES = [
    "Quảng Phú", "Quảng Thạch", "Quảng Lưu", "Quảng Tiến", "Quảng Hợp", "Quảng Kim",
    "Quảng Đông", "Quảng Châu", "Quảng Thạch", "Cảnh Dương", "Phù Hóa", "Quảng Xuân",
]  # fmt: skip
DISTRICTS = ["Quảng Trạch", "Bố Trạch", "Lệ Thủy", "Quảng Ninh", "Tuyên Hóa", "Minh Hóa"]
MOBILE_PREFIXES = [
    "090", "091", "093", "094", "096", "097", "098", "032", "033", "034", "035", "036", "037",
    "038", "039", "070", "076", "077", "078", "079", "081", "082", "083", "084", "085", "086",
    "088", "087", "056", "058", "059",
]  # fmt: skip
AREA_CODES = ["024", "028", "0232", "0233", "0234", "0236", "0238", "0239", "0225", "0251"]
LEGACY = [
    "0162", "0163", "0164", "0165", "0166", "0167", "0168", "0169", "0120", "0121", "0122",
    "0126", "0128", "0123", "0124", "0125", "0127", "0129", "0186", "0188", "0199",
]  # fmt: skip


def phone_cells(rng: np.random.Generator, n: int, recent: list[str]) -> list[str]:
    """`n` phone cells with a realistic mix of clean and damaged forms (drawn vectorised).

    ~62% clean mobiles, 8% spaced, 4% dotted, 9% leading zero lost, 2% +84, 1% scientific
    notation, 2% pre-2018 11-digit, 1% landline, 4% repeats of a recent number (same person,
    another transaction), 1% empty, 0.5% text, rest clean.
    """
    u = rng.random(n)
    body = rng.integers(0, 10_000_000, n)
    prefix = rng.integers(0, len(MOBILE_PREFIXES), n)
    legacy = rng.integers(0, len(LEGACY), n)
    area = rng.integers(0, len(AREA_CODES), n)
    local = rng.integers(2_000_000, 10_000_000, n)
    pick = rng.integers(0, 1 << 30, n)
    out: list[str] = []
    for i in range(n):
        m = f"{MOBILE_PREFIXES[prefix[i]]}{body[i]:07d}"
        x = u[i]
        if x < 0.62:
            cell = m
        elif x < 0.70:
            cell = f"{m[:4]} {m[4:7]} {m[7:]}"
        elif x < 0.74:
            cell = f"{m[:4]}.{m[4:7]}.{m[7:]}"
        elif x < 0.83:
            cell = m[1:]  # Excel dropped the leading zero
        elif x < 0.85:
            cell = "+84" + m[1:]
        elif x < 0.86:
            cell = f"{int(m):.8E}"  # 9.12345678E+08
        elif x < 0.88:
            cell = f"{LEGACY[legacy[i]]}{body[i]:07d}"
        elif x < 0.89:
            code = AREA_CODES[area[i]]
            cell = f"{code}{local[i]:07d}" if len(code) == 4 else f"{code}3{local[i]:07d}"
        elif x < 0.93 and recent:
            cell = recent[pick[i] % len(recent)]
        elif x < 0.94:
            cell = ""
        elif x < 0.945:
            cell = "không có"
        else:
            cell = m
        if cell and len(recent) < 2000:
            recent.append(cell)
        elif cell and pick[i] % 100 == 0:
            recent[pick[i] % len(recent)] = cell
        out.append(cell)
    return out


def write_csv(path: Path, rows: int, rng: np.random.Generator) -> None:
    """Write the seed template with `rows` data rows (UTF-8 with BOM, as Excel saves it)."""
    recent: list[str] = []
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        for r in TITLE_ROWS:
            w.writerow(r)
        w.writerow(HEADER)
        for start in range(0, rows, 10_000):
            n = min(10_000, rows - start)
            batch = []
            sur = rng.integers(0, len(SURNAMES), n)
            mid = rng.integers(0, len(MIDDLE), n)
            giv = rng.integers(0, len(GIVEN), n)
            proc = rng.integers(0, len(PROCEDURES), n)
            village = rng.integers(1, 20, n)
            com = rng.integers(0, len(COMMUNES), n)
            dis = rng.integers(0, len(DISTRICTS), n)
            day = rng.integers(1, 29, n)
            month = rng.integers(1, 13, n)
            phones = phone_cells(rng, n, recent)
            for i in range(n):
                batch.append(
                    [
                        start + i + 1,
                        f"{SURNAMES[sur[i]]} {MIDDLE[mid[i]]} {GIVEN[giv[i]]}",
                        PROCEDURES[proc[i]],
                        f"Thôn {village[i]}, xã {COMMUNES[com[i]]}, huyện {DISTRICTS[dis[i]]}",
                        phones[i],
                        f"{day[i]:02d}/{month[i]:02d}/2022",
                    ]
                )
            w.writerows(batch)
        w.writerow([])
        w.writerow(["Người lập danh sách", "", "", "", "THỦ TRƯỞNG"])


def write_xlsx(path: Path, rows: int, rng: np.random.Generator) -> None:
    """Write the same list as XLSX (XlsxWriter constant_memory), phones partly numeric cells."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    ws = wb.add_worksheet("Danh sách")
    bold = wb.add_format({"bold": True, "align": "center"})
    ws.merge_range(0, 0, 0, 5, "TÊN CƠ QUAN", bold)
    ws.merge_range(1, 0, 1, 5, "DANH SÁCH", bold)
    ws.merge_range(2, 0, 2, 5, TITLE_ROWS[2][0], bold)
    ws.write_row(4, 0, HEADER, bold)
    recent: list[str] = []
    phones = phone_cells(rng, rows, recent)
    sur = rng.integers(0, len(SURNAMES), rows)
    mid = rng.integers(0, len(MIDDLE), rows)
    giv = rng.integers(0, len(GIVEN), rows)
    proc = rng.integers(0, len(PROCEDURES), rows)
    village = rng.integers(1, 20, rows)
    com = rng.integers(0, len(COMMUNES), rows)
    day = rng.integers(1, 29, rows)
    month = rng.integers(1, 13, rows)
    as_number = rng.random(rows) < 0.5
    for i in range(rows):
        phone = phones[i]
        r = 5 + i
        ws.write_number(r, 0, i + 1)
        ws.write_string(r, 1, f"{SURNAMES[sur[i]]} {MIDDLE[mid[i]]} {GIVEN[giv[i]]}")
        ws.write_string(r, 2, PROCEDURES[proc[i]])
        ws.write_string(r, 3, f"Thôn {village[i]}, xã {COMMUNES[com[i]]}")
        if phone.isdigit() and as_number[i]:
            ws.write_number(r, 4, int(phone))  # a phone column typed as number
        else:
            ws.write_string(r, 4, phone)
        ws.write_string(r, 5, f"{day[i]:02d}/{month[i]:02d}/2022")
    wb.close()


# ---------------------------------------------------------------------------------------------
# Timed parts (each runs in its own process)


def _part_csv(path: Path) -> int:
    n = 0
    with open(path, encoding="utf-8-sig", newline="") as f:
        for _ in csv.reader(f):
            n += 1
    return n


def _part_read(path: Path) -> int:
    from survey_app.frames.reader import open_table

    n = 0
    with open_table(path) as table:
        for _ in table.raw_rows():  # what validate_rows consumes
            n += 1
    return n


def _part_validate(path: Path) -> int:
    from survey_app.frames.reader import open_table
    from survey_app.frames.rows import validate_rows

    n = 0
    with open_table(path) as table:
        validator = validate_rows(table, phone_required=True, reference_year=2022)
        for _ in validator:
            n += 1
    s = validator.summary
    print(
        f"    accepted={s.accepted} duplicates={s.duplicates} rejected={dict(s.rejected)} "
        f"skipped={dict(s.skipped)} warnings={dict(s.warnings)}",
        file=sys.stderr,
    )
    return n


PARTS = {"csv": _part_csv, "read": _part_read, "validate": _part_validate, "xlsx": _part_validate}


def _child(part: str, path: str) -> None:
    if part in E2E_CAMPAIGNS:
        print(json.dumps(_part_e2e(part, Path(path))))
        return
    if part != "csv":
        # Import outside the timed region: a running app has these loaded already.
        import survey_app.frames.reader
        import survey_app.frames.rows  # noqa: F401
    t0, c0 = time.perf_counter(), time.process_time()
    n = PARTS[part](Path(path))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": n, "seconds": elapsed, "cpu": cpu, "peak_mib": peak_kib / 1024}))


def _run_part(part: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", part, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    if out.stderr:
        print(out.stderr.rstrip(), file=sys.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


# =============================================================================================
# End-to-end part (`--part all`): `import_path` (open_table → validate_rows → COPY into
# PostgreSQL, issues, transaction counts) + commit, timed in a child process on a scratch
# database. Targets: CSV >= 100,000 rows/s and <= 5x the plain `csv` floor; XLSX >= 30,000
# rows/s; peak memory < 500 MB.

PG_ADMIN = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c"]
BENCH_DB = os.environ.get("BENCH_IMPORT_DB", "bench_import")  # scratch database, dropped after
BENCH_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{BENCH_DB}"
E2E_CAMPAIGNS = {"e2e-csv": "bench-csv", "e2e-xlsx": "bench-xlsx"}
BENCH_SECRET = "x" * 32


def _bench_app(instance: str):
    from survey_app import create_app

    return create_app({"DATABASE_URL": BENCH_URL, "QUEUE_IMMEDIATE": True,
                       "SECRET_KEY": BENCH_SECRET}, instance_path=instance)


def _setup_database(instance: str) -> None:
    """Fresh scratch database, migrated, with one campaign per file (unit B1, citizen/phone)."""
    import datetime as dt

    import flask_migrate

    from questionnaires.model import GroupPlan, Mode, Plan, RespondentGroup, UnitRef
    from survey_app.extensions import db
    from survey_app.services.campaigns import create_campaign

    subprocess.run([*PG_ADMIN, f"DROP DATABASE IF EXISTS {BENCH_DB}"], check=True)
    subprocess.run([*PG_ADMIN, f"CREATE DATABASE {BENCH_DB}"], check=True)
    app = _bench_app(instance)
    with app.app_context():
        flask_migrate.upgrade()
        for key in E2E_CAMPAIGNS.values():
            plan = Plan(
                key=key, name=f"Chiến dịch đo {key}", year=2022,
                period_start=dt.date(2022, 1, 1), period_end=dt.date(2022, 12, 31),
                groups=(GroupPlan(RespondentGroup.CITIZEN, "sipas-citizen@2026.1", Mode.PHONE,
                                  400, 100),),
                units=(UnitRef(code="B1", name="Xã Đo B1", level="commune"),), seed=1,
            )
            create_campaign(plan)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def _backend_cpu(pid: int) -> float:
    """CPU seconds of a local PostgreSQL backend (utime + stime from /proc), 0 if unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _part_e2e(part: str, path: Path) -> dict[str, float]:
    """One timed `import_path` + commit (the child of `run_end_to_end`)."""
    from sqlalchemy import func, select, text

    from questionnaires.model import RespondentGroup
    from survey_app.draws.frame import fingerprint, stable_key
    from survey_app.extensions import db
    from survey_app.frames.services import import_path, resolve_unit
    from survey_app.models import FrameEntry, ImportIssue
    from survey_app.services.campaigns import get_campaign

    app = _bench_app(str(path.parent / "instance"))
    with app.app_context():
        campaign = get_campaign(E2E_CAMPAIGNS[part])
        unit = resolve_unit(campaign, "B1")
        backend = db.session.scalar(text("SELECT pg_backend_pid()"))
        s0 = _backend_cpu(backend)
        profile_to = os.environ.get("BENCH_PROFILE")  # a directory: cProfile each import
        profiler = None
        if profile_to:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        t0, c0 = time.perf_counter(), time.process_time()
        batch, outcome = import_path(campaign, unit, RespondentGroup.CITIZEN, path)
        db.session.commit()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(Path(profile_to) / f"{part}.prof"))
        server_cpu = _backend_cpu(backend) - s0
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        stored = db.session.scalar(select(func.count()).select_from(FrameEntry)
                                   .where(FrameEntry.batch_id == batch.id))
        issues = db.session.scalar(select(func.count()).select_from(ImportIssue)
                                   .where(ImportIssue.batch_id == batch.id))
        transactions = db.session.scalar(select(func.sum(FrameEntry.transactions))
                                         .where(FrameEntry.batch_id == batch.id))
        # The writer hashes inline: recompute a sample with the reference functions.
        sample = db.session.execute(
            select(FrameEntry.source_row, FrameEntry.stable_key, FrameEntry.fingerprint,
                   FrameEntry.name, FrameEntry.phone, FrameEntry.address, FrameEntry.procedure,
                   FrameEntry.transaction_date, FrameEntry.birth_year)
            .where(FrameEntry.batch_id == batch.id, FrameEntry.source_row % 97 == 0)).all()
        hashes_ok = bool(sample) and all(
            e.stable_key == stable_key(batch.file_sha256, e.source_row)
            and e.fingerprint == fingerprint(e.name, e.phone, e.address, e.procedure,
                                             e.transaction_date, e.birth_year)
            for e in sample)
        rows = outcome.accepted + outcome.rejected + outcome.duplicates
        db.session.remove()
        db.engine.dispose()
    return {"rows": rows, "seconds": elapsed, "cpu": cpu, "server_cpu": server_cpu,
            "peak_mib": peak_kib / 1024, "accepted": outcome.accepted, "stored": stored,
            "issues": issues, "issues_expected": len(outcome.issues),
            "transactions": transactions or 0, "duplicates": outcome.duplicates,
            "hashes_ok": hashes_ok, "hash_sample": len(sample)}


def run_end_to_end(csv_path: Path, xlsx_path: Path,
                   floors: dict[str, dict[str, float]] | None = None) -> bool:
    """Import both files into a scratch PostgreSQL database, each in a fresh process; print
    rows/s, the ratio to the `csv` floor, peak memory; check the stored counts. True if all
    targets are met."""
    floors = floors or {}
    if "csv" not in floors:
        floors["csv"] = _run_part("csv", csv_path)
    instance = tempfile.mkdtemp(prefix="bench_import_instance_")
    ok = True
    try:
        _setup_database(instance)
        for part, path in (("e2e-csv", csv_path), ("e2e-xlsx", xlsx_path)):
            link = Path(instance) / path.name  # the child finds its instance dir next to it
            link.symlink_to(path.resolve())
            r = _run_part(part, link)
            rate = r["rows"] / r["seconds"]
            print(
                f"{part:9s} {r['rows']:>10,} rows  wall {r['seconds']:6.2f}s {rate:>10,.0f} "
                f"rows/s  cpu {r['cpu']:6.2f}s + postgres {r['server_cpu']:5.2f}s  peak "
                f"{r['peak_mib']:5.0f} MiB"
            )
            checks = {
                "frame_entries == accepted": r["stored"] == r["accepted"],
                "import_issues == issues": r["issues"] == r["issues_expected"],
                "sum(transactions) == accepted + duplicates":
                    r["transactions"] == r["accepted"] + r["duplicates"],
                f"stable_key/fingerprint of {r['hash_sample']} rows": r["hashes_ok"],
            }
            print("    " + ", ".join(f"{k}: {'ok' if v else 'FAIL'}" for k, v in checks.items())
                  + f" ({r['stored']:,} entries, {r['issues']:,} issues)")
            ok &= all(checks.values()) and r["peak_mib"] < 500
            if part == "e2e-csv":
                floor = floors["csv"]
                ratio_wall = r["seconds"] / floor["seconds"]
                ratio_cpu = (r["cpu"] + r["server_cpu"]) / floor["cpu"]
                print(f"    end-to-end / plain csv: wall {ratio_wall:.2f}x, "
                      f"cpu (client + server) {ratio_cpu:.2f}x  [target >= 100,000 rows/s, "
                      f"<= 5x]")
                ok &= rate >= 100_000 and min(ratio_wall, ratio_cpu) <= 5
            else:
                print("    [target >= 30,000 rows/s]")
                ok &= rate >= 30_000
    finally:
        subprocess.run([*PG_ADMIN, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)"],
                       check=False)
        shutil.rmtree(instance, ignore_errors=True)
    print("end-to-end targets:", "met" if ok else "NOT met")
    return ok


# =============================================================================================


def main(argv: list[str] | None = None) -> None:
    """Generate the files, time each part, print rows/s and peak memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="CSV data rows")
    parser.add_argument("--xlsx-rows", type=int, default=100_000, help="XLSX data rows")
    parser.add_argument("--part", choices=["parse", "all", "e2e"], default="parse",
                        help="parse: pure pipeline; e2e: PostgreSQL import only; all: both")
    parser.add_argument("--dir", type=Path, default=None, help="keep generated files here")
    parser.add_argument("--seed", type=int, default=20221010)
    parser.add_argument("--child", nargs=2, metavar=("PART", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return

    tmp = None
    if args.dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_import_")
        workdir = Path(tmp.name)
    else:
        workdir = args.dir
        workdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    csv_path = workdir / f"frame_{args.rows}_{args.seed}.csv"
    xlsx_path = workdir / f"frame_{args.xlsx_rows}_{args.seed}.xlsx"
    if args.dir is not None and csv_path.is_file() and xlsx_path.is_file():
        print(f"reusing {csv_path} and {xlsx_path}")
    else:
        t0 = time.perf_counter()
        write_csv(csv_path, args.rows, rng)
        t1 = time.perf_counter()
        write_xlsx(xlsx_path, args.xlsx_rows, rng)
        t2 = time.perf_counter()
        print(
            f"generated {args.rows:,} CSV rows ({csv_path.stat().st_size / 2**20:.1f} MiB) in "
            f"{t1 - t0:.1f}s; {args.xlsx_rows:,} XLSX rows "
            f"({xlsx_path.stat().st_size / 2**20:.1f} MiB) in {t2 - t1:.1f}s"
        )
    results: dict[str, dict[str, float]] = {}
    parts = [("csv", csv_path)]
    if args.part != "e2e":
        parts += [("read", csv_path), ("validate", csv_path), ("xlsx", xlsx_path)]
    for part, path in parts:
        r = _run_part(part, path)
        results[part] = r
        print(
            f"{part:9s} {r['rows']:>10,} rows  wall {r['seconds']:6.2f}s "
            f"{r['rows'] / r['seconds']:>10,.0f} rows/s  cpu {r['cpu']:6.2f}s "
            f"{r['rows'] / r['cpu']:>10,.0f} rows/s  peak {r['peak_mib']:5.0f} MiB"
        )
    if "validate" in results:
        ratio = results["validate"]["cpu"] / results["csv"]["cpu"]
        print(f"validate / plain csv CPU-time ratio: {ratio:.2f}x")
    if args.part in ("all", "e2e"):
        run_end_to_end(csv_path, xlsx_path, results)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
