"""Exports of scores and anonymised microdata (CSV, XLSX), written as streams.

Every text cell beginning with =, +, -, @, tab or CR is neutralised (spreadsheet formula
injection). Microdata are long: one row per answer with the unit code, the group, an opaque
response id (the response's own id, never the assignment, serial or token), the item, its
element and criterion and the answer code. Free-text answers are left out unless asked for.
Large exports run as background jobs writing to instance/exports/.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

import xlsxwriter
from flask import current_app
from sqlalchemy import func, select

from questionnaires.model import QuestionKind

from ..errors import SurveyError
from ..extensions import db
from ..models import Answer, Campaign, JobKind, Response, Unit
from ..services.jobs import runs
from ..services.responses import questionnaire_for
from ..services.spreadsheet import neutralise
from .services import UNIT_FLAG_LABELS, CampaignScores, score_campaign

# Exports at or above this many rows run as background jobs (config EXPORT_SYNC_LIMIT).
DEFAULT_SYNC_LIMIT = 20_000
XLSX_MAX_DATA_ROWS = 1_048_575  # rows per sheet below the header


class ExportFormat(StrEnum):
    """File formats of the exports."""

    CSV = "csv"
    XLSX = "xlsx"
    JSON = "json"

    @property
    def mimetype(self) -> str:
        """HTTP content type."""
        return {
            "csv": "text/csv; charset=utf-8",
            "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "json": "application/json",
        }[self.value]


class ExportKind(StrEnum):
    """What an export job writes."""

    SCORES = "scores"
    MICRODATA = "microdata"


def sync_limit() -> int:
    """Rows above which a web export becomes a background job."""
    return int(current_app.config.get("EXPORT_SYNC_LIMIT", DEFAULT_SYNC_LIMIT))


def _cell(value: object) -> object:
    """Spreadsheet-safe cell: NaN → empty, formula-like text neutralised."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else round(value, 6)
    return neutralise(value)


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def write_csv(header: Sequence[str], rows: Iterable[Sequence[object]], out: BinaryIO,
              progress: Callable[[int], None] | None = None) -> int:
    """UTF-8 CSV with BOM (Excel opens it right); returns the number of data rows."""
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
    writer = csv.writer(text)
    writer.writerow([_cell(h) for h in header])
    count = 0
    for row in rows:
        writer.writerow([_cell(v) for v in row])
        count += 1
        if progress and count % 10_000 == 0:
            progress(count)
    text.flush()
    text.detach()
    return count


def write_xlsx(header: Sequence[str], rows: Iterable[Sequence[object]], out: BinaryIO | str,
               sheet: str = "Dữ liệu",
               progress: Callable[[int], None] | None = None) -> int:
    """XLSX written row by row (XlsxWriter constant_memory); text is never read as a formula
    or a link; returns the number of data rows."""
    workbook = xlsxwriter.Workbook(out, {"constant_memory": True, "strings_to_formulas": False,
                                         "strings_to_urls": False,
                                         "strings_to_numbers": False})
    bold = workbook.add_format({"bold": True})

    def new_sheet(number: int):
        name = sheet[:28] if number == 1 else f"{sheet[:24]} ({number})"
        ws = workbook.add_worksheet(name)
        for c, h in enumerate(header):
            ws.write_string(0, c, str(_cell(h)), bold)
        return ws

    sheets = 1
    ws = new_sheet(sheets)
    count = 0
    r = 0
    for row in rows:
        count += 1
        r += 1
        if r > XLSX_MAX_DATA_ROWS:  # a sheet holds 1,048,576 rows: continue on the next one
            sheets += 1
            ws = new_sheet(sheets)
            r = 1
        for c, value in enumerate(row):
            cell = _cell(value)
            if isinstance(cell, bool):
                ws.write_boolean(r, c, cell)
            elif isinstance(cell, int | float):
                ws.write_number(r, c, cell)
            elif cell != "":
                ws.write_string(r, c, str(cell))
        if progress and count % 10_000 == 0:
            progress(count)
    workbook.close()
    return count


