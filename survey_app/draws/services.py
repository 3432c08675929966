"""Drawing a campaign's sample, verifying it, and activating reserves."""

from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.orm.attributes import set_committed_value

from questionnaires.model import FrameScope, Mode, RespondentGroup
from sampling import (
    DedupScope,
    DrawResult,
    EligibilityRules,
    ExclusionReason,
    SamplingError,
    StratumDraw,
    check_eligibility,
    draw_all,
    seed_from_public_value,
)
from sampling import verify as verify_core

from ..errors import Conflict, SurveyError
from ..extensions import db
from ..models import (
    AccessToken,
    Assignment,
    AuditAction,
    BatchStatus,
    Campaign,
    CampaignGroup,
    Draw,
    FrameEntry,
    ImportBatch,
    Outcome,
    Response,
    Stratum,
    User,
)
from ..models._types import utcnow
from ..services.audit import audit
from ..services.bulk import bulk_insert_columns
from .frame import CampaignFrame, load_campaign_frame, phone_digits

METHOD = (
    "Chọn mẫu ngẫu nhiên đơn giản không hoàn lại trong từng tầng (đơn vị được đánh giá × nhóm "
    "đối tượng). Danh sách mỗi tầng được sắp theo khoá ổn định; mỗi tầng có bộ sinh số ngẫu "
    "nhiên riêng (numpy PCG64) khởi tạo từ hạt giống của đợt và khoá tầng; người có độ ưu tiên "
    "ngẫu nhiên nhỏ nhất được chọn, các người kế tiếp là dự phòng theo đúng thứ tự. "
    "Mã băm SHA-256 của danh sách đủ điều kiện từng tầng được ghi lại để kiểm tra lại."
)
TRANSACTION_GROUPS = frozenset({RespondentGroup.CITIZEN, RespondentGroup.BUSINESS})
FIELDWORK_OUTCOMES = frozenset(set(Outcome) - {Outcome.PENDING, Outcome.RESERVE})


class DrawRefused(SurveyError):
    """A draw that may not run (nothing changes)."""

    status = 409
    code = "draw_refused"


def _rules(campaign: Campaign, cg: CampaignGroup, excluded_phones: np.ndarray
           ) -> EligibilityRules:
    transactions = cg.group in TRANSACTION_GROUPS
    return EligibilityRules.for_campaign(
        phone_mode=cg.mode is Mode.PHONE,
        period_start=campaign.period_start if transactions else None,
        period_end=campaign.period_end if transactions else None,
        reference_year=campaign.year,
        excluded_phones=excluded_phones,
        # A shared list appears once per stratum: dedupe within strata, not across them.
        one_per_phone=DedupScope.STRATUM if cg.frame_scope is FrameScope.SHARED
        else DedupScope.FRAME,
    )


def _previous_phones(campaign: Campaign) -> np.ndarray:
    if not campaign.previous_campaign_id:
        return np.empty(0, np.int64)
    phones = db.session.scalars(
        select(FrameEntry.phone).join(Assignment, Assignment.frame_entry_id == FrameEntry.id)
        .where(Assignment.campaign_id == campaign.previous_campaign_id, Assignment.active,
               FrameEntry.phone.is_not(None)))
    return np.array([phone_digits(p) for p in phones], dtype=np.int64)


