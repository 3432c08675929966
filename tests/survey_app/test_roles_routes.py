"""Every role scoped to unit A against every route of unit B, taken from `app.url_map`.

Two units, RA1 and RB1, each with lists, a preview upload, a draw, a printed link, a response,
two paper keyings, a print job and an export, in two campaigns: one rating only RB1 (foreign:
an A user must not even learn it exists) and one rating both (shared: A users may open its
pages, which must list only their own unit). Each route's URL parameters are filled with B's
ids; every role scoped to A requests it with GET and, where the route takes POST, with a valid
CSRF token and a form aimed at B's objects. Expected: 403 or 404 (anonymous: the login page),
no string of B's data in the body and not one committed row or stored file changed. A route
may be relaxed only by an entry in `ROUTES` that says why; a route that is neither in `ROUTES`
nor in `PUBLIC` fails `test_every_route_is_classified` (and is still tested strictly).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest
from helpers import csrf_from, login, make_campaign, make_frame, make_user
from sqlalchemy import select

from questionnaires.model import RespondentGroup
from survey_app.analysis.demo import synthetic_answers
from survey_app.analysis.services import freeze_scores
from survey_app.draws.services import draw_campaign
from survey_app.extensions import db
from survey_app.models import (
    Answer,
    Assignment,
    BackgroundJob,
    Campaign,
    FrameEntry,
    JobKind,
    JobStatus,
    Outcome,
    PaperEntry,
    Response,
    ResponseLink,
    ResponseSource,
    Role,
    Unit,
    User,
)
from survey_app.printouts.jobs import print_params
from survey_app.printouts.services import PrintKind
from survey_app.services.jobs import create_job, start_job
from survey_app.services.responses import questionnaire_for
from survey_app.services.tokens import find_by_token, issue_for_assignment

A, B = "RA1", "RB1"
SHARED, FOREIGN = "chung-2026", "rieng-b-2026"
PASSWORD = "password-123"
CITIZEN, SERVANT = RespondentGroup.CITIZEN, RespondentGroup.CIVIL_SERVANT
REFUSED = (403, 404)
SCOPED_ROLES = (Role.UPLOADER, Role.ENUMERATOR, Role.ANALYST)
USERS = {  # username → (role, units)
    "quantri-a": (Role.ADMIN, [A]),
    "donvi-a": (Role.UPLOADER, [A]),
    "dieutra-a": (Role.ENUMERATOR, [A]),
    "dieutra-a2": (Role.ENUMERATOR, [A]),
    "phantich-a": (Role.ANALYST, [A]),
    "donvi-b": (Role.UPLOADER, [B]),
    "dieutra-b": (Role.ENUMERATOR, [B]),
    "dieutra-b2": (Role.ENUMERATOR, [B]),
}
ROLE_USER = {Role.ADMIN: "quantri-a", Role.UPLOADER: "donvi-a", Role.ENUMERATOR: "dieutra-a",
             Role.ANALYST: "phantich-a"}


# --- the two units' data -----------------------------------------------------------------------


@dataclass
class Objects:
    """One unit's data in one campaign, as ids (sessions are rolled back between requests) and
    the strings that would betray them in a page."""

    key: str
    campaign_id: int
    unit_id: int
    unit_name: str
    batch_id: int  # an upload waiting for confirmation (preview rows and issues hold names)
    assignment_id: int  # an active citizen with a live printed link
    serial: str
    token: str
    short_code: str
    response_id: int
    paper_assignment_id: int  # a civil servant keyed twice, differently (waits for resolve)
    print_job_id: int  # a finished manifest of this unit (names and addresses)
    export_job_id: int  # a finished microdata export of the campaign
    secrets: set[str] = field(default_factory=set)  # anything of this unit
    identities: set[str] = field(default_factory=set)  # names, phones, addresses, serials, codes
    answers: set[str] = field(default_factory=set)  # typed into the response and the keyings


@dataclass
class World:
    """B in the foreign and the shared campaign, A in the shared one."""

    foreign: Objects
    shared: Objects
    own: Objects

    @property
    def b_secrets(self) -> set[str]:
        """Everything of unit B, and the name of the campaign A does not take part in."""
        foreign_name = db.session.scalar(select(Campaign.name).where(Campaign.key == FOREIGN))
        return self.foreign.secrets | self.shared.secrets | {foreign_name}

    @property
    def identities(self) -> set[str]:
        """Every name, phone, address, serial, link and code of both units."""
        return self.foreign.identities | self.shared.identities | self.own.identities


def _upload_csv(code: str, key: str) -> bytes:
    """A small list in the provinces' template, one row without a name (an issue)."""
    return (
        "TT\tHọ và tên\tTên thủ tục hành chính đã giao dịch\t"
        "Địa chỉ cư trú hoặc đơn vị công tác (thôn, xã, huyện)\t"
        "Số điện thoại (bắt buộc phải có)\n"
        f"1\tNgười Tải Lên {code} Một\tKhai sinh {key}\tXóm Tải Lên {code}\t0912 345 678\n"
        f"2\tNgười Tải Lên {code} Hai\tKhai tử {key}\tXóm Tải Lên {code}\t0912 345 679\n"
        f"3\t\tCấp phép {key}\tXóm Tải Lên {code}\t0912 345 680\n"
    ).encode("utf-16")