def write_table(fmt: ExportFormat, header: Sequence[str], rows: Iterable[Sequence[object]],
                out: BinaryIO | str, *, sheet: str = "Dữ liệu",
                progress: Callable[[int], None] | None = None) -> int:
    """Write a table as CSV or XLSX."""
    if fmt is ExportFormat.XLSX:
        return write_xlsx(header, rows, out, sheet, progress)
    if fmt is ExportFormat.CSV:
        if isinstance(out, str):
            with open(out, "wb") as fh:
                return write_csv(header, rows, fh, progress)
        return write_csv(header, rows, out, progress)
    raise SurveyError("Định dạng không hỗ trợ cho bảng dữ liệu.")


# --------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------


def score_table(scores: CampaignScores) -> tuple[list[str], list[list[object]]]:
    """One row per rated unit: survey component, CI, points, rank, change, n, response rate,
    flags, then each group's overall score and its elements."""
    header = ["Mã đơn vị", "Tên đơn vị", "Điểm điều tra XHH", "Điểm thấp (KTC 95%)",
              "Điểm cao (KTC 95%)", "Tỷ lệ % điều tra XHH", "Thấp % (KTC 95%)",
              "Cao % (KTC 95%)", "Xếp hạng", "Thay đổi so với kỳ trước (điểm %)",
              "Số phiếu", "Số phiếu phát", "Tỷ lệ phản hồi", "Cảnh báo",
              "Điểm tự đánh giá", "Tổng điểm"]
    for g in scores.groups:
        header += [f"{g.label}: chung %", f"{g.label}: số phiếu", f"{g.label}: tỷ lệ phản hồi"]
        header += [f"{g.label}: {eid} {title} %" for eid, title in g.elements]
    rows: list[list[object]] = []
    for u in scores.units:
        row: list[object] = [
            u.code, u.name, u.points, u.points_low, u.points_high, u.survey_pct, u.low, u.high,
            u.rank, u.change, u.n_responses, u.issued, u.response_rate,
            "; ".join(UNIT_FLAG_LABELS.get(f, f) for f in u.flags),
            u.self_assessment_points, u.total_points,
        ]
        for g in scores.groups:
            gs = u.groups.get(g.group)
            if gs is None:
                row += [None] * (3 + len(g.elements))
                continue
            row += [gs.overall, gs.n_responses, gs.response_rate]
            row += [gs.elements.get(eid, [None])[0] for eid, _ in g.elements]
        rows.append(row)
    return header, rows


def write_scores(scores: CampaignScores, fmt: ExportFormat, out: BinaryIO | str) -> int:
    """Write the scores table (CSV/XLSX) or the full scores JSON."""
    if fmt is ExportFormat.JSON:
        data = json.dumps(scores.to_dict(), ensure_ascii=False, indent=2).encode()
        if isinstance(out, str):
            Path(out).write_bytes(data)
        else:
            out.write(data)
        return len(scores.units)
    header, rows = score_table(scores)
    return write_table(fmt, header, rows, out, sheet="Điểm")


# --------------------------------------------------------------------------------------------
# Microdata
# --------------------------------------------------------------------------------------------

MICRODATA_HEADER = ["unit_code", "group", "response_id", "questionnaire", "mode", "excluded",
                    "item", "element", "criterion", "answer"]


def _item_maps(campaign: Campaign, include_text: bool
               ) -> tuple[dict[str, dict[str, tuple[str, str]]], dict[str, set[str]]]:
    """Per group: question id → (element, criterion); and the question ids to export."""
    meta: dict[str, dict[str, tuple[str, str]]] = {}
    keep: dict[str, set[str]] = {}
    for cg in campaign.groups:
        questionnaire, _ = questionnaire_for(campaign.id, cg.group)
        where: dict[str, tuple[str, str]] = {}
        if questionnaire.scoring:
            for e in questionnaire.scoring.elements:
                for c in e.criteria:
                    for q in c.questions:
                        where.setdefault(q, (e.id, c.id))
        meta[cg.group.value] = where
        keep[cg.group.value] = {q.id for q in questionnaire.questions()
                                if include_text or q.kind is not QuestionKind.TEXT}
    return meta, keep


def microdata_count(campaign: Campaign) -> int:
    """Answers of the campaign (an upper bound of the microdata rows)."""
    return int(db.session.scalar(
        select(func.count(Answer.id)).join(Response, Response.id == Answer.response_id)
        .where(Response.campaign_id == campaign.id)) or 0)