def eligibility_mask(campaign: Campaign, cf: CampaignFrame) -> tuple[np.ndarray, np.ndarray]:
    """Eligible rows (bool) and the exclusion reason per row, group by group.

    Lists without a transaction date (the usual template has none) are taken as the unit's
    statement that the transactions fall in the reference period.
    """
    frame = cf.frame
    reason = np.zeros(len(frame), dtype=np.uint8)
    groups = {g.group: g for g in campaign.groups}
    strata_group = np.array([list(RespondentGroup).index(s.group) for s in cf.strata] or [0],
                            dtype=np.int8)
    row_group = strata_group[frame.stratum] if len(frame) else np.zeros(0, np.int8)
    excluded = _previous_phones(campaign)
    for gi, group in enumerate(RespondentGroup):
        cg = groups.get(group)
        rows = np.flatnonzero(row_group == gi)
        if cg is None or rows.size == 0:
            continue
        sub = frame.take(rows)
        dates = sub.transaction_date.copy()
        dates[np.isnat(dates)] = np.datetime64(campaign.period_start, "D")
        sub = type(sub)(key=sub.key, stratum=sub.stratum, phone=sub.phone,
                        transaction_date=dates, birth_year=sub.birth_year,
                        fingerprint=sub.fingerprint)
        reason[rows] = check_eligibility(sub, _rules(campaign, cg, excluded)).reason
    return reason == 0, reason


def _seed(campaign: Campaign, public_value: str | None, seed: int | None) -> tuple[int, str]:
    if public_value:
        try:
            return seed_from_public_value(public_value), public_value.strip()
        except SamplingError as exc:
            raise SurveyError("Giá trị công khai để tạo hạt giống không hợp lệ.") from exc
    if seed is not None:
        return int(seed), ""
    if campaign.seed is not None:
        return int(campaign.seed), ""
    raise SurveyError("Chưa có hạt giống: nhập giá trị công khai (ví dụ kết quả xổ số đã "
                      "công bố trước) hoặc ghi hạt giống trong kế hoạch.")


def fieldwork_started(campaign: Campaign) -> bool:
    """True once any assignment left the pending/reserve state or any response exists."""
    moved = db.session.scalar(select(func.count(Assignment.id)).where(
        Assignment.campaign_id == campaign.id, Assignment.outcome.in_(FIELDWORK_OUTCOMES)))
    answered = db.session.scalar(select(func.count(Response.id)).where(
        Response.campaign_id == campaign.id))
    return bool(moved or answered)