def _web_client(app, username: str):
    client = app.test_client()
    r = login(client, username, PASSWORD)
    assert r.status_code == 302, r.get_data(as_text=True)
    return client


def _finished(job_id: int) -> int:
    db.session.expire_all()
    job = db.session.get(BackgroundJob, job_id)
    assert job.status is JobStatus.DONE, (job.kind, job.message, job.result)
    return job.id


def _populate(app, campaign_id: int, code: str, keyers: tuple[str, str], printer: str,
              uploader: str, export_job_id: int) -> Objects:
    """Give unit `code` of the campaign a preview upload, a link, a response, two differing
    paper keyings and a print job; collect what would betray them."""
    campaign = db.session.get(Campaign, campaign_id)
    key = campaign.key
    unit = db.session.scalar(select(Unit).where(Unit.code == code))
    users = {u.username: u.id for u in db.session.scalars(select(User))}

    client = _web_client(app, uploader)
    page = client.get(f"/frames/{key}").get_data(as_text=True)
    r = client.post(f"/frames/{key}", data={
        "csrf_token": csrf_from(page), "unit": str(unit.id), "group": CITIZEN.value,
        "file": (io.BytesIO(_upload_csv(code, key)), f"ds-{code}-{key}.csv")})
    assert r.status_code == 302, r.get_data(as_text=True)
    batch_id = int(r.headers["Location"].rsplit("/", 1)[1])

    def active(group):
        return db.session.scalars(select(Assignment).where(
            Assignment.campaign_id == campaign_id, Assignment.unit_id == unit.id,
            Assignment.group == group, Assignment.active).order_by(Assignment.draw_order)).all()

    citizens, servants = active(CITIZEN), active(SERVANT)
    linked, answered, paper = citizens[0], citizens[1], servants[0]
    issued = issue_for_assignment(linked)

    q = questionnaire_for(campaign_id, CITIZEN)[0]
    answers = synthetic_answers(q, 0.3, np.random.default_rng(7))
    answers["g2"] = f"Góp ý riêng {code} {key}"
    response = Response(campaign_id=campaign_id, unit_id=unit.id, group=CITIZEN,
                        questionnaire_ref=q.ref, mode=answered.mode, source=ResponseSource.WEB,
                        submission_id=f"roles-{key}-{code}", weight=answered.weight, flags=[])
    response.answers = [Answer(question_id=k, value=str(v)) for k, v in answers.items()]
    db.session.add(response)
    db.session.flush()
    db.session.add(ResponseLink(assignment_id=answered.id, response_id=response.id))
    answered.outcome = Outcome.COMPLETED

    keyed = []
    for n, keyer in enumerate(keyers, start=1):
        text = f"Ghi chép giấy {code} {key} lần {n}"
        keyed.append(text)
        db.session.add(PaperEntry(assignment_id=paper.id, pass_no=n, keyed_by_id=users[keyer],
                                  answers={"k2": text}))
    job = create_job(JobKind.PRINT_BATCH,
                     print_params(PrintKind.MANIFEST_CSV, unit_id=unit.id, group=CITIZEN),
                     campaign_id=campaign_id, user_id=users[printer])
    db.session.commit()
    start_job(job)
    print_job_id = _finished(job.id)

    entries = db.session.scalars(select(FrameEntry).where(
        FrameEntry.campaign_id == campaign_id, FrameEntry.unit_id == unit.id)).all()
    identities = {issued.token, issued.short_code}
    for e in entries:
        identities |= {e.name, e.address}
        if e.phone:
            identities |= {e.phone, "0" + e.phone.removeprefix("+84")}
    identities |= set(db.session.scalars(select(Assignment.serial).where(
        Assignment.campaign_id == campaign_id, Assignment.unit_id == unit.id)))
    identities |= {f"Người Tải Lên {code}", f"Xóm Tải Lên {code}"}
    secrets = identities | set(keyed) | {answers["g2"], unit.name, f"ds-{code}-{key}.csv"}
    return Objects(
        key=key, campaign_id=campaign_id, unit_id=unit.id, unit_name=unit.name,
        batch_id=batch_id, assignment_id=linked.id, serial=linked.serial, token=issued.token,
        short_code=issued.short_code, response_id=response.id, paper_assignment_id=paper.id,
        print_job_id=print_job_id, export_job_id=export_job_id, secrets=secrets,
        identities=identities, answers={*keyed, answers["g2"]})


