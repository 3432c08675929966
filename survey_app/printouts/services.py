"""Printing inside the app: personalised form batches, anonymous walk-in forms and the postal
pack (labels, envelopes, manifests, return-envelope text).

Services flush, never commit: the caller (job, CLI) commits once the output is complete, so a
batch is all or nothing. Printing a form issues a fresh token for its assignment, which revokes
the tokens of earlier printouts (an older printed QR code or short code stops working).
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

from flask import current_app
from sqlalchemy import func, select

from printing import (
    CampaignInfo,
    FormLayout,
    MailingAddress,
    Personalisation,
    manifest_rows,
    prepare_layout,
    render_envelopes,
    render_forms,
    render_labels,
    return_envelope_text,
    write_manifest_csv,
    write_manifest_xlsx,
)
from printing.postal import vietnamese_sort_key
from questionnaires.model import RespondentGroup

from ..errors import Conflict, NotFound, SurveyError
from ..extensions import db
from ..models import (
    AccessToken,
    Assignment,
    AuditAction,
    Campaign,
    CampaignStatus,
    FrameEntry,
    Outcome,
    Stratum,
    Unit,
)
from ..models._types import utcnow
from ..services.audit import audit
from ..services.responses import questionnaire_for
from ..services.tokens import issue_anonymous, issue_for_assignment

# Only these are (re)printed: anything else already has a fieldwork result.
PRINTABLE = (Outcome.PENDING, Outcome.ISSUED, Outcome.DELIVERED)
MAX_ANONYMOUS = 5000  # per request: a walk-in stack, not a census

Progress = Callable[[int, int], None]
Output = BinaryIO | str | Path


class PrintKind(StrEnum):
    """What a print request produces."""

    FORMS = "forms"
    ANONYMOUS = "anonymous"
    POSTAL_PACK = "postal_pack"
    LABELS = "labels"
    ENVELOPES = "envelopes"
    MANIFEST_CSV = "manifest_csv"
    MANIFEST_XLSX = "manifest_xlsx"

    @property
    def extension(self) -> str:
        """File extension of the output."""
        return {PrintKind.POSTAL_PACK: "zip", PrintKind.MANIFEST_CSV: "csv",
                PrintKind.MANIFEST_XLSX: "xlsx"}.get(self, "pdf")

    @property
    def mimetype(self) -> str:
        """MIME type of the output."""
        return {"pdf": "application/pdf", "zip": "application/zip", "csv": "text/csv",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                }[self.extension]

    @property
    def label(self) -> str:
        """Vietnamese name of the output."""
        return PRINT_KIND_LABELS[self]

    @property
    def issues_tokens(self) -> bool:
        """True when the output carries QR codes/short codes (and so rotates tokens)."""
        return self in (PrintKind.FORMS, PrintKind.ANONYMOUS, PrintKind.POSTAL_PACK)


PRINT_KIND_LABELS = {
    PrintKind.FORMS: "Phiếu in sẵn tên",
    PrintKind.ANONYMOUS: "Phiếu không ghi tên",
    PrintKind.POSTAL_PACK: "Bộ gửi bưu điện (phiếu, nhãn, phong bì, danh sách)",
    PrintKind.LABELS: "Nhãn gửi thư",
    PrintKind.ENVELOPES: "Phong bì",
    PrintKind.MANIFEST_CSV: "Danh sách giao phiếu (CSV)",
    PrintKind.MANIFEST_XLSX: "Danh sách giao phiếu (Excel)",
}


class NothingToPrint(SurveyError):
    """The selection holds no form that may be printed."""

    status = 409
    code = "nothing_to_print"


@dataclass(frozen=True, slots=True)
class PrintItem:
    """An active assignment to print, with its person and rated unit."""

    assignment: Assignment
    entry: FrameEntry | None
    unit: Unit

    @property
    def name(self) -> str:
        """Recipient name (empty when the frame entry was purged)."""
        return self.entry.name if self.entry else ""

    @property
    def address(self) -> str:
        """Recipient address."""
        return self.entry.address if self.entry else ""


# --- selection -------------------------------------------------------------------------------


def rated_unit(campaign: Campaign, *, unit_id: int | None = None,
               unit_code: str | None = None) -> Unit:
    """A unit that has a stratum in the campaign (404 otherwise)."""
    stmt = (select(Unit).join(Stratum, Stratum.unit_id == Unit.id)
            .where(Stratum.campaign_id == campaign.id))
    stmt = stmt.where(Unit.code == unit_code) if unit_code else stmt.where(Unit.id == unit_id)
    unit = db.session.scalars(stmt).first()
    if unit is None:
        raise NotFound("Đơn vị không thuộc chiến dịch này.")
    return unit


def printable_items(campaign: Campaign, *, unit_id: int | None = None,
                    group: RespondentGroup | None = None,
                    enumerator_id: int | None = None) -> list[PrintItem]:
    """Active assignments still to be (re)printed, in delivery order: rated unit, then address,
    then name (Vietnamese-aware); ties keep group and draw order. With `enumerator_id`, forms
    handed to another enumerator are left out (as on the fieldwork pages)."""
    stmt = (select(Assignment, FrameEntry, Unit)
            .outerjoin(FrameEntry, FrameEntry.id == Assignment.frame_entry_id)
            .join(Unit, Unit.id == Assignment.unit_id)
            .where(Assignment.campaign_id == campaign.id, Assignment.active,
                   Assignment.outcome.in_([o.value for o in PRINTABLE]))
            .order_by(Assignment.group, Assignment.stratum_id, Assignment.draw_order))
    if unit_id is not None:
        stmt = stmt.where(Assignment.unit_id == unit_id)
    if group is not None:
        stmt = stmt.where(Assignment.group == group)
    if enumerator_id is not None:
        stmt = stmt.where(Assignment.enumerator_id.is_(None)
                          | (Assignment.enumerator_id == enumerator_id))
    items = [PrintItem(a, e, u) for a, e, u in db.session.execute(stmt).all()]
    return sorted(items, key=lambda it: (vietnamese_sort_key(it.unit.name), it.unit.code,
                                         vietnamese_sort_key(it.address),
                                         vietnamese_sort_key(it.name)))


def stratum_counts(campaign: Campaign, unit_ids: set[int] | None = None,
                   enumerator_id: int | None = None) -> list[dict]:
    """Per rated unit × group: active assignments, still to print, already issued, anonymous
    forms printed. `unit_ids` restricts to a user's scope (None: every unit); with
    `enumerator_id`, forms handed to another enumerator are not counted (they would not be
    printed for this one)."""
    strata = db.session.execute(
        select(Stratum, Unit).join(Unit, Unit.id == Stratum.unit_id)
        .where(Stratum.campaign_id == campaign.id).order_by(Unit.code, Stratum.group)).all()
    base = select(Assignment.stratum_id, func.count(Assignment.id)).where(
        Assignment.campaign_id == campaign.id, Assignment.active).group_by(Assignment.stratum_id)
    if enumerator_id is not None:
        base = base.where(Assignment.enumerator_id.is_(None)
                          | (Assignment.enumerator_id == enumerator_id))
    active = dict(db.session.execute(base).all())
    to_print = dict(db.session.execute(base.where(
        Assignment.outcome.in_([o.value for o in PRINTABLE]))).all())
    issued = dict(db.session.execute(base.where(Assignment.issued_at.is_not(None))).all())
    reprints = dict(db.session.execute(base.where(
        Assignment.outcome.in_([Outcome.ISSUED.value, Outcome.DELIVERED.value]))).all())
    anonymous = {(u, g): n for u, g, n in db.session.execute(
        select(AccessToken.unit_id, AccessToken.group, func.count(AccessToken.id))
        .where(AccessToken.campaign_id == campaign.id, AccessToken.assignment_id.is_(None))
        .group_by(AccessToken.unit_id, AccessToken.group)).all()}
    rows = []
    for stratum, unit in strata:
        if unit_ids is not None and unit.id not in unit_ids:
            continue
        rows.append({"stratum": stratum, "unit": unit, "group": stratum.group,
                     "active": active.get(stratum.id, 0), "to_print": to_print.get(stratum.id, 0),
                     "issued": issued.get(stratum.id, 0),
                     "reprint": reprints.get(stratum.id, 0),
                     "anonymous": anonymous.get((unit.id, stratum.group), 0)})
    return rows


# --- layout ----------------------------------------------------------------------------------


def campaign_info(campaign: Campaign) -> CampaignInfo:
    """What the forms say about the campaign: name and year from it, organiser, contact and
    return address from the PRINT_* settings. The rated unit is printed per form."""
    cfg = current_app.config
    return CampaignInfo(
        name=campaign.name, year=campaign.year,
        organiser=cfg.get("PRINT_ORGANISER", ""), contact=cfg.get("PRINT_CONTACT", ""),
        return_address=cfg.get("PRINT_RETURN_ADDRESS", ""),
    )


# Layouts (with their PDF templates) are costly to build and never change for a questionnaire
# digest and campaign header: keep a few per process.
_LAYOUTS: dict[tuple[str, CampaignInfo], FormLayout] = {}
_LAYOUT_CACHE_SIZE = 16


def layout_for(campaign: Campaign, group: RespondentGroup) -> FormLayout:
    """The form layout of a campaign's group (one layout serves every rated unit)."""
    questionnaire, cg = questionnaire_for(campaign.id, group)
    info = campaign_info(campaign)
    key = (cg.questionnaire_digest, info)
    layout = _LAYOUTS.get(key)
    if layout is None:
        layout = prepare_layout(questionnaire, info)
        if len(_LAYOUTS) >= _LAYOUT_CACHE_SIZE:
            _LAYOUTS.pop(next(iter(_LAYOUTS)))
        _LAYOUTS[key] = layout
    return layout