def _serials(campaign_id: int, stratum_ids: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """`<campaign>-<stratum>-<draw order>` (printed on the forms; unique), as a NumPy bytes
    array built column-wise, the same text as f"{campaign_id}-{stratum_id}-{order:03d}"."""
    prefix = np.frombuffer(f"{int(campaign_id)}-".encode(), dtype=np.uint8)
    s_used, s_digits = _decimal(np.asarray(stratum_ids, np.int64), 1)
    o_used, o_digits = _decimal(np.asarray(orders, np.int64), 3)
    n = s_digits.shape[0]
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    # Fixed columns (prefix, stratum right-aligned, dash, order right-aligned), then the
    # used bytes of each row moved to its start.
    text = np.hstack([np.broadcast_to(prefix, (n, prefix.size)), s_digits, dash, o_digits])
    used = np.hstack([np.ones((n, prefix.size), bool), s_used, np.ones((n, 1), bool), o_used])
    width = text.shape[1]
    length = used.sum(axis=1)
    start = np.cumsum(length) - length
    at = np.arange(int(length.sum())) - np.repeat(start, length)
    out = np.zeros(n * width, dtype=np.uint8)
    out[np.repeat(np.arange(n) * width, length) + at] = text[used]
    return out.view(f"S{width}")


def _decimal(values: np.ndarray, min_width: int) -> tuple[np.ndarray, np.ndarray]:
    """ASCII digits of non-negative ints right-aligned in a (rows, widest) matrix, and which
    of them each number uses (its digits, zero-padded to `min_width`)."""
    if values.size and int(values.min()) < 0:
        raise ValueError("negative numbers have no serial")
    widest = max(len(str(int(values.max()))) if values.size else 1, min_width)
    digits = np.empty((values.size, widest), dtype=np.uint8)
    rest = values.copy()
    for k in range(widest - 1, -1, -1):
        digits[:, k] = rest % 10 + ord("0")
        rest //= 10
    length = np.full(values.size, min_width, dtype=np.int64)
    for k in range(min_width, widest):
        length[values >= 10**k] = k + 1
    return np.arange(widest) >= widest - length[:, None], digits


def _write_assignments(campaign: Campaign, cf: CampaignFrame, result: DrawResult,
                       modes: dict[RespondentGroup, Mode], *, in_place: bool = False) -> int:
    """Insert the main sample then the reserves of every stratum, in draw order, column-wise
    (PostgreSQL: one binary COPY built with NumPy, no Python object per row but the serial).

    `in_place`: the earlier draw's rows are kept and rewritten (see `_rewrite_assignments`).
    """
    n_sel = result.n_selected
    n_res = np.diff(result.reserve_offsets)
    sel_st, res_st = result.selected_strata, result.reserve_strata
    # Stratum by stratum, main sample (draw order 1..n) then reserves (n+1..), as drawn.
    st = np.concatenate([sel_st, res_st]).astype(np.int64)
    order = np.argsort(st, kind="stable")
    st = st[order]
    # draw_all returns the frame row of every drawn key: its frame_entries.id is at hand.
    entry_ids = cf.entry_ids[np.concatenate([result.selected_rows, result.reserve_rows])[order]]
    is_reserve = (order >= sel_st.size)
    starts = np.concatenate([[0], np.cumsum(n_sel + n_res)[:-1]]).astype(np.int64)
    draw_order = np.arange(st.size, dtype=np.int64) - starts[st] + 1

    stratum_ids = np.array([s.id for s in cf.strata], dtype=np.int64)
    unit_ids = np.array([s.unit_id for s in cf.strata], dtype=np.int64)
    # Text columns as NumPy bytes arrays (one value per stratum, spread to rows by index).
    groups = np.array([s.group.value.encode() for s in cf.strata] or [b""])
    stratum_modes = np.array([modes[s.group].value.encode() for s in cf.strata] or [b""])
    now = utcnow()
    sid = stratum_ids[st]
    columns = {
        "campaign_id": campaign.id,
        "stratum_id": sid,
        "unit_id": unit_ids[st],
        "group": groups[st],
        "mode": stratum_modes[st],
        "updated_at": now,
        "frame_entry_id": entry_ids,
        "draw_order": draw_order,
        "is_reserve": is_reserve,
        "active": ~is_reserve,
        "outcome": np.where(is_reserve, Outcome.RESERVE.value.encode(),
                            Outcome.PENDING.value.encode()),
        "weight": result.weights[st],
        "serial": _serials(campaign.id, sid, draw_order),
        # Main sample active from the draw; reserves (NaT = NULL) when activated.
        "activated_at": np.where(is_reserve, np.datetime64("NaT", "us"),
                                 np.datetime64(now.replace(tzinfo=None), "us")),
    }
    if in_place:
        return _rewrite_assignments(campaign, columns)
    return bulk_insert_columns(Assignment.__table__, columns)


def _referencing_tables() -> list:
    """Tables with a foreign key to assignments.id, with that column."""
    target = Assignment.__table__.c.id
    return [(table, fk.parent) for table in db.metadata.tables.values()
            for fk in table.foreign_keys if fk.column is target]


def _can_rewrite_in_place(campaign: Campaign, started: bool) -> bool:
    """Whether a redraw may keep the earlier draw's rows and rewrite them (PostgreSQL).

    Deleting 272,000 assignments runs, per row, one ON DELETE CASCADE query for each table
    that references assignments (tokens, paper keyings, response links): 3.4 s of the 3.6 s a
    national delete takes. Before fieldwork nothing but tokens (deleted explicitly) refers to
    an assignment, so the rows of the same (stratum, draw order) positions can be rewritten
    instead: their ids stay, everything else is the new draw's. After fieldwork has started
    (a forced redraw) the rows are deleted, so that no history stays on a reused id.
    """
    if started or db.session.get_bind().dialect.name != "postgresql":
        return False
    mine = Assignment.campaign_id == campaign.id
    if db.session.scalar(select(Assignment.id).where(mine).limit(1)) is None:
        return False  # first draw
    # From the referencing table's side: an empty (or small) table answers at once.
    return not any(db.session.scalar(
        select(column).join(Assignment, Assignment.id == column).where(mine).limit(1))
        for table, column in _referencing_tables() if table is not AccessToken.__table__)


def _rewrite_assignments(campaign: Campaign, columns: dict[str, object]) -> int:
    """Replace the campaign's assignments by the rows in `columns`, keeping the rows of
    positions (stratum, draw order) present in both.

    The new rows go to a temporary table (binary COPY, no index, no WAL); one UPDATE rewrites
    the matching rows, then the old positions the new draw lacks are deleted and its new
    positions inserted (both usually empty). Rewritten rows keep their serial (a function of
    the position) and usually their outcome, so with the table's free space (fillfactor) the
    update is HOT: no index entry is written.
    """
    table = Assignment.__table__
    keys = ("campaign_id", "stratum_id", "draw_order")
    # Columns the draw does not write get the value a new row would have.
    reset = [c for c in table.columns if c.name not in columns and not c.primary_key]
    if any(not c.nullable or c.default is not None or c.server_default is not None
           for c in reset):
        raise SurveyError("Bảng phân công có cột chưa được chọn mẫu ghi (lỗi nội bộ).",
                          status=500)
    names = ", ".join(f'"{c}"' for c in columns)
    sets = ", ".join([f'"{c}" = t."{c}"' for c in columns if c not in keys]
                     + [f'"{c.name}" = NULL' for c in reset])
    temp = "draw_assignments"
    same = "t.stratum_id = a.stratum_id AND t.draw_order = a.draw_order"
    db.session.execute(text(f"DROP TABLE IF EXISTS {temp}"))
    db.session.execute(text(f"CREATE TEMPORARY TABLE {temp} ON COMMIT DROP AS "
                            f"SELECT {names} FROM {table.name} WITH NO DATA"))
    written = bulk_insert_columns(table, columns, target=temp)
    params = {"campaign": campaign.id}
    db.session.execute(text(
        f"UPDATE {table.name} AS a SET {sets} FROM {temp} AS t "
        f"WHERE a.campaign_id = :campaign AND {same}"), params)
    db.session.execute(text(
        f"DELETE FROM {table.name} AS a WHERE a.campaign_id = :campaign "
        f"AND NOT EXISTS (SELECT 1 FROM {temp} AS t WHERE {same})"), params)
    db.session.execute(text(
        f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {temp} AS t "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table.name} AS a WHERE {same})"))
    db.session.execute(text(f"DROP TABLE {temp}"))
    # Assignment objects loaded in this session describe the earlier draw.
    for key, obj in list(db.session.identity_map.items()):
        if key[0] is Assignment:
            db.session.expire(obj)
    return written


def _delete_previous_draw(campaign: Campaign, *, keep_rows: bool = False) -> None:
    """Tokens and (unless `keep_rows`) assignments of an earlier draw go (responses stay,
    unlinked by cascade)."""
    old = select(Assignment.id).where(Assignment.campaign_id == campaign.id)
    db.session.execute(delete(AccessToken).where(AccessToken.assignment_id.in_(old)))
    if not keep_rows:
        db.session.execute(delete(Assignment).where(Assignment.campaign_id == campaign.id))


_STRATUM_FIGURES = ("frame_count", "eligible_count", "drawn_count", "shortfall", "frame_digest")


def _update_strata(strata: list, values: dict[str, list], now: dt.datetime) -> None:
    """Store the draw's figures on every stratum with one statement (not one per stratum),
    and give Stratum objects already loaded in the session the same values as committed
    state (the draw itself reads strata as plain rows)."""
    if not strata:
        return
    ids = [s.id for s in strata]
    table = Stratum.__table__
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text(
            f"UPDATE {table.name} AS s SET frame_count = v.fc, eligible_count = v.ec, "
            "drawn_count = v.dc, shortfall = v.sf, frame_digest = v.fd, drawn_at = :now "
            "FROM unnest(CAST(:ids AS int[]), CAST(:fc AS int[]), CAST(:ec AS int[]), "
            "CAST(:dc AS int[]), CAST(:sf AS int[]), CAST(:fd AS text[])) "
            "AS v(id, fc, ec, dc, sf, fd) WHERE s.id = v.id"),
            {"ids": ids, "fc": values["frame_count"], "ec": values["eligible_count"],
             "dc": values["drawn_count"], "sf": values["shortfall"],
             "fd": values["frame_digest"], "now": now})
    else:
        stmt = (update(table).where(table.c.id == bindparam("_id"))
                .values({c: bindparam(f"_{c}") for c in (*_STRATUM_FIGURES, "drawn_at")}))
        db.session.execute(stmt, [
            {"_id": sid, "_drawn_at": now, **{f"_{c}": values[c][h] for c in _STRATUM_FIGURES}}
            for h, sid in enumerate(ids)])
    position = {sid: h for h, sid in enumerate(ids)}
    loaded = [(obj, position[key[1][0]]) for key, obj in list(db.session.identity_map.items())
              if key[0] is Stratum and key[1][0] in position]
    for stratum, h in loaded:
        for c in _STRATUM_FIGURES:
            set_committed_value(stratum, c, values[c][h])
        set_committed_value(stratum, "drawn_at", now)