def _campaign(key: str, units: tuple[str, ...], file_sha: str) -> int:
    campaign = make_campaign(units=units, key=key, quota=4, reserves=1)
    for code in units:
        make_frame(campaign, code, CITIZEN.value, 8, file_sha=file_sha)
        make_frame(campaign, code, SERVANT.value, 4, phones=False, file_sha=file_sha)
    for e in db.session.scalars(select(FrameEntry).where(FrameEntry.campaign_id == campaign.id)):
        e.address = f"Xóm Kín {e.name.removeprefix('Người Thử ')} {key}"
    draw_campaign(campaign)
    db.session.commit()
    return campaign.id


def _export(campaign_id: int) -> int:
    job = create_job(JobKind.EXPORT, {"what": "microdata", "format": "csv"},
                     campaign_id=campaign_id)
    db.session.commit()
    start_job(job)
    return _finished(job.id)


@pytest.fixture
def world(app_ctx) -> World:
    """Units A and B, their users, both campaigns and every kind of object in each."""
    foreign_id = _campaign(FOREIGN, (B,), "b" * 64)
    shared_id = _campaign(SHARED, (A, B), "c" * 64)
    for username, (role, units) in USERS.items():
        make_user(username, role.value, units=units)
    foreign_export, shared_export = _export(foreign_id), _export(shared_id)
    b_keyers = ("dieutra-b", "dieutra-b2")
    result = World(
        foreign=_populate(app_ctx, foreign_id, B, b_keyers, "dieutra-b", "donvi-b",
                          foreign_export),
        shared=_populate(app_ctx, shared_id, B, b_keyers, "dieutra-b", "donvi-b",
                         shared_export),
        own=_populate(app_ctx, shared_id, A, ("dieutra-a", "dieutra-a2"), "dieutra-a",
                      "donvi-a", shared_export),
    )
    for campaign_id in (foreign_id, shared_id):
        freeze_scores(db.session.get(Campaign, campaign_id))
    db.session.commit()
    return result


# --- which routes, and how to aim them at B ----------------------------------------------------

Form = Callable[[Objects], dict]


def _keyed(group: RespondentGroup) -> Form:
    def build(o: Objects) -> dict:
        q = questionnaire_for(o.campaign_id, group)[0]
        return {x.id: "1" for x in q.questions() if x.kind.has_options}

    return build


def _handout_to(username: str) -> Form:
    """Hand B's unit's forms to B's enumerator (admin only)."""
    def build(o: Objects) -> dict:
        from survey_app.models import Unit, User

        user = db.session.scalar(select(User).where(User.username == username))
        return {"unit": db.session.get(Unit, o.unit_id).code, "enumerator": str(user.id),
                "count": "1"}

    return build


