"""Benchmark of the scorer: 1,000,000 responses × 30 items over 3,321 units in at most 5 s.

Run:  python benchmarks/bench_aggregate.py            (full size, analytic CIs + bootstrap + export)
      python benchmarks/bench_aggregate.py --responses 100000 --skip-export

Prints seconds and responses/s for compile + score (analytic), the quality flags, a bootstrap
variant on a smaller batch, and the streaming CSV/XLSX export of per-unit scores and of
response rows with peak memory.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from questionnaires.model import (
    Criterion,
    Element,
    Option,
    Question,
    QuestionKind,
    Questionnaire,
    RespondentGroup,
    ScoringMethod,
    ScoringRules,
    Section,
)
from questionnaires.scoring import (
    CompiledRules,
    UnitScores,
    compile_rules,
    quality_flags,
    rank_units,
    score_units,
    to_points,
)

SAT_OPTIONS = (
    Option("1", "Rất không hài lòng", 1.0),
    Option("2", "Không hài lòng", 2.0),
    Option("3", "Bình thường", 3.0),
    Option("4", "Hài lòng", 4.0),
    Option("5", "Rất hài lòng", 5.0),
    Option("kb", "Không biết / không trả lời", None, dont_know=True),
)


def sipas_like_questionnaire(n_items: int = 30) -> Questionnaire:
    """5 elements, 22 criteria (SIPAS 2640/QĐ-BNV shape); the extra items join criteria in turn."""
    per_element = (4, 4, 5, 4, 5)  # 22 criteria
    n_crit = sum(per_element)
    qids = [f"q{i + 1:02d}" for i in range(n_items)]
    crit_questions: list[list[str]] = [[q] for q in qids[:n_crit]]
    for k, q in enumerate(qids[n_crit:]):
        crit_questions[k % n_crit].append(q)
    elements, c = [], 0
    for e, size in enumerate(per_element):
        crits = tuple(
            Criterion(f"TC{c + i + 1}", f"Tiêu chí {c + i + 1}", tuple(crit_questions[c + i]))
            for i in range(size)
        )
        elements.append(Element(f"YT{e + 1}", f"Yếu tố {e + 1}", crits))
        c += size
    questions = tuple(Question(q, f"Câu {q}", QuestionKind.SATISFACTION, SAT_OPTIONS) for q in qids)
    return Questionnaire(
        key="sipas-bench",
        version="1",
        title="Phiếu khảo sát SIPAS (thử tải)",
        group=RespondentGroup.CITIZEN,
        sections=(Section("s1", "Đánh giá", questions),),
        scoring=ScoringRules(ScoringMethod.SHARE_SATISFIED, tuple(elements), ("4", "5")),
    )


def generate(
    rng: np.random.Generator, n_responses: int, n_items: int, n_units: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Satisfaction codes (0..4 = levels 1..5, 5 = don't know, -1 = missing), units, weights."""
    unit_index = rng.integers(0, n_units, size=n_responses)
    unit_mood = rng.normal(0.0, 0.6, size=n_units)  # units differ in satisfaction
    latent = unit_mood[unit_index, None] + rng.normal(0.0, 1.0, size=(n_responses, n_items))
    codes = np.digitize(latent, [-1.5, -0.7, 0.0, 0.9]).astype(np.int8)  # 0..4
    codes[rng.random((n_responses, n_items)) < 0.05] = 5  # don't know
    codes[rng.random((n_responses, n_items)) < 0.03] = -1  # missing
    weights = rng.choice(np.array([0.8, 1.0, 1.5]), size=n_responses)
    return codes, unit_index, weights


def timed(label: str, n: int, fn, *args, **kwargs):  # noqa: ANN001, ANN202 - bench helper
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    secs = time.perf_counter() - start
    print(f"{label:<44} {secs:8.3f} s   {n / secs:14,.0f} responses/s")
    return out, secs


# ============================================================================================
# EXPORT STREAMING (for the lead's CSV/XLSX export): rows are produced by a generator and
# written one at a time, CSV with the csv module, XLSX with XlsxWriter `constant_memory`
# (each row is flushed to disk once the next starts), so memory stays bounded by one row.
# ============================================================================================