def _has_strata(campaign: Campaign) -> bool:
    return db.session.scalar(
        select(Stratum.id).where(Stratum.campaign_id == campaign.id).limit(1)) is not None


def draw_campaign(campaign: Campaign, *, public_value: str | None = None,
                  seed: int | None = None, force: bool = False, user: User | None = None
                  ) -> Draw:
    """Draw every stratum of a campaign and write its assignments (replacing an earlier draw).

    Refused once fieldwork has started, unless `force` (then audited as a forced redraw).
    """
    started = fieldwork_started(campaign)
    if started and not force:
        raise DrawRefused("Đã bắt đầu điều tra (có phiếu đã phát hoặc đã có trả lời): không "
                          "được chọn mẫu lại. Chỉ quản trị viên được buộc chọn lại, "
                          "có ghi nhật ký.")
    if not _has_strata(campaign):
        raise DrawRefused("Chiến dịch chưa có tầng mẫu nào (đơn vị × nhóm).")
    seed_value, public = _seed(campaign, public_value, seed)
    # Batches used by a draw can no longer be replaced or withdrawn. They are marked first and
    # only marked ones are read: a list activated meanwhile is not drawn, and the update
    # locks the newly marked rows, so a replacement or withdrawal of one of them waits for
    # this draw's commit.
    db.session.execute(update(ImportBatch).where(
        ImportBatch.campaign_id == campaign.id, ImportBatch.status == BatchStatus.ACTIVE,
        ImportBatch.used_by_draw.is_(False),  # a redraw rewrites nothing
    ).values(used_by_draw=True))
    cf = load_campaign_frame(campaign, used_by_draw_only=True)
    eligible, reason = eligibility_mask(campaign, cf)
    result = draw_all(cf.frame, cf.specs, seed_value, eligible)

    # Replace an earlier draw: tokens and assignments go (responses stay, unlinked by cascade),
    # or, before fieldwork, the assignment rows are rewritten in place.
    in_place = _can_rewrite_in_place(campaign, started)
    _delete_previous_draw(campaign, keep_rows=in_place)
    modes = {g.group: g.mode for g in campaign.groups}
    written = _write_assignments(campaign, cf, result, modes, in_place=in_place)

    values = {
        "frame_count": np.asarray(cf.frame_counts, dtype=np.int64).tolist(),
        "eligible_count": result.eligible.tolist(),
        "drawn_count": result.n_selected.tolist(),
        "shortfall": result.shortfall.tolist(),
        "frame_digest": list(result.digests),
    }
    _update_strata(cf.strata, values, utcnow())
    n_reserves = np.diff(result.reserve_offsets).tolist()
    by_stratum = _reason_counts(reason, cf)
    figures = [{"key": cf.specs[h].key, "frame": values["frame_count"][h],
                "eligible": values["eligible_count"][h], "quota": stratum.quota,
                "drawn": values["drawn_count"][h], "reserves": n_reserves[h],
                "shortfall": values["shortfall"][h], "digest": values["frame_digest"][h],
                "excluded": by_stratum[h]} for h, stratum in enumerate(cf.strata)]
    campaign.seed = seed_value
    draw = Draw(campaign_id=campaign.id, seed=seed_value, public_value=public, method=METHOD,
                forced=bool(started and force), created_by_id=user.id if user else None,
                summary={"strata": figures, "frame_digest": result.frame_digest,
                         "assignments": written, "frame_rows": int(len(cf.frame))})
    db.session.add(draw)
    db.session.flush()
    audit(AuditAction.DRAW_FORCED if started and force else AuditAction.DRAW, user=user,
          target=f"campaign:{campaign.id}", draw=draw.id, seed=seed_value,
          assignments=written, frame_digest=result.frame_digest)
    return draw