@dataclass(frozen=True)
class RouteSpec:
    """How a route is aimed at B's objects and what a role scoped to A may get from it.

    Without a reason in `own_units_page` / `analysts`, every role scoped to A gets 403 or 404.
    """

    forms: tuple[Form, ...] = (lambda o: {},)  # POST bodies, each naming B's objects
    query: Callable[[Objects], dict] = lambda o: {}
    assignment: str = "assignment_id"  # which of B's assignments `assignment_id` means
    job: str = "print_job_id"  # which of B's jobs `job_id` means
    # Why an uploader or enumerator may get a 200 page when the campaign is shared with its
    # unit (or the route names no campaign): the page is filtered to the user's own units.
    own_units_page: str = ""
    # Why analysts may use it for any campaign (they are not unit-scoped, `unit_scope` None).
    analysts: str = ""
    # Why a 422 (form validation) counts as a refusal of a POST here.
    invalid_form: str = ""


ANALYST_SCORES = "analysts work on every campaign's scores; nothing here names a person"

ROUTES: dict[str, RouteSpec] = {
    "admin.index": RouteSpec(
        own_units_page="lists only campaigns rating the user's units",
        analysts="analysts see every campaign"),
    "admin.campaign": RouteSpec(
        forms=(lambda o: {"status": "fielding"},),
        own_units_page="strata of the user's units only; status change is admin-only",
        analysts="campaign facts and strata counts, no person"),
    "admin.job": RouteSpec(),
    "admin.units": RouteSpec(query=lambda o: {"parent": o.unit_id}),
    "admin.users": RouteSpec(),
    "analysis.index": RouteSpec(analysts=ANALYST_SCORES),
    "analysis.scoreboard": RouteSpec(analysts=ANALYST_SCORES),
    "analysis.unit": RouteSpec(analysts=ANALYST_SCORES),
    "analysis.quality": RouteSpec(query=lambda o: {"all": "1"}, analysts=ANALYST_SCORES),
    "analysis.quality_check": RouteSpec(analysts=ANALYST_SCORES),
    "analysis.exclusion": RouteSpec(
        forms=(lambda o: {"action": "exclude", "reason": "thử quyền"},),
        analysts="analysts exclude responses of any campaign (audited)"),
    "analysis.export_scores": RouteSpec(analysts=ANALYST_SCORES),
    "analysis.export_microdata": RouteSpec(
        forms=(lambda o: {"format": "csv"},),
        analysts="anonymised microdata is the analysts' product"),
    "analysis.download": RouteSpec(job="export_job_id",
                                   analysts="anonymised exports of any campaign"),
    "analysis.freeze": RouteSpec(),
    "api.campaigns": RouteSpec(analysts=ANALYST_SCORES),
    "api.scores": RouteSpec(analysts=ANALYST_SCORES),
    "api.frozen_scores": RouteSpec(analysts=ANALYST_SCORES),
    "draws.draw": RouteSpec(forms=(lambda o: {"public_value": "thử", "force": "y"},)),
    "draws.protocol": RouteSpec(analysts="the sampling protocol is public to auditors: seeds, "
                                         "digests and counts, no person"),
    "draws.export": RouteSpec(),
    "fieldwork.overview": RouteSpec(
        own_units_page="response rates of the user's units only",
        analysts="response rates per unit, no person"),
    "fieldwork.assignments": RouteSpec(query=lambda o: {"unit": o.unit_id},
                                       own_units_page="assignments of the user's units only"),
    "fieldwork.entry_lookup": RouteSpec(
        forms=(lambda o: {"code": o.serial}, lambda o: {"code": o.short_code}),
        own_units_page="the GET is an empty lookup form; the POST must refuse B's forms"),
    "fieldwork.set_outcome_view": RouteSpec(forms=(lambda o: {"outcome": "refused"},)),
    "fieldwork.handout": RouteSpec(forms=(_handout_to("dieutra-b"),)),
    "fieldwork.entry": RouteSpec(forms=(_keyed(CITIZEN),)),
    "fieldwork.resolve": RouteSpec(forms=(_keyed(SERVANT),), assignment="paper_assignment_id"),
    "frames.index": RouteSpec(
        forms=(
            lambda o: {"unit": str(o.unit_id), "group": CITIZEN.value,
                       "file": (io.BytesIO(_upload_csv("Z", o.key)), "ds.csv")},
            lambda o: {"unit": "OWN", "group": CITIZEN.value, "replaces": str(o.batch_id),
                       "file": (io.BytesIO(_upload_csv("Y", o.key)), "ds.csv")},
        ),
        own_units_page="batches of the user's units only",
        invalid_form="the unit list offers the user's own units only: B's id fails validation "
                     "before anything is read or stored"),
    "frames.batch": RouteSpec(),
    "frames.cancel": RouteSpec(),
    "frames.confirm": RouteSpec(),
    "frames.issues": RouteSpec(),
    "frames.withdraw": RouteSpec(),
    "printouts.index": RouteSpec(own_units_page="print counts of the user's units only"),
    "printouts.start": RouteSpec(
        forms=(lambda o: {"unit_id": str(o.unit_id), "group": CITIZEN.value,
                          "kind": PrintKind.MANIFEST_CSV.value},)),
    "printouts.download": RouteSpec(),
}

