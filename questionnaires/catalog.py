"""The questionnaires and plans shipped with the product (questionnaires/data and /plans).

Questionnaire files are named `<key>@<version>.toml` and plan files `<key>.toml`; both are loaded
once and cached. A version that a campaign has started using is immutable: the app records its
digest when the campaign starts and calls `check_immutable` before relying on it again.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from questionnaires.errors import (
    ImmutableVersionError,
    PlanError,
    Problem,
    QuestionnaireError,
)
from questionnaires.loader import load_plan, load_questionnaire
from questionnaires.model import Plan, Questionnaire

DATA_DIR = Path(__file__).resolve().parent / "data"
PLANS_DIR = Path(__file__).resolve().parent / "plans"


@cache
def _load_questionnaires() -> tuple[Questionnaire, ...]:
    found: list[Questionnaire] = []
    for path in sorted(DATA_DIR.glob("*.toml")):
        questionnaire = load_questionnaire(path)
        if path.stem != questionnaire.ref:
            problem = Problem("tệp", f"Tên tệp phải là «{questionnaire.ref}.toml».")
            raise QuestionnaireError([problem], path.name)
        found.append(questionnaire)
    return tuple(found)


def shipped_questionnaires() -> dict[str, Questionnaire]:
    """Every shipped questionnaire version, keyed by ref `key@version` (a fresh dict per call).

    Raises QuestionnaireError when a shipped file is invalid.
    """
    return {q.ref: q for q in _load_questionnaires()}


def get_questionnaire(ref: str) -> Questionnaire:
    """The shipped questionnaire with ref `key@version`; KeyError when there is none."""
    for questionnaire in _load_questionnaires():
        if questionnaire.ref == ref:
            return questionnaire
    raise KeyError(ref)


def questionnaire_path(ref: str) -> Path:
    """Path of the shipped file of a questionnaire ref; KeyError when there is none."""
    path = DATA_DIR / f"{ref}.toml"
    if "/" in ref or not path.is_file():
        raise KeyError(ref)
    return path


def plan_path(name: str) -> Path:
    """Path of the shipped plan `name` (file stem, e.g. "quang-binh-2022"); KeyError if absent."""
    path = PLANS_DIR / f"{name}.toml"
    if "/" in name or "\\" in name or not path.is_file():
        raise KeyError(name)
    return path


@cache
def _load_plans() -> tuple[Plan, ...]:
    catalog = shipped_questionnaires()
    found: list[Plan] = []
    for path in sorted(PLANS_DIR.glob("*.toml")):
        plan = load_plan(path, catalog)
        if path.stem != plan.key:
            raise PlanError([Problem("key", f"Tên tệp phải là «{plan.key}.toml».")], path.name)
        found.append(plan)
    return tuple(found)


def shipped_plans() -> dict[str, Plan]:
    """Every shipped plan keyed by its key (= file stem); raises PlanError on an invalid file."""
    return {p.key: p for p in _load_plans()}


def check_immutable(
    ref: str, digest_in_use: str, current: Questionnaire | None = None
) -> Questionnaire:
    """Return the questionnaire `ref` after checking it is the version a campaign started with.

    `digest_in_use` is the digest recorded when the campaign started; `current` is the version
    available now (default: the shipped one). Raises ImmutableVersionError when the version has
    disappeared or its content changed: a version in use must never be edited, only superseded
    by a new version.
    """
    if current is None:
        try:
            current = get_questionnaire(ref)
        except KeyError:
            problem = Problem(ref, "Phiên bản bảng hỏi đang được sử dụng đã bị xóa khỏi danh mục.")
            raise ImmutableVersionError([problem], ref) from None
    if current.ref != ref:
        problem = Problem(ref, f"Đang so sánh với một bảng hỏi khác («{current.ref}»).")
        raise ImmutableVersionError([problem], ref)
    if current.digest != digest_in_use:
        problem = Problem(
            ref,
            "Nội dung phiên bản đang được sử dụng đã bị sửa (mã băm "
            f"{current.digest[:12]}… khác {digest_in_use[:12]}…); hãy khôi phục tệp cũ "
            "và tạo phiên bản mới cho nội dung sửa đổi.",
        )
        raise ImmutableVersionError([problem], ref)
    return current


def clear_cache() -> None:
    """Forget the loaded files (tests and a reload after deploying new versions)."""
    _load_questionnaires.cache_clear()
    _load_plans.cache_clear()