def _reason_counts(reason: np.ndarray, cf: CampaignFrame) -> list[dict[str, int]]:
    out: list[dict[str, int]] = [{} for _ in cf.strata]
    if reason.size == 0:
        return out
    width = len(ExclusionReason) + 1
    counts = np.bincount(cf.frame.stratum.astype(np.int64) * width + reason,
                         minlength=len(cf.strata) * width).reshape(len(cf.strata), width)
    names = {r.value: r.name.lower() for r in ExclusionReason}
    counts[:, 0] = 0  # eligible rows
    for h, r in zip(*np.nonzero(counts), strict=True):  # only the reasons that occur
        out[h][names[int(r)]] = int(counts[h, r])
    return out


def latest_draw(campaign: Campaign) -> Draw | None:
    """The most recent draw of a campaign."""
    return db.session.scalar(select(Draw).where(Draw.campaign_id == campaign.id)
                             .order_by(Draw.id.desc()).limit(1))


def verify_campaign(campaign: Campaign) -> dict:
    """Recompute the last draw from the stored frame (fingerprints recomputed from the rows)
    and compare it with the stored assignments; returns counts and differences."""
    draw = latest_draw(campaign)
    if draw is None:
        raise SurveyError("Chiến dịch chưa chọn mẫu, chưa có gì để kiểm tra.", status=409)
    cf = load_campaign_frame(campaign, recompute_fingerprints=True)
    eligible, _ = eligibility_mask(campaign, cf)
    recorded = _recorded(campaign, cf)
    report = verify_core(cf.frame, cf.specs, draw.seed, recorded, eligible)
    diffs = [{"stratum": d.stratum, "kind": d.kind.value, "expected": d.expected,
              "found": d.found} for d in report.differences]
    return {"campaign": campaign.key, "seed": draw.seed, "ok": not diffs,
            "strata": len(cf.specs), "differences": diffs}