PUBLIC = {
    "static": "stylesheets and scripts, no data",
    "auth.index": "redirects to the login page or the user's home",
    "auth.login": "the sign-in form",
    "auth.logout": "signing out touches only the caller's own session",
    "respondent.enter_code": "respondents type the code printed on their form; no sign-in",
    "respondent.by_code": "the form opened by a typed code (token id in the signed session)",
    "respondent.by_token": "the printed link: holding the 128-bit token is the authorisation",
}

PARAMS: dict[str, Callable[[Objects, RouteSpec], object]] = {
    "key": lambda o, s: o.key,
    "unit_id": lambda o, s: o.unit_id,
    "batch_id": lambda o, s: o.batch_id,
    "assignment_id": lambda o, s: getattr(o, s.assignment),
    "response_id": lambda o, s: o.response_id,
    "job_id": lambda o, s: getattr(o, s.job),
    "token": lambda o, s: o.token,
    "fmt": lambda o, s: "csv",
}


@dataclass
class Call:
    """One request aimed at B."""

    endpoint: str
    method: str
    url: str
    data: dict | None
    spec: RouteSpec
    names_campaign_or_unit: bool  # False for routes such as /admin/ that take no parameter

    def __str__(self) -> str:
        shown = {k: v for k, v in (self.data or {}).items() if k not in ("csrf_token", "file")}
        return f"{self.method} {self.url} ({self.endpoint}){' ' + str(shown) if shown else ''}"


def _calls(app, target: Objects, own: Objects | None = None) -> Iterator[Call]:
    """GET and POST of every non-public route, parameters taken from `target` (with `own`
    standing in where a form needs a unit of the caller's own)."""
    adapter = app.url_map.bind("localhost")
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if rule.endpoint in PUBLIC:
            continue
        spec = ROUTES.get(rule.endpoint, RouteSpec())
        missing = set(rule.arguments) - set(PARAMS)
        assert not missing, (f"{rule.rule}: teach PARAMS how to fill {sorted(missing)} with "
                             "unit B's objects")
        assert rule.methods <= {"GET", "HEAD", "OPTIONS", "POST"}, (
            f"{rule.rule}: teach the test to send {sorted(rule.methods)}")
        values = {name: PARAMS[name](target, spec) for name in rule.arguments}
        for method in ("GET", "POST"):
            if method not in rule.methods:
                continue
            query = spec.query(target) if method == "GET" else {}
            url = adapter.build(rule.endpoint, {**values, **query}, method=method)
            if method == "GET":
                yield Call(rule.endpoint, method, url, None, spec, bool(rule.arguments))
                continue
            for form in spec.forms:
                data = form(target)
                if data.get("unit") == "OWN":
                    if own is None:
                        continue
                    data["unit"] = str(own.unit_id)
                yield Call(rule.endpoint, method, url, data, spec, bool(rule.arguments))


# --- observing a request -----------------------------------------------------------------------