# --- output plumbing -------------------------------------------------------------------------


@contextmanager
def _open_output(out: Output) -> Iterator[BinaryIO]:
    """A binary stream for `out`; a path is written to `<path>.part` and renamed only when
    complete, and removed on failure (never a half-written file under the final name)."""
    if not isinstance(out, str | os.PathLike):
        yield out
        return
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    try:
        with open(part, "wb") as stream:
            yield stream
        part.replace(path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _check_open(campaign: Campaign) -> None:
    if campaign.status is CampaignStatus.CLOSED:
        raise Conflict("Chiến dịch đã kết thúc: không in thêm phiếu.")


def _personalisation(item: PrintItem, token=None) -> Personalisation:
    e = item.entry
    return Personalisation(
        serial=item.assignment.serial,
        short_code=token.short_code if token else "",
        url=token.url if token else "",
        recipient_name=e.name if e else "",
        recipient_address=e.address if e else "",
        unit_name=item.unit.name,
        phone=(e.phone or "") if e else "",
    )


def _single_group(items: list[PrintItem], group: RespondentGroup | None) -> RespondentGroup:
    groups = {it.assignment.group for it in items}
    if len(groups) > 1:
        raise SurveyError("Mỗi nhóm đối tượng có bảng hỏi riêng: hãy chọn một nhóm để in phiếu.",
                          code="group_required")
    return next(iter(groups)) if groups else group  # type: ignore[return-value]


# --- forms -----------------------------------------------------------------------------------


def _issue_and_personalise(items: list[PrintItem], issued: list[Personalisation] | None
                           ) -> Iterator[Personalisation]:
    """Issue a token per assignment while the PDF is written, and mark it issued."""
    now = utcnow()
    for item in items:
        a = item.assignment
        token = issue_for_assignment(a)
        if a.outcome is Outcome.PENDING:
            a.outcome = Outcome.ISSUED
        a.issued_at = now
        a.issued_mode = a.mode
        a.updated_at = now
        p = _personalisation(item, token)
        if issued is not None:
            issued.append(p)
        yield p


def _render_items(campaign: Campaign, items: list[PrintItem], group: RespondentGroup,
                  out: BinaryIO, progress: Progress | None,
                  issued: list[Personalisation] | None = None) -> int:
    layout = layout_for(campaign, group)
    total = len(items)
    if progress:
        progress(0, total)
    count = render_forms(layout, _issue_and_personalise(items, issued), out,
                         (lambda done: progress(done, total)) if progress else None)
    db.session.flush()
    return count


def print_batch(campaign: Campaign, *, out: Output, unit_id: int | None = None,
                group: RespondentGroup | None = None, progress: Progress | None = None,
                anonymous_count: int = 0, enumerator_id: int | None = None) -> dict:
    """Print the personalised forms of the active assignments still in the field (pending,
    issued or delivered), sorted by unit and address, into one PDF written to `out`.

    Each form gets a fresh token (earlier printouts of it stop working) and its assignment is
    marked issued (pending → issued, `issued_at`, `issued_mode`). The selection must hold one
    respondent group (one questionnaire per PDF). With `anonymous_count` > 0, prints that many
    anonymous walk-in forms for `unit_id` × `group` instead (see `print_anonymous`). An
    enumerator's print (`enumerator_id`) skips forms handed to someone else: reprinting them
    would also kill the links that person has printed.
    Flushes only: commit after it returns, roll back if it raises.
    """
    if anonymous_count:
        if unit_id is None or group is None:
            raise SurveyError("Phiếu không ghi tên cần chọn một đơn vị và một nhóm đối tượng.")
        return print_anonymous(campaign, unit_id=unit_id, group=group, count=anonymous_count,
                               out=out, progress=progress)
    _check_open(campaign)
    items = printable_items(campaign, unit_id=unit_id, group=group,
                            enumerator_id=enumerator_id)
    if not items:
        raise NothingToPrint("Không có phiếu nào cần in (chưa chọn mẫu, hoặc mọi phiếu đã có "
                             "kết quả).")
    group = _single_group(items, group)
    reprinted = sum(1 for it in items if it.assignment.outcome is not Outcome.PENDING)
    with _open_output(out) as stream:
        count = _render_items(campaign, items, group, stream, progress)
    audit(AuditAction.FORMS_PRINTED, target=f"campaign:{campaign.id}", kind=PrintKind.FORMS.value,
          unit=unit_id, group=group.value, forms=count, reprinted=reprinted)
    db.session.flush()
    return {"forms": count, "reprinted": reprinted, "group": group.value,
            "pages": count * layout_for(campaign, group).page_count,
            "serials": [it.assignment.serial for it in items]}


def anonymous_serial(campaign_id: int, unit_id: int, n: int) -> str:
    """Serial of the n-th anonymous form of a unit: A<campaign>-<unit>-<n:05d>."""
    return f"A{campaign_id}-{unit_id}-{n:05d}"


def _next_anonymous_number(campaign: Campaign, unit_id: int) -> int:
    prefix = anonymous_serial(campaign.id, unit_id, 0)[:-5]
    # Serialise concurrent anonymous batches of a campaign (row lock on PostgreSQL; SQLite
    # serialises writers anyway).
    db.session.execute(select(Campaign.id).where(Campaign.id == campaign.id).with_for_update())
    serials = db.session.scalars(select(AccessToken.serial).where(
        AccessToken.campaign_id == campaign.id, AccessToken.unit_id == unit_id,
        AccessToken.assignment_id.is_(None), AccessToken.serial.startswith(prefix)))
    numbers = [int(s[len(prefix):]) for s in serials if s[len(prefix):].isdigit()]
    return max(numbers, default=0) + 1


def print_anonymous(campaign: Campaign, *, unit_id: int, group: RespondentGroup, count: int,
                    out: Output, progress: Progress | None = None) -> dict:
    """`count` anonymous walk-in forms for a rated unit × group, each with its own token and a
    serial A<campaign>-<unit>-<n> continuing after the unit's earlier anonymous forms."""
    _check_open(campaign)
    if not 1 <= count <= MAX_ANONYMOUS:
        raise SurveyError(f"Số phiếu không ghi tên phải từ 1 đến {MAX_ANONYMOUS}.")
    unit = rated_unit(campaign, unit_id=unit_id)
    stratum = db.session.scalar(select(Stratum.id).where(
        Stratum.campaign_id == campaign.id, Stratum.unit_id == unit.id, Stratum.group == group))
    if stratum is None:
        raise NotFound("Đơn vị này không có nhóm đối tượng đã chọn trong chiến dịch.")
    layout = layout_for(campaign, group)
    first = _next_anonymous_number(campaign, unit.id)

    def forms() -> Iterator[Personalisation]:
        for n in range(first, first + count):
            token = issue_anonymous(campaign.id, unit.id, group,
                                    anonymous_serial(campaign.id, unit.id, n))
            yield Personalisation(serial=token.serial, short_code=token.short_code,
                                  url=token.url, unit_name=unit.name)

    if progress:
        progress(0, count)
    with _open_output(out) as stream:
        written = render_forms(layout, forms(), stream,
                               (lambda done: progress(done, count)) if progress else None)
    db.session.flush()
    audit(AuditAction.FORMS_PRINTED, target=f"campaign:{campaign.id}",
          kind=PrintKind.ANONYMOUS.value, unit=unit.id, group=group.value, forms=written)
    db.session.flush()
    return {"forms": written, "group": group.value, "pages": written * layout.page_count,
            "serials": [anonymous_serial(campaign.id, unit.id, n)
                        for n in range(first, first + count)]}


# --- postal work -----------------------------------------------------------------------------


def _sender(campaign: Campaign) -> tuple[str, str]:
    info = campaign_info(campaign)
    return info.organiser or "Cơ quan tổ chức khảo sát", info.return_address


def print_postal_documents(campaign: Campaign, kind: PrintKind, *, out: Output,
                           unit_id: int | None = None, group: RespondentGroup | None = None,
                           progress: Progress | None = None,
                           enumerator_id: int | None = None) -> dict:
    """Labels, envelopes or a manifest (CSV/XLSX) for the forms still in the field, in the same
    order as the forms. Issues nothing: the manifest's form-code column stays empty (the code
    is known only when a form is printed; the postal pack carries it)."""
    if kind not in (PrintKind.LABELS, PrintKind.ENVELOPES, PrintKind.MANIFEST_CSV,
                    PrintKind.MANIFEST_XLSX):
        raise ValueError(kind)
    items = printable_items(campaign, unit_id=unit_id, group=group,
                            enumerator_id=enumerator_id)
    if not items:
        raise NothingToPrint("Không có phiếu nào cần gửi.")
    people = [_personalisation(it) for it in items]
    if progress:
        progress(0, len(people))
    with _open_output(out) as stream:
        count = _write_postal(campaign, kind, people, stream)
    if progress:
        progress(count, len(people))
    audit(AuditAction.FORMS_PRINTED, target=f"campaign:{campaign.id}", kind=kind.value,
          unit=unit_id, group=group.value if group else None, rows=count)
    db.session.flush()
    return {"rows": count}


def _write_postal(campaign: Campaign, kind: PrintKind, people: list[Personalisation],
                  stream: BinaryIO) -> int:
    if kind is PrintKind.LABELS:
        return render_labels((MailingAddress.from_personalisation(p) for p in people), stream)
    if kind is PrintKind.ENVELOPES:
        sender, sender_address = _sender(campaign)
        return render_envelopes((MailingAddress.from_personalisation(p) for p in people),
                                stream, sender=sender, sender_address=sender_address)
    if kind is PrintKind.MANIFEST_CSV:
        return write_manifest_csv(manifest_rows(people), stream)
    return write_manifest_xlsx(manifest_rows(people), stream)


POSTAL_PACK_FILES = ("phieu.pdf", "nhan.pdf", "phong-bi.pdf", "danh-sach.csv", "danh-sach.xlsx",
                     "phong-bi-tra-loi.txt")


def print_postal_pack(campaign: Campaign, *, out: Output, unit_id: int | None = None,
                      group: RespondentGroup | None = None,
                      progress: Progress | None = None,
                      enumerator_id: int | None = None) -> dict:
    """A ZIP for the post office, all from one printing: the forms (fresh tokens, assignments
    marked issued, as `print_batch`), mailing labels (A4 3×8), envelopes, the manifest as CSV
    and XLSX (serial, recipient, address, phone, unit, form code; never a token) and the
    return-envelope text."""
    _check_open(campaign)
    items = printable_items(campaign, unit_id=unit_id, group=group,
                            enumerator_id=enumerator_id)
    if not items:
        raise NothingToPrint("Không có phiếu nào cần gửi.")
    group = _single_group(items, group)
    issued: list[Personalisation] = []
    with _open_output(out) as stream, zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open(POSTAL_PACK_FILES[0], "w", force_zip64=True) as member:
            count = _render_items(campaign, items, group, member, progress, issued)
        for name, kind in zip(POSTAL_PACK_FILES[1:5], (PrintKind.LABELS, PrintKind.ENVELOPES,
                                                        PrintKind.MANIFEST_CSV,
                                                        PrintKind.MANIFEST_XLSX), strict=True):
            buf = io.BytesIO()
            _write_postal(campaign, kind, issued, buf)
            zf.writestr(name, buf.getvalue())
        zf.writestr(POSTAL_PACK_FILES[5],
                    return_envelope_text(campaign_info(campaign)).encode("utf-8") + b"\n")
    audit(AuditAction.FORMS_PRINTED, target=f"campaign:{campaign.id}",
          kind=PrintKind.POSTAL_PACK.value, unit=unit_id, group=group.value, forms=count)
    db.session.flush()
    return {"forms": count, "group": group.value, "files": list(POSTAL_PACK_FILES),
            "serials": [p.serial for p in issued]}


def run_print(kind: PrintKind, campaign: Campaign, *, out: Output, unit_id: int | None = None,
              group: RespondentGroup | None = None, count: int = 0,
              progress: Progress | None = None, enumerator_id: int | None = None) -> dict:
    """Dispatch a print request to its service (shared by the job, the CLI and tests);
    `enumerator_id` leaves out forms handed to another enumerator."""
    if kind is PrintKind.FORMS:
        return print_batch(campaign, out=out, unit_id=unit_id, group=group, progress=progress,
                           enumerator_id=enumerator_id)
    if kind is PrintKind.ANONYMOUS:
        if unit_id is None or group is None:
            raise SurveyError("Phiếu không ghi tên cần chọn một đơn vị và một nhóm đối tượng.")
        return print_anonymous(campaign, unit_id=unit_id, group=group, count=count, out=out,
                               progress=progress)
    if kind is PrintKind.POSTAL_PACK:
        return print_postal_pack(campaign, out=out, unit_id=unit_id, group=group,
                                 progress=progress, enumerator_id=enumerator_id)
    return print_postal_documents(campaign, kind, out=out, unit_id=unit_id, group=group,
                                  progress=progress, enumerator_id=enumerator_id)