def unit_rows(scores: UnitScores, points: float) -> Iterator[list[object]]:
    """One export row per unit: code, n, response rate, overall, CI, points, rank, flags."""
    pts = to_points(scores.overall_pct, points)
    ranks = rank_units(scores.overall_pct)
    for u in range(scores.n_units):
        yield [
            f"U{u:05d}",
            int(scores.n_responses[u]),
            _num(scores.response_rate[u]),
            _num(scores.overall_pct[u]),
            _num(scores.overall_low[u]),
            _num(scores.overall_high[u]),
            _num(pts[u]),
            int(ranks[u]),
            int(scores.flags[u]),
        ]


def response_rows(codes: np.ndarray, unit_index: np.ndarray, chunk: int = 10_000) -> Iterator[list]:
    """One export row per response (anonymous: row number, unit, answer codes), in chunks."""
    for start in range(0, codes.shape[0], chunk):
        block = codes[start : start + chunk].tolist()
        units = unit_index[start : start + chunk].tolist()
        for k, (u, row) in enumerate(zip(units, block, strict=True)):
            yield [start + k + 1, f"U{u:05d}", *row]


def _num(x: float) -> float | str:
    return "" if not np.isfinite(x) else round(float(x), 4)


def write_csv(path: Path, header: list[str], rows: Iterator[list]) -> int:
    """Stream rows to a UTF-8-with-BOM CSV (Excel opens Vietnamese text correctly)."""
    n = 0
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            n += 1
    return n