def _state(app) -> tuple[dict[str, list[str]], list[str]]:
    """Every committed row (seen from a fresh connection) and every stored file."""
    db.session.rollback()  # what a request left uncommitted dies with it in production
    rows = {}
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            rows[table.name] = sorted(repr(tuple(r)) for r in conn.execute(select(table)))
    root = Path(app.instance_path)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                   if p.is_file() and not p.name.startswith(("test.db", "queue.db")))
    return rows, files


def _changes(before, after) -> list[str]:
    rows_before, files_before = before
    rows_after, files_after = after
    changed = [name for name in rows_before if rows_before[name] != rows_after[name]]
    if files_before != files_after:
        changed.append("files: " + ", ".join(sorted(set(files_after) ^ set(files_before))))
    return changed


def _text(response) -> str:
    """The body as text; JSON re-encoded without \\u escapes so names would show."""
    if response.is_json:
        return json.dumps(response.get_json(), ensure_ascii=False)
    return response.get_data().decode("utf-8-sig", errors="replace")


def _csrf(client, page: str = "/admin/") -> str:
    return csrf_from(client.get(page).get_data(as_text=True))


def _send(client, call: Call, csrf: str):
    if call.method == "GET":
        return client.get(call.url)
    return client.post(call.url, data={**call.data, "csrf_token": csrf})


def _is_login_redirect(response) -> bool:
    return response.status_code == 302 and "/login" in response.headers.get("Location", "")


# --- the tests ---------------------------------------------------------------------------------