def _recorded(campaign: Campaign, cf: CampaignFrame) -> list[StratumDraw]:
    """The stored draw as the core's StratumDraw records: the stable key of each assigned
    entry (-1 when the entry is gone), main sample and reserves in draw order."""
    mine = Assignment.campaign_id == campaign.id
    # Keys of the assigned entries only (a national frame has 5 M entries, a draw 272 k).
    entries = dict(db.session.execute(
        select(FrameEntry.id, FrameEntry.stable_key).where(FrameEntry.id.in_(
            select(Assignment.frame_entry_id).where(mine).scalar_subquery()))).all())
    by_stratum: dict[int, list[tuple[int | None, bool]]] = {}
    for stratum_id, entry_id, is_reserve in db.session.execute(
            select(Assignment.stratum_id, Assignment.frame_entry_id, Assignment.is_reserve)
            .where(mine).order_by(Assignment.stratum_id, Assignment.draw_order)):
        by_stratum.setdefault(stratum_id, []).append((entry_id, is_reserve))
    out = []
    for spec, stratum in zip(cf.specs, cf.strata, strict=True):
        rows = by_stratum.get(stratum.id, [])
        sel = [entries.get(e, -1) for e, reserve in rows if not reserve]
        res = [entries.get(e, -1) for e, reserve in rows if reserve]
        out.append(StratumDraw(key=spec.key, quota=stratum.quota,
                               selected=np.array(sel, dtype=np.int64),
                               reserves=np.array(res, dtype=np.int64),
                               eligible=int(stratum.eligible_count or 0),
                               digest=stratum.frame_digest or ""))
    return out


