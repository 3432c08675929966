"""Plain, immutable data describing questionnaires, scoring rules and campaign plans.

This is the contract shared by every other package: the loader builds these objects from TOML,
the printer lays them out, the web form renders them and the scorer applies their rules.
Nothing here imports Flask or the database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


class RespondentGroup(StrEnum):
    """Who answers a form (the five groups of the provincial plans)."""

    HDND_DELEGATE = "hdnd_delegate"
    LEADER = "leader"
    CIVIL_SERVANT = "civil_servant"
    CITIZEN = "citizen"
    BUSINESS = "business"

    @property
    def label(self) -> str:
        """Vietnamese name of the group."""
        return GROUP_LABELS[self]


GROUP_LABELS: dict[RespondentGroup, str] = {
    RespondentGroup.HDND_DELEGATE: "Đại biểu HĐND",
    RespondentGroup.LEADER: "Lãnh đạo",
    RespondentGroup.CIVIL_SERVANT: "Công chức, viên chức",
    RespondentGroup.CITIZEN: "Người dân",
    RespondentGroup.BUSINESS: "Doanh nghiệp, tổ chức",
}


class Mode(StrEnum):
    """How a form reaches its respondent and comes back."""

    POSTAL = "postal"  # post office delivers a pre-addressed form with a return envelope
    ENUMERATOR = "enumerator"  # face to face on paper, keyed in later
    PHONE = "phone"  # self-completion on a phone through the QR code or an SMS/Zalo link

    @property
    def label(self) -> str:
        """Vietnamese name of the mode."""
        return MODE_LABELS[self]


MODE_LABELS: dict[Mode, str] = {
    Mode.POSTAL: "Bưu điện",
    Mode.ENUMERATOR: "Điều tra viên",
    Mode.PHONE: "Điện thoại (QR/đường dẫn)",
}


class QuestionKind(StrEnum):
    """The kinds of question a questionnaire may hold."""

    SINGLE = "single"  # one option
    MULTI = "multi"  # several options
    SATISFACTION = "satisfaction5"  # the 5-level satisfaction scale
    YES_NO = "yes_no_dk"  # Có / Không / Không biết
    RATING = "rating"  # 1..N rating
    TEXT = "text"  # short free text
    NUMBER = "number"  # a number

    @property
    def has_options(self) -> bool:
        """True when answers are option codes."""
        return self not in (QuestionKind.TEXT, QuestionKind.NUMBER)


class ConditionOp(StrEnum):
    """Operators of a skip condition."""

    IN = "in"  # the other question's answer is one of `values`
    NOT_IN = "not_in"
    ANSWERED = "answered"


class ScoringMethod(StrEnum):
    """How a criterion turns answers into a percentage."""

    SHARE_SATISFIED = "share_satisfied"  # positive answers / valid answers
    MEAN = "mean"  # mean of option values, rescaled to 0..100


class ConversionMethod(StrEnum):
    """How the overall percentage becomes the points allotted to the survey."""

    LINEAR = "linear"  # points = overall% / 100 × points allotted
    BANDS = "bands"  # points from the first band whose lower bound the overall% reaches


@dataclass(frozen=True, slots=True)
class Option:
    """One answer option; `value` is its coefficient (None for non-scored options)."""

    code: str
    label: str
    value: float | None = None
    dont_know: bool = False  # "Không biết / không trả lời": excluded from denominators


@dataclass(frozen=True, slots=True)
class Condition:
    """Show a question only when another question's answer satisfies this."""

    question: str
    op: ConditionOp
    values: tuple[str, ...] = ()

    def holds(self, answers: dict[str, object]) -> bool:
        """Evaluate against answers (option codes, lists of codes for MULTI, or text)."""
        given = answers.get(self.question)
        if self.op is ConditionOp.ANSWERED:
            return given not in (None, "", [], ())
        codes = set(given) if isinstance(given, list | tuple | set) else {given}
        hit = bool(codes & set(self.values))
        return hit if self.op is ConditionOp.IN else not hit