def write_xlsx(path: Path, header: list[str], rows: Iterator[list]) -> int:
    """Stream rows to XLSX with XlsxWriter's constant_memory mode (row by row, in order)."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "tmpdir": str(path.parent)})
    ws = wb.add_worksheet("Kết quả")
    ws.write_row(0, 0, header)
    n = 0
    for n, row in enumerate(rows, start=1):
        ws.write_row(n, 0, row)
    wb.close()
    return n


def _rss_mb() -> float:
    """Current resident set size of this process in MB (Linux /proc; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1e3
    except OSError:
        pass
    return 0.0


def _peak_rss_mb() -> float:
    """Peak RSS of this process image in MB (VmHWM; unlike ru_maxrss it is not inherited
    from the parent across fork + exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e3
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def _reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0); silently skipped where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def bench_export_streaming(
    scores: UnitScores, codes: np.ndarray, unit_index: np.ndarray, n_rows: int = 100_000
) -> None:
    """Time CSV and XLSX streaming of unit scores and `n_rows` response rows into a temp dir.

    Memory: the growth of the process's peak RSS (VmHWM, reset first where Linux allows) over
    its RSS before the exports (`main` runs this in a fresh process, `--export-only`, so the
    1M-row arrays do not hide the peak), plus the peak of Python allocations (tracemalloc) on
    a 5,000-row run of each writer.
    """
    unit_header = [
        "Mã đơn vị", "Số phiếu", "Tỷ lệ phản hồi", "Điểm %", "CI thấp", "CI cao",
        "Điểm quy đổi", "Xếp hạng", "Cờ",
    ]  # fmt: skip
    resp_header = ["STT", "Mã đơn vị"] + [f"q{i + 1:02d}" for i in range(codes.shape[1])]
    sub_codes, sub_units = codes[:n_rows], unit_index[:n_rows]

    def resp(k: int) -> Iterator[list]:
        return response_rows(sub_codes[:k], sub_units[:k])

    jobs = [
        ("units.csv", write_csv, unit_header, lambda k: unit_rows(scores, 30.0)),
        ("units.xlsx", write_xlsx, unit_header, lambda k: unit_rows(scores, 30.0)),
        ("responses.csv", write_csv, resp_header, resp),
        ("responses.xlsx", write_xlsx, resp_header, resp),
    ]  # fmt: skip
    _reset_peak_rss()
    base = _rss_mb()
    print(f"export: RSS before {base:,.0f} MB")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for name, writer, header, rows in jobs:
            start = time.perf_counter()
            n = writer(out / name, header, rows(n_rows))
            secs = time.perf_counter() - start
            size = os.path.getsize(out / name)
            tracemalloc.start()
            writer(out / f"small-{name}", header, rows(5_000))
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(
                f"export {name:<15} {n:>8,} rows {secs:6.2f} s ({n / secs:9,.0f} rows/s) "
                f"file {size / 1e6:5.1f} MB | peak RSS growth {_peak_rss_mb() - base:5.1f} MB, "
                f"Python peak (5k rows) {peak / 1e6:4.1f} MB"
            )


# ============================================================================================


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--responses", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=30)
    ap.add_argument("--units", type=int, default=3_321)
    ap.add_argument("--boot-responses", type=int, default=100_000)
    ap.add_argument("--boot-units", type=int, default=3_321)
    ap.add_argument("--n-boot", type=int, default=500)
    ap.add_argument("--export-rows", type=int, default=100_000)
    ap.add_argument("--skip-export", action="store_true")
    ap.add_argument(
        "--export-only", action="store_true", help="only the export part, in this process"
    )
    ap.add_argument("--seed", type=int, default=2025)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    q = sipas_like_questionnaire(args.items)
    if args.export_only:
        codes, unit_index, _ = generate(rng, args.export_rows, args.items, args.units)
        scores = score_units(compile_rules(q), codes, unit_index, args.units)
        bench_export_streaming(scores, codes, unit_index, args.export_rows)
        return
    codes, unit_index, weights = generate(rng, args.responses, args.items, args.units)
    issued = np.bincount(unit_index, minlength=args.units) + rng.integers(0, 200, args.units)
    frame = issued * 4
    print(
        f"{args.responses:,} responses × {args.items} items over {args.units:,} units "
        f"({codes.nbytes / 1e6:.0f} MB of codes)"
    )

    start = time.perf_counter()
    compiled: CompiledRules = compile_rules(q)
    t_compile = time.perf_counter() - start
    scores, t_score = timed(
        "score_units (analytic CIs, unweighted)",
        args.responses,
        score_units,
        compiled,
        codes,
        unit_index,
        args.units,
        frame_sizes=frame,
        issued=issued,
    )
    _, t_w = timed(
        "score_units (analytic CIs, weighted)",
        args.responses,
        score_units,
        compiled,
        codes,
        unit_index,
        args.units,
        weights=weights,
        frame_sizes=frame,
        issued=issued,
    )
    print(
        f"compile_rules {t_compile * 1e3:.2f} ms; compile + score = {t_compile + t_score:.3f} s "
        f"({'OK' if t_compile + t_score <= 5 else 'OVER'} the 5 s budget)"
    )
    print(
        f"  mean overall {np.nanmean(scores.overall_pct):.2f} %, mean CI half-width "
        f"{np.nanmean(scores.overall_high - scores.overall_low) / 2:.2f} points"
    )

    durations = rng.gamma(4.0, 30.0, size=args.responses)
    net = rng.integers(0, args.responses // 3, size=args.responses).astype(str)
    submitted = rng.uniform(0, 30 * 86400, size=args.responses)
    timed(
        "quality_flags (all four checks)",
        args.responses,
        quality_flags,
        compiled,
        codes,
        unit_index,
        durations,
        net,
        submitted,
    )

    nb = min(args.boot_responses, args.responses)
    b_units = min(args.boot_units, args.units)
    b_codes, b_index, _ = generate(np.random.default_rng(args.seed + 1), nb, args.items, b_units)
    timed(
        f"score_units (bootstrap, {args.n_boot} reps, {nb:,} resp.)",
        nb,
        score_units,
        compiled,
        b_codes,
        b_index,
        b_units,
        ci="bootstrap",
        rng=np.random.default_rng(args.seed),
        n_boot=args.n_boot,
    )
    timed(
        f"score_units (analytic, same {nb:,} resp.)",
        nb,
        score_units,
        compiled,
        b_codes,
        b_index,
        b_units,
    )

    if not args.skip_export:
        # A fresh process, so the 1M-row arrays above do not mask the export's peak memory.
        cmd = [sys.executable, __file__, "--export-only", "--export-rows", str(args.export_rows)]
        cmd += ["--items", str(args.items), "--units", str(args.units), "--seed", str(args.seed)]
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