def stratum_figures(campaign: Campaign) -> list[dict]:
    """Per stratum: frame, eligible, quota, drawn, reserves used, shortfall (live counts)."""
    used = dict(db.session.execute(
        select(Assignment.stratum_id, func.count(Assignment.id))
        .where(Assignment.campaign_id == campaign.id, Assignment.is_reserve, Assignment.active)
        .group_by(Assignment.stratum_id)).all())
    reserves = dict(db.session.execute(
        select(Assignment.stratum_id, func.count(Assignment.id))
        .where(Assignment.campaign_id == campaign.id, Assignment.is_reserve)
        .group_by(Assignment.stratum_id)).all())
    return [{"stratum": s, "reserves_drawn": reserves.get(s.id, 0),
             "reserves_used": used.get(s.id, 0)} for s in campaign.strata]


def activate_next_reserve(assignment: Assignment, user: User | None = None
                          ) -> Assignment | None:
    """After a refusal/non-contact/move, activate the stratum's next unused reserve, in draw
    order; never more active non-failed assignments than the quota."""
    stratum = db.session.get(Stratum, assignment.stratum_id)
    live = db.session.scalar(select(func.count(Assignment.id)).where(
        Assignment.stratum_id == stratum.id, Assignment.active,
        Assignment.outcome.not_in([o.value for o in Outcome if o.releases_reserve])))
    if live >= stratum.quota:
        return None
    nxt = db.session.scalar(
        select(Assignment).where(Assignment.stratum_id == stratum.id, Assignment.is_reserve,
                                 Assignment.active.is_(False))
        .order_by(Assignment.draw_order).limit(1).with_for_update())
    if nxt is None:
        return None
    nxt.active = True
    nxt.outcome = Outcome.PENDING
    nxt.activated_at = utcnow()
    db.session.flush()
    audit(AuditAction.RESERVE_ACTIVATED, user=user, target=f"assignment:{nxt.id}",
          replaces=assignment.id, stratum=stratum.id)
    return nxt


def set_outcome(assignment: Assignment, outcome: Outcome, user: User | None = None
                ) -> Assignment | None:
    """Record a fieldwork outcome; a reserve-releasing outcome activates the next reserve."""
    if not assignment.active:
        raise Conflict("Phiếu dự phòng chưa được kích hoạt.")
    previous = assignment.outcome
    assignment.outcome = outcome
    assignment.updated_at = utcnow()
    if outcome in (Outcome.ISSUED, Outcome.DELIVERED) and assignment.issued_at is None:
        assignment.issued_at = utcnow()
    db.session.flush()
    audit(AuditAction.OUTCOME_SET, user=user, target=f"assignment:{assignment.id}",
          outcome=outcome.value, previous=previous.value)
    if outcome.releases_reserve and not previous.releases_reserve:
        return activate_next_reserve(assignment, user)
    return None