@dataclass(frozen=True, slots=True)
class Question:
    """One question of a section."""

    id: str
    text: str
    kind: QuestionKind
    options: tuple[Option, ...] = ()
    required: bool = False
    show_if: Condition | None = None
    help: str = ""
    min_value: float | None = None  # NUMBER / RATING bounds
    max_value: float | None = None
    max_length: int = 500  # TEXT

    def option(self, code: str) -> Option | None:
        """The option with this code, or None."""
        for opt in self.options:
            if opt.code == code:
                return opt
        return None

    def is_shown(self, answers: dict[str, object]) -> bool:
        """Whether skip logic shows this question given the answers so far."""
        return self.show_if is None or self.show_if.holds(answers)


@dataclass(frozen=True, slots=True)
class Section:
    """A titled group of questions (one screen of the mobile form)."""

    id: str
    title: str
    questions: tuple[Question, ...]
    intro: str = ""


@dataclass(frozen=True, slots=True)
class Criterion:
    """A scored criterion measured by one or more questions."""

    id: str
    title: str
    questions: tuple[str, ...]
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Element:
    """A group of criteria (e.g. one of the five SIPAS elements)."""

    id: str
    title: str
    criteria: tuple[Criterion, ...]
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class ScoringRules:
    """How answers become criterion, element and overall percentages (0..100)."""

    method: ScoringMethod
    elements: tuple[Element, ...]
    positive_codes: tuple[str, ...] = ()  # SHARE_SATISFIED: codes counted as satisfied
    scale_min: float = 1.0  # MEAN: value mapped to 0 %
    scale_max: float = 5.0  # MEAN: value mapped to 100 %
    weighted_elements: bool = False  # False: overall = plain mean of elements


@dataclass(frozen=True, slots=True)
class Questionnaire:
    """One immutable version of a questionnaire."""

    key: str
    version: str
    title: str
    group: RespondentGroup
    sections: tuple[Section, ...]
    intro: str = ""  # cover-letter text printed before the questions
    contact: str = ""  # who to call
    scoring: ScoringRules | None = None
    digest: str = ""  # SHA-256 of the canonical source text

    @property
    def ref(self) -> str:
        """`key@version`, the identifier campaigns and responses store."""
        return f"{self.key}@{self.version}"

    def questions(self) -> list[Question]:
        """All questions in order."""
        return [q for s in self.sections for q in s.questions]

    def question(self, qid: str) -> Question:
        """The question with this id (KeyError when absent)."""
        for q in self.questions():
            if q.id == qid:
                return q
        raise KeyError(qid)


@dataclass(frozen=True, slots=True)
class Band:
    """Conversion band: an overall % at or above `min_percent` earns `points`."""

    min_percent: float
    points: float


class FrameScope(StrEnum):
    """Where a group's list comes from."""

    PER_UNIT = "per_unit"  # one list per rated unit (e.g. its one-stop-shop transactions)
    SHARED = "shared"  # one list for the campaign, drawn separately for each rated unit


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """One respondent group of a campaign plan."""

    group: RespondentGroup
    questionnaire: str  # `key@version`
    mode: Mode
    quota: int  # forms per rated unit
    reserves: int = 0
    weight: float = 1.0  # weight of this group when combining groups into a unit score
    frame_scope: FrameScope = FrameScope.PER_UNIT
    rated_levels: tuple[str, ...] = ()  # unit levels this group rates; empty = all rated units


@dataclass(frozen=True, slots=True)
class UnitRef:
    """A rated unit named by a plan (looked up by code; name/level used to create it)."""

    code: str
    name: str = ""
    level: str = ""
    parent: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    """A campaign plan, as written by a province (see questionnaires/plans/)."""

    key: str
    name: str
    year: int
    period_start: dt.date
    period_end: dt.date
    groups: tuple[GroupPlan, ...]
    units: tuple[UnitRef, ...] = ()
    survey_points: float = 30.0
    conversion: ConversionMethod = ConversionMethod.LINEAR
    bands: tuple[Band, ...] = ()
    seed: int | None = None
    description: str = ""
    min_n: int = 10  # flag units with fewer valid responses
    min_response_rate: float = 0.5  # flag units below this response rate
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def total_forms(self) -> int:
        """Forms to field, reserves excluded (e.g. 690 for the Quảng Bình plan)."""
        return sum(g.quota for g in self.groups) * max(len(self.units), 1)