def test_every_route_is_classified(app):
    """A new route fails here until it is put in ROUTES (how it is scoped) or PUBLIC (why it
    needs no scope); stale entries fail too."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert not endpoints - ROUTES.keys() - PUBLIC.keys(), "unclassified routes"
    assert not (ROUTES.keys() | PUBLIC.keys()) - endpoints, "classified routes that are gone"
    assert not ROUTES.keys() & PUBLIC.keys()


def test_roles_of_unit_a_get_nothing_of_unit_b(app_ctx, world):
    """Anonymous, uploader, enumerator and analyst of A against every route of B, in B's own
    campaign and in the campaign both units share; the administrator (also attached to A) is
    the control that every URL really names an existing object of B."""
    failures: list[str] = []
    secrets = world.b_secrets
    clients = {role: _web_client(app_ctx, ROLE_USER[role]) for role in SCOPED_ROLES}
    csrf = {role: _csrf(client) for role, client in clients.items()}
    anonymous = app_ctx.test_client()
    csrf[None] = _csrf(anonymous, "/login")
    clients[None] = anonymous
    state = _state(app_ctx)
    requests = 0
    for variant, target in (("foreign", world.foreign), ("shared", world.shared)):
        for role, client in clients.items():
            for call in _calls(app_ctx, target, own=world.own):
                response = _send(client, call, csrf[role])
                requests += 1
                status, body = response.status_code, _text(response)
                who = f"{role.value if role else 'anonymous'} [{variant}] {call} → {status}"
                allowed_change = False
                if role is None:
                    ok = _is_login_redirect(response) or (
                        call.url.startswith("/api/") and status == 401)
                elif status in REFUSED:
                    ok = True
                elif role is Role.ANALYST and call.spec.analysts:
                    ok = status < 400
                    allowed_change = call.method == "POST"
                elif (role is not Role.ANALYST and call.spec.own_units_page
                      and call.method == "GET"
                      and (variant == "shared" or not call.names_campaign_or_unit)):
                    ok = status == 200
                elif call.method == "POST" and call.spec.invalid_form and status == 422:
                    ok = True
                else:
                    ok = False
                if not ok:
                    failures.append(f"not refused: {who}")
                forbidden = world.identities if role is Role.ANALYST else secrets
                leaked = sorted(s for s in forbidden if s in body)
                if leaked:
                    failures.append(f"leaks {leaked[:3]}: {who}")
                after = _state(app_ctx)
                changed = _changes(state, after)
                if changed and not allowed_change:
                    failures.append(f"changed {changed}: {who}")
                state = after
    assert requests > 250
    assert not failures, "\n".join(failures)

    # Control: the administrator reaches every one of B's objects (a 404 above is a refusal,
    # not a wrong id). GETs first, then the POSTs, which may change B's data.
    admin = _web_client(app_ctx, ROLE_USER[Role.ADMIN])
    token = _csrf(admin)
    calls = sorted(_calls(app_ctx, world.foreign),
                   key=lambda c: (c.method, c.endpoint == "draws.draw"))  # the redraw last
    seen: set[str] = set()
    for call in calls:
        response = _send(admin, call, token)
        if call.method == "GET":
            assert response.status_code < 400, f"admin {call} → {response.status_code}"
            body = _text(response)
            seen |= {s for s in world.foreign.secrets if s in body}
        else:
            assert response.status_code not in REFUSED, f"admin {call} → {response.status_code}"
    # ... and the strings searched for above do show where a page may show them.
    b = world.foreign
    assert {b.unit_name, b.serial, f"ds-{B}-{FOREIGN}.csv"} <= seen
    assert b.answers & seen  # the two keyings, on the resolve page
    for prefix in ("Người Thử", "Xóm Kín", "Người Tải Lên", "+84", "09"):
        assert any(s.startswith(prefix) for s in seen), prefix


def test_uploader_reaches_no_answer_score_or_microdata_even_of_its_unit(app_ctx, world):
    """An uploader's routes are its lists (and the campaign pages and its own jobs); everything
    about forms, answers, scores, microdata and samples is refused, for its own unit too."""
    own_routes = {"admin.index", "admin.campaign", "admin.job"} | {
        e for e in ROUTES if e.startswith("frames.")}
    client = _web_client(app_ctx, ROLE_USER[Role.UPLOADER])
    csrf = _csrf(client)
    state = _state(app_ctx)
    refused, failures = set(), []
    for call in _calls(app_ctx, world.own, own=world.own):
        if call.endpoint in own_routes:
            continue
        response = _send(client, call, csrf)
        if response.status_code != 403:
            failures.append(f"{call} → {response.status_code}")
        for leaked in (s for s in world.own.secrets if s in _text(response)):
            failures.append(f"{call} leaks {leaked}")
        refused.add(call.endpoint.split(".")[0])
        after = _state(app_ctx)
        if _changes(state, after):
            failures.append(f"{call} changed {_changes(state, after)}")
        state = after
    assert not failures, "\n".join(failures)
    assert {"analysis", "api", "fieldwork", "draws", "printouts"} <= refused


def test_enumerator_cannot_read_another_enumerators_keying_or_form(app_ctx, world):
    """Two enumerators of A: the second never sees what the first keyed (blind double entry),
    and a form handed to the first is closed to the second."""
    first = _web_client(app_ctx, "dieutra-a")
    second = _web_client(app_ctx, "dieutra-a2")
    own = world.own
    servants = db.session.scalars(select(Assignment).where(
        Assignment.campaign_id == own.campaign_id, Assignment.unit_id == own.unit_id,
        Assignment.group == SERVANT, Assignment.active,
        Assignment.id != own.paper_assignment_id).order_by(Assignment.draw_order)).all()
    blank = servants[0]
    campaign = db.session.get(Campaign, own.campaign_id)
    campaign.double_entry = True
    handed = db.session.get(Assignment, own.assignment_id)
    handed.enumerator_id = db.session.scalar(select(User.id).where(User.username == "dieutra-a"))
    blank_id, handed_serial, handed_name = blank.id, handed.serial, handed.entry.name
    db.session.commit()

    def key_in(client, assignment_id, text, code):
        form = {"k2": text, "csrf_token": _csrf(client, f"/fieldwork/entry/{assignment_id}")}
        form |= {k: code for k in _keyed(SERVANT)(own) if k != "k2"}
        r = client.post(f"/fieldwork/entry/{assignment_id}", data=form)
        assert r.status_code == 302, r.get_data(as_text=True)
        return client.get(r.headers["Location"]).get_data(as_text=True)

    mine = f"Ghi chép của người nhập thứ nhất {SHARED}"
    key_in(first, blank_id, mine, "1")
    private = own.answers | {mine}
    failures = []
    for assignment in (blank_id, own.paper_assignment_id):
        target = replace(own, assignment_id=assignment, paper_assignment_id=assignment)
        for call in _calls(app_ctx, target, own=own):
            if call.method != "GET":
                continue
            body = _text(second.get(call.url))
            failures += [f"{call} shows {s!r}" for s in private if s in body]
    assert not failures, "\n".join(failures)
    page = key_in(second, blank_id, "Ghi chép của người nhập thứ hai", "2")
    assert "khác nhau" in page and mine not in page
    admin = _web_client(app_ctx, ROLE_USER[Role.ADMIN])
    assert mine in admin.get(f"/fieldwork/entry/{blank_id}/resolve").get_data(as_text=True)

    # A form handed to the first enumerator: the second can neither open, key, nor mark it.
    csrf = _csrf(second)
    state = _state(app_ctx)
    assert second.get(f"/fieldwork/entry/{own.assignment_id}").status_code == 404
    assert second.post(f"/fieldwork/entry/{own.assignment_id}",
                       data={"csrf_token": csrf, **_keyed(CITIZEN)(own)}).status_code == 404
    assert second.post(f"/fieldwork/assignments/{own.assignment_id}/outcome",
                       data={"csrf_token": csrf, "outcome": "refused"}).status_code == 404
    for code in (own.serial, own.short_code):
        assert second.post(f"/fieldwork/{SHARED}/entry",
                           data={"csrf_token": csrf, "code": code}).status_code == 404
    assert handed_serial not in second.get(f"/fieldwork/{SHARED}/assignments").get_data(True)
    assert handed_serial in first.get(f"/fieldwork/{SHARED}/assignments").get_data(True)
    assert not _changes(state, _state(app_ctx))

    # Printing for the unit leaves the handed form out (its printed link keeps working), and
    # the first enumerator's print files are his.
    assert second.get(f"/print/{SHARED}/jobs/{own.print_job_id}/file").status_code == 404
    for kind in (PrintKind.FORMS, PrintKind.MANIFEST_CSV):
        r = second.post(f"/print/{SHARED}", data={
            "csrf_token": csrf, "unit_id": own.unit_id, "group": CITIZEN.value,
            "kind": kind.value})
        assert r.status_code == 302 and "/admin/jobs/" in r.headers["Location"]
        job_page = second.get(r.headers["Location"]).get_data(as_text=True)
        link = re.search(r'href="(/print/[^"]+/file)"', job_page).group(1)
        printed = second.get(link)
        assert printed.status_code == 200
        assert first.get(link).status_code == 404
    manifest = printed.get_data().decode("utf-8-sig")
    assert handed_serial not in manifest and handed_name not in manifest
    assert find_by_token(own.token) is not None  # not revoked by the second one's forms

    # The sampled-list export (names, phones) likewise leaves the handed form out.
    export = f"/draws/{SHARED}/units/{own.unit_id}/sample.csv"
    sampled = second.get(export)
    assert sampled.status_code == 200

    def serials(body: bytes) -> set[str]:
        return {row[0] for row in csv.reader(io.StringIO(body.decode("utf-8-sig")))}

    assert handed_serial not in serials(sampled.get_data())
    assert handed_serial in serials(first.get(export).get_data())


def test_analyst_never_gets_names_or_phones(app_ctx, world):
    """Every GET (and the microdata export) with A's and B's objects: scores and rates, never a
    name, phone, address, serial, link or code."""
    client = _web_client(app_ctx, ROLE_USER[Role.ANALYST])
    csrf = _csrf(client)
    served, failures = set(), []
    for target in (world.own, world.shared, world.foreign):
        for call in _calls(app_ctx, target, own=world.own):
            if call.method == "POST" and call.endpoint != "analysis.export_microdata":
                continue
            response = _send(client, call, csrf)
            body = _text(response)
            if response.status_code == 200:
                served.add(call.endpoint)
            failures += [f"{call} → {response.status_code} shows {s!r}"
                         for s in world.identities if s in body]
    assert not failures, "\n".join(failures)
    assert {"analysis.scoreboard", "analysis.unit", "analysis.quality", "analysis.download",
            "analysis.export_microdata", "api.scores", "fieldwork.overview",
            "draws.protocol"} <= served