# Contact details a respondent may type into a comment: phone numbers (national or +84,
# spaced, dotted or dashed) and e-mail addresses.
_CONTACT_LIKE = re.compile(
    r"(?:\+?84|0)(?:[\s.\-]?\d){8,10}|[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")


def mask_contacts(text: str) -> str:
    """`text` with anything shaped like a phone number or an e-mail address masked."""
    return _CONTACT_LIKE.sub("[đã ẩn]", text)


def iter_microdata(campaign: Campaign, *, include_text: bool = False
                   ) -> Iterator[list[object]]:
    """Microdata rows (see `MICRODATA_HEADER`), streamed from the database in response order.

    With `include_text`, free-text answers are kept but anything shaped like a phone number
    or an e-mail address is masked."""
    meta, keep = _item_maps(campaign, include_text)
    stmt = (
        select(Unit.code, Response.group, Response.id, Response.questionnaire_ref,
               Response.mode, Response.excluded, Answer.question_id, Answer.value)
        .join(Response, Response.id == Answer.response_id)
        .join(Unit, Unit.id == Response.unit_id)
        .where(Response.campaign_id == campaign.id)
        .order_by(Response.id, Answer.question_id)
        .execution_options(yield_per=5_000)
    )
    # Core execution streamed in batches (server-side cursor on PostgreSQL): no ORM overhead
    # and bounded memory however many answers there are. The option sits on the statement:
    # on the connection it would stick and stream every later statement too.
    result = db.session.connection().execute(stmt)
    try:
        for code, group, rid, ref, mode, excluded, qid, value in result:
            g = group.value
            if qid not in keep.get(g, ()):
                continue
            element, criterion = meta.get(g, {}).get(qid, ("", ""))
            if include_text:
                value = mask_contacts(value)
            yield [code, g, rid, ref, mode.value, int(bool(excluded)), qid, element, criterion,
                   value]
    finally:
        result.close()


def write_microdata(campaign: Campaign, fmt: ExportFormat, out: BinaryIO | str, *,
                    include_text: bool = False,
                    progress: Callable[[int], None] | None = None) -> int:
    """Write the anonymised microdata as CSV or XLSX; returns the number of rows."""
    if fmt is ExportFormat.JSON:
        raise SurveyError("Vi dữ liệu chỉ xuất CSV hoặc XLSX.")
    return write_table(fmt, MICRODATA_HEADER,
                       iter_microdata(campaign, include_text=include_text), out,
                       sheet="Vi dữ liệu", progress=progress)


# --------------------------------------------------------------------------------------------
# Background export jobs
# --------------------------------------------------------------------------------------------


def exports_dir() -> Path:
    """instance/exports (created on demand)."""
    path = Path(current_app.instance_path) / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def export_filename(campaign: Campaign, kind: ExportKind, fmt: ExportFormat,
                    suffix: str = "") -> str:
    """A safe file name such as `vi-du-lieu-demo-2026.csv`."""
    stem = {"scores": "diem", "microdata": "vi-du-lieu"}[kind.value]
    key = re.sub(r"[^A-Za-z0-9_.-]+", "-", campaign.key)
    return f"{stem}-{key}{suffix}.{fmt.value}"


@runs(JobKind.EXPORT)
def run_export(job, progress) -> dict:
    """Write an export to instance/exports/; the result names the file and its download URL."""
    from ..services.campaigns import get_campaign

    campaign = get_campaign(job.campaign_id)
    kind = ExportKind(job.params.get("what", "microdata"))
    fmt = ExportFormat(job.params.get("format", "csv"))
    name = export_filename(campaign, kind, fmt, suffix=f"-{job.id}")
    path = exports_dir() / name
    tmp = path.with_suffix(path.suffix + ".part")
    if kind is ExportKind.MICRODATA:
        progress(0, microdata_count(campaign))
        rows = write_microdata(campaign, fmt, str(tmp),
                               include_text=bool(job.params.get("include_text")),
                               progress=lambda done: progress(done))
    else:
        scores = score_campaign(campaign, weighted=bool(job.params.get("weighted")))
        rows = write_scores(scores, fmt, str(tmp))
    tmp.replace(path)
    return {"file": name, "rows": rows, "download": f"/analysis/exports/{job.id}"}
