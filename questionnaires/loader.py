"""Load and validate questionnaire and campaign-plan files (TOML), see docs/questionnaire-format.md.

The loader never stops at the first mistake: it walks the whole file, records every problem with
its location (`sections[1].questions[3].show_if.question`) and a Vietnamese message, and raises
one `QuestionnaireError` / `PlanError` carrying them all. Indices in locations count from 0, as in
the order the entries appear in the file.

A `source` is a `Path` (read from disk), `bytes` (the file's content) or `str` (TOML text).
The canonical form of a source is its UTF-8 text without BOM, with `\\n` line ends and NFC
normalisation; the questionnaire digest is the SHA-256 of those bytes, so re-saving a file with
Windows line ends or decomposed accents does not change its identity, but any edit of content does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import re
import tomllib
import unicodedata
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from questionnaires.errors import PlanError, Problem, QuestionnaireError
from questionnaires.model import (
    Band,
    Condition,
    ConditionOp,
    ConversionMethod,
    Criterion,
    Element,
    FrameScope,
    GroupPlan,
    Mode,
    Option,
    Plan,
    Question,
    QuestionKind,
    Questionnaire,
    RespondentGroup,
    ScoringMethod,
    ScoringRules,
    Section,
    UnitRef,
)

Source = str | bytes | os.PathLike[str]
E = TypeVar("E", bound=StrEnum)

# --- standard option sets -------------------------------------------------------------------

SATISFACTION_LABELS: tuple[str, ...] = (
    "Rất không hài lòng",
    "Không hài lòng",
    "Bình thường",
    "Hài lòng",
    "Rất hài lòng",
)
DONT_KNOW_CODE = "9"
DONT_KNOW_LABEL = "Không biết / không trả lời"
RATING_MAX_OPTIONS = 11  # a 0..10 scale is the widest that fits a printed row


def satisfaction_options(dont_know: bool = True) -> tuple[Option, ...]:
    """The 5-level satisfaction scale (codes "1".."5", values 1..5), plus code "9" Không biết."""
    opts = [Option(str(i), label, float(i)) for i, label in enumerate(SATISFACTION_LABELS, 1)]
    if dont_know:
        opts.append(Option(DONT_KNOW_CODE, DONT_KNOW_LABEL, None, dont_know=True))
    return tuple(opts)


def yes_no_options(dont_know: bool = True) -> tuple[Option, ...]:
    """Có (1) / Không (0) / Không biết (excluded from denominators)."""
    opts = [Option("co", "Có", 1.0), Option("khong", "Không", 0.0)]
    if dont_know:
        opts.append(Option("khong_biet", "Không biết", None, dont_know=True))
    return tuple(opts)


def rating_options(low: int = 1, high: int = 5, dont_know: bool = False) -> tuple[Option, ...]:
    """A `low`..`high` rating: code and value are the number itself."""
    opts = [Option(str(i), str(i), float(i)) for i in range(low, high + 1)]
    if dont_know:
        opts.append(Option(DONT_KNOW_CODE, DONT_KNOW_LABEL, None, dont_know=True))
    return tuple(opts)


# --- canonical source and digest ---------------------------------------------------------------


def canonical_source(source: Source) -> bytes:
    """The canonical bytes of a source (UTF-8, no BOM, `\\n` line ends, NFC).

    Raises OSError when a path cannot be read and UnicodeDecodeError when bytes are not UTF-8.
    """
    if isinstance(source, str):
        text = source.removeprefix("\ufeff")
    else:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
        text = raw.decode("utf-8-sig")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", text).encode("utf-8")


def source_digest(source: Source) -> str:
    """SHA-256 hex digest of the canonical bytes of a source."""
    return hashlib.sha256(canonical_source(source)).hexdigest()


def _source_name(source: Source) -> str:
    return Path(source).name if isinstance(source, os.PathLike) else ""


# Translations of the tomllib messages a hand-edited file most often triggers.
_TOML_MESSAGES = {
    "Invalid value": "giá trị không hợp lệ (chuỗi phải đặt trong ngoặc kép?)",
    "Cannot overwrite a value": "khóa bị khai báo hai lần",
    "Expected '=' after a key in a key/value pair": "thiếu dấu '=' sau tên khóa",
    "Unterminated string": "chuỗi chưa đóng ngoặc kép",
    "Invalid statement": "câu lệnh không hợp lệ",
    "Unclosed array": "danh sách chưa đóng ngoặc vuông",
    "Unclosed inline table": "bảng chưa đóng ngoặc nhọn",
    "Expected newline or end of document after a statement": "thiếu xuống dòng sau một khai báo",
    "Invalid initial character for a key part": "tên khóa bắt đầu bằng ký tự không hợp lệ",
    "Illegal character": "ký tự không hợp lệ",
}


def _parse(source: Source, problems: list[Problem]) -> tuple[dict[str, Any] | None, bytes]:
    """Read and parse a source; on failure record a problem and return (None, b"")."""
    if isinstance(source, str) and "\n" not in source and source.strip().endswith(".toml"):
        # A str is TOML text; a lone file name here is a caller mistake worth naming.
        problems.append(
            Problem(
                "tệp",
                "Nhận được một tên tệp thay vì nội dung TOML; hãy truyền Path(...) để đọc tệp.",
            )
        )
        return None, b""
    try:
        canon = canonical_source(source)
    except UnicodeDecodeError as exc:
        problems.append(Problem("tệp", f"Tệp không phải văn bản UTF-8 hợp lệ (byte {exc.start})."))
        return None, b""
    except OSError as exc:
        problems.append(Problem("tệp", f"Không đọc được tệp: {exc.strerror or exc}."))
        return None, b""
    try:
        return tomllib.loads(canon.decode("utf-8")), canon
    except tomllib.TOMLDecodeError as exc:
        text = str(exc)
        match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", text)
        reason = text[: match.start()] if match else text
        where = f"dòng {match.group(1)}, cột {match.group(2)}" if match else "tệp"
        vi = _TOML_MESSAGES.get(reason)
        message = f"Lỗi cú pháp TOML: {vi} ({reason})." if vi else f"Lỗi cú pháp TOML: {reason}."
        problems.append(Problem(where, message))
        return None, b""


# --- a small typed reader that records problems instead of raising ---------------------------

_KEY_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_VERSION_RE = re.compile(r"^[0-9A-Za-z]+(?:[.-][0-9A-Za-z]+)*$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_REF_RE = re.compile(r"^([a-z0-9]+(?:-[a-z0-9]+)*)@([0-9A-Za-z]+(?:[.-][0-9A-Za-z]+)*)$")
_ID_HINT = "chỉ gồm chữ cái không dấu, chữ số, '_', '.', '-' (tối đa 64 ký tự)"
_MISSING = object()


def _at(loc: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{loc}[{key}]"
    return f"{loc}.{key}" if loc else key


def _fmt(value: float) -> str:
    return f"{value:g}"


class _Reader:
    """Typed access to parsed TOML that records a Problem for every mismatch."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, loc: str, message: str) -> None:
        self.problems.append(Problem(loc, message))

    def known_keys(self, table: Mapping[str, Any], allowed: Sequence[str], loc: str) -> None:
        """Flag unknown keys: a misspelt `requried = true` must not be silently ignored."""
        for key in table:
            if key not in allowed:
                self.add(
                    _at(loc, key),
                    f"Khóa «{key}» không được hỗ trợ; các khóa hợp lệ: {', '.join(allowed)}.",
                )

    def get(self, table: Mapping[str, Any], key: str, loc: str, required: bool) -> Any:
        value = table.get(key, _MISSING)
        if value is _MISSING and required:
            self.add(_at(loc, key), f"Thiếu trường bắt buộc «{key}».")
        return value

    def string(
        self,
        table: Mapping[str, Any],
        key: str,
        loc: str,
        *,
        required: bool = False,
        default: str = "",
        pattern: re.Pattern[str] | None = None,
        hint: str = "",
    ) -> str | None:
        """A string (stripped). None when missing-but-required or invalid."""
        value = self.get(table, key, loc, required)
        if value is _MISSING:
            return None if required else default
        where = _at(loc, key)
        if not isinstance(value, str):
            self.add(where, "Phải là chuỗi ký tự (đặt trong ngoặc kép).")
            return None
        value = value.strip()
        if required and not value:
            self.add(where, "Không được để trống.")
            return None
        if pattern is not None and value and not pattern.match(value):
            self.add(where, f"Giá trị «{value}» không hợp lệ: {hint}.")
            return None
        return value

    def boolean(self, table: Mapping[str, Any], key: str, loc: str, default: bool) -> bool:
        value = self.get(table, key, loc, False)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.add(_at(loc, key), "Phải là true hoặc false.")
            return default
        return value

    def number(
        self,
        table: Mapping[str, Any],
        key: str,
        loc: str,
        *,
        default: float | None = None,
        required: bool = False,
        positive: bool = False,
        minimum: float | None = None,
        maximum: float | None = None,
        integer: bool = False,
    ) -> float | None:
        """A number within bounds; `default` when absent, None when invalid."""
        value = self.get(table, key, loc, required)
        if value is _MISSING:
            return default
        where = _at(loc, key)
        if integer:
            if isinstance(value, bool) or not isinstance(value, int):
                self.add(where, "Phải là số nguyên.")
                return None
        elif (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            self.add(where, "Phải là một số.")
            return None
        if positive and value <= 0:
            self.add(where, f"Phải lớn hơn 0 (đang là {_fmt(value)}).")
            return None
        if minimum is not None and value < minimum:
            self.add(where, f"Không được nhỏ hơn {_fmt(minimum)} (đang là {_fmt(value)}).")
            return None
        if maximum is not None and value > maximum:
            self.add(where, f"Không được lớn hơn {_fmt(maximum)} (đang là {_fmt(value)}).")
            return None
        return value

    def enum(
        self,
        table: Mapping[str, Any],
        key: str,
        loc: str,
        cls: type[E],
        *,
        default: E | None = None,
    ) -> E | None:
        required = default is None
        value = self.get(table, key, loc, required)
        if value is _MISSING:
            return default
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(f'"{m.value}"' for m in cls)
            self.add(_at(loc, key), f"Giá trị «{value}» không hợp lệ; chọn một trong: {choices}.")
            return None

    def tables(
        self, table: Mapping[str, Any], key: str, loc: str, *, required: bool, non_empty: bool
    ) -> list[tuple[str, dict[str, Any]]]:
        """An array of tables as (location, table) pairs; bad entries are reported and skipped."""
        value = self.get(table, key, loc, required)
        if value is _MISSING:
            return []
        where = _at(loc, key)
        if not isinstance(value, list):
            self.add(where, f"Phải là danh sách bảng (viết [[{key}]]).")
            return []
        if non_empty and not value:
            self.add(where, "Danh sách không được rỗng.")
        out = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                out.append((_at(where, i), item))
            else:
                self.add(_at(where, i), "Phải là một bảng (các cặp khóa = giá trị).")
        return out

    def strings(
        self,
        table: Mapping[str, Any],
        key: str,
        loc: str,
        *,
        required: bool = False,
        non_empty: bool = False,
    ) -> list[tuple[str, str]] | None:
        """A list of strings as (location, value) pairs; None when absent or not a list."""
        value = self.get(table, key, loc, required)
        if value is _MISSING:
            return None
        where = _at(loc, key)
        if not isinstance(value, list):
            self.add(where, 'Phải là danh sách chuỗi, ví dụ ["a", "b"].')
            return None
        if non_empty and not value:
            self.add(where, "Danh sách không được rỗng.")
        out = []
        for i, item in enumerate(value):
            if isinstance(item, str) and item.strip():
                out.append((_at(where, i), item.strip()))
            else:
                self.add(_at(where, i), "Phải là chuỗi ký tự khác rỗng (đặt trong ngoặc kép).")
        return out

    def unique(self, seen: dict[str, str], value: str | None, loc: str, what: str) -> None:
        """Record `value` at `loc`; report a duplicate with the location of the first use."""
        if value is None:
            return
        if value in seen:
            self.add(loc, f"{what} «{value}» bị trùng (đã dùng tại {seen[value]}).")
        else:
            seen[value] = loc


# --- questionnaires ----------------------------------------------------------------------------

_Q_TOP = ("key", "version", "title", "group", "intro", "contact", "sections", "scoring")
_Q_SECTION = ("id", "title", "intro", "questions")
_Q_QUESTION = (
    "id",
    "text",
    "kind",
    "required",
    "help",
    "options",
    "show_if",
    "min",
    "max",
    "max_length",
    "dont_know",
)
_Q_OPTION = ("code", "label", "value", "dont_know")
_Q_CONDITION = ("question", "op", "values")
_Q_SCORING = (
    "method",
    "positive_codes",
    "scale_min",
    "scale_max",
    "weighted_elements",
    "elements",
)
_Q_ELEMENT = ("id", "title", "weight", "criteria")
_Q_CRITERION = ("id", "title", "weight", "questions")
_DONT_KNOW_KINDS = (QuestionKind.SATISFACTION, QuestionKind.YES_NO, QuestionKind.RATING)


def load_questionnaire(source: Source) -> Questionnaire:
    """Load one questionnaire version from TOML and validate it completely.

    `source` is a Path (file), bytes (file content) or str (TOML text). Returns a Questionnaire
    whose `digest` is the SHA-256 of the canonical source. Raises QuestionnaireError listing
    every problem found, each with its location.
    """
    problems: list[Problem] = []
    data, canon = _parse(source, problems)
    if data is None:
        raise QuestionnaireError(problems, _source_name(source))
    result = _QuestionnaireBuilder().build(data, hashlib.sha256(canon).hexdigest())
    if isinstance(result, list):
        raise QuestionnaireError(result, _source_name(source))
    return result


class _QuestionnaireBuilder(_Reader):
    """Builds a Questionnaire from parsed TOML, collecting problems on the way."""

    def build(self, data: dict[str, Any], digest: str) -> Questionnaire | list[Problem]:
        self.known_keys(data, _Q_TOP, "")
        key = self.string(
            data,
            "key",
            "",
            required=True,
            pattern=_KEY_RE,
            hint="chỉ gồm chữ thường không dấu, chữ số và dấu '-'",
        )
        version = self.string(
            data, "version", "", required=True, pattern=_VERSION_RE, hint="ví dụ 2026.1"
        )
        title = self.string(data, "title", "", required=True)
        group = self.enum(data, "group", "", RespondentGroup)
        intro = self.string(data, "intro", "")
        contact = self.string(data, "contact", "")

        # Locations of every question id, in file order, so conditions can tell "later" from
        # "unknown" and criteria can point at questions anywhere.
        self.question_locs: dict[str, str] = {}
        self.count = 0
        self.position: dict[str, int] = {}  # question id -> index in file order
        self.by_id: dict[str, Question] = {}
        # (location, index, own id, condition) of every parsed show_if, valid question or not
        self.conditions: list[tuple[str, int, str, Condition]] = []
        sections = self._sections(data)
        self._check_conditions()
        scoring = self._scoring(data["scoring"]) if "scoring" in data else None

        if self.problems:
            return self.problems
        assert key and version and title and group is not None  # guaranteed when no problems
        return Questionnaire(
            key=key,
            version=version,
            title=title,
            group=group,
            sections=tuple(sections),
            intro=intro or "",
            contact=contact or "",
            scoring=scoring,
            digest=digest,
        )

    def _sections(self, data: dict[str, Any]) -> list[Section]:
        section_locs: dict[str, str] = {}
        sections = []
        for sloc, raw in self.tables(data, "sections", "", required=True, non_empty=True):
            self.known_keys(raw, _Q_SECTION, sloc)
            sid = self.string(raw, "id", sloc, required=True, pattern=_ID_RE, hint=_ID_HINT)
            self.unique(section_locs, sid, _at(sloc, "id"), "Mã phần")
            title = self.string(raw, "title", sloc, required=True)
            intro = self.string(raw, "intro", sloc)
            questions = []
            for qloc, qraw in self.tables(raw, "questions", sloc, required=True, non_empty=True):
                question = self._question(qraw, qloc)
                if question is not None:
                    questions.append(question)
            if sid and title:
                sections.append(Section(sid, title, tuple(questions), intro or ""))
        return sections

    def _question(self, raw: dict[str, Any], loc: str) -> Question | None:
        self.known_keys(raw, _Q_QUESTION, loc)
        qid = self.string(raw, "id", loc, required=True, pattern=_ID_RE, hint=_ID_HINT)
        own_id, index = qid or "", self.count
        self.count += 1
        if qid is not None:
            if qid in self.question_locs:
                self.add(
                    _at(loc, "id"),
                    f"Mã câu hỏi «{qid}» bị trùng (đã dùng tại {self.question_locs[qid]}).",
                )
                qid = None
            else:
                self.question_locs[qid] = _at(loc, "id")
                self.position[qid] = index
        text = self.string(raw, "text", loc, required=True)
        kind = self.enum(raw, "kind", loc, QuestionKind)
        required = self.boolean(raw, "required", loc, False)
        help_text = self.string(raw, "help", loc)
        options = self._options(raw, loc, kind) if kind is not None else ()
        min_value, max_value = self._bounds(raw, loc, kind)
        max_length = 500
        if "max_length" in raw:
            if kind is QuestionKind.TEXT:
                got = self.number(raw, "max_length", loc, integer=True, minimum=1, maximum=5000)
                max_length = int(got) if got is not None else max_length
            else:
                self.add(_at(loc, "max_length"), 'Chỉ dùng cho câu loại "text".')
        show_if = self._condition(raw["show_if"], _at(loc, "show_if")) if "show_if" in raw else None
        if show_if is not None:
            self.conditions.append((loc, index, own_id, show_if))
        if qid is None or text is None or kind is None or options is None:
            return None
        question = Question(
            id=qid,
            text=text,
            kind=kind,
            options=options,
            required=required,
            show_if=show_if,
            help=help_text or "",
            min_value=min_value,
            max_value=max_value,
            max_length=max_length,
        )
        self.by_id[qid] = question
        return question

    def _bounds(
        self, raw: dict[str, Any], loc: str, kind: QuestionKind | None
    ) -> tuple[float | None, float | None]:
        if kind is QuestionKind.RATING:
            low = self.number(raw, "min", loc, default=1, integer=True)
            high = self.number(raw, "max", loc, default=5, integer=True)
            if low is not None and high is not None:
                if high <= low:
                    self.add(_at(loc, "max"), f"Phải lớn hơn min ({_fmt(low)}).")
                elif high - low + 1 > RATING_MAX_OPTIONS:
                    self.add(
                        _at(loc, "max"), f"Thang điểm quá dài: tối đa {RATING_MAX_OPTIONS} mức."
                    )
            return (
                float(low) if low is not None else None,
                float(high) if high is not None else None,
            )
        if kind is QuestionKind.NUMBER:
            low = self.number(raw, "min", loc)
            high = self.number(raw, "max", loc)
            if low is not None and high is not None and high < low:
                self.add(_at(loc, "max"), f"Không được nhỏ hơn min ({_fmt(low)}).")
            return low, high
        for key in ("min", "max"):
            if key in raw and kind is not None:
                self.add(_at(loc, key), 'Chỉ dùng cho câu loại "rating" hoặc "number".')
        return None, None

    def _options(
        self, raw: dict[str, Any], loc: str, kind: QuestionKind
    ) -> tuple[Option, ...] | None:
        """The options of a question: explicit, or the standard set of its kind."""
        if "dont_know" in raw:
            if kind not in _DONT_KNOW_KINDS:
                self.add(
                    _at(loc, "dont_know"),
                    'Chỉ dùng cho câu loại "satisfaction5", "yes_no_dk" hoặc "rating".',
                )
            elif "options" in raw:
                self.add(
                    _at(loc, "dont_know"),
                    "Không dùng cùng «options»: hãy ghi phương án không biết trong options.",
                )
        dont_know = self.boolean(raw, "dont_know", loc, kind is not QuestionKind.RATING)
        if not kind.has_options:
            if "options" in raw:
                self.add(_at(loc, "options"), f'Câu loại "{kind.value}" không có phương án.')
            return ()
        if "options" not in raw:
            if kind is QuestionKind.SATISFACTION:
                return satisfaction_options(dont_know)
            if kind is QuestionKind.YES_NO:
                return yes_no_options(dont_know)
            if kind is QuestionKind.RATING:
                low = raw.get("min", 1)
                high = raw.get("max", 5)
                ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high))
                if ok and low < high and high - low + 1 <= RATING_MAX_OPTIONS:
                    return rating_options(low, high, dont_know)
                return None  # the bounds problem is reported by _bounds
            self.add(_at(loc, "options"), f'Câu loại "{kind.value}" phải có danh sách options.')
            return None
        entries = self.tables(raw, "options", loc, required=True, non_empty=False)
        if isinstance(raw["options"], list) and len(raw["options"]) < 2:
            self.add(_at(loc, "options"), "Phải có ít nhất 2 phương án.")
        codes: dict[str, str] = {}
        options = []
        ok = isinstance(raw["options"], list)
        for oloc, oraw in entries:
            self.known_keys(oraw, _Q_OPTION, oloc)
            code = self.string(oraw, "code", oloc, required=True, pattern=_ID_RE, hint=_ID_HINT)
            self.unique(codes, code, _at(oloc, "code"), "Mã phương án")
            label = self.string(oraw, "label", oloc, required=True)
            value = self.number(oraw, "value", oloc)
            is_dk = self.boolean(oraw, "dont_know", oloc, False)
            if is_dk and value is not None:
                self.add(
                    _at(oloc, "value"),
                    "Phương án «không biết» không được có giá trị điểm (bị loại khỏi mẫu số).",
                )
            if code is None or label is None or ("value" in oraw and value is None):
                ok = False
                continue
            options.append(Option(code, label, float(value) if value is not None else None, is_dk))
        if len(codes) != len(options):
            ok = False
        return tuple(options) if ok else None

    def _condition(self, raw: Any, loc: str) -> Condition | None:
        """Parse a skip condition's shape; references are checked later by _check_conditions."""
        if not isinstance(raw, dict):
            self.add(loc, 'Phải là bảng, ví dụ { question = "c1", op = "in", values = ["co"] }.')
            return None
        self.known_keys(raw, _Q_CONDITION, loc)
        target = self.string(raw, "question", loc, required=True)
        op = self.enum(raw, "op", loc, ConditionOp, default=ConditionOp.IN)
        values = self.strings(raw, "values", loc)
        if op is ConditionOp.ANSWERED and values:
            self.add(_at(loc, "values"), 'Điều kiện "answered" không dùng danh sách values.')
        if op in (ConditionOp.IN, ConditionOp.NOT_IN) and not values and values is not None:
            self.add(_at(loc, "values"), "Danh sách không được rỗng.")
        if op in (ConditionOp.IN, ConditionOp.NOT_IN) and "values" not in raw:
            self.add(_at(loc, "values"), f'Điều kiện "{op.value}" cần danh sách values.')
        if target is None or op is None or (values is None and "values" in raw):
            return None
        return Condition(target, op, tuple(v for _, v in values or ()))

    def _check_conditions(self) -> None:
        """A condition must refer to an earlier question and to option codes it really has."""
        for loc, index, own_id, cond in self.conditions:
            where = _at(_at(loc, "show_if"), "question")
            target_pos = self.position.get(cond.question)
            if cond.question == own_id:
                self.add(where, f"Câu «{own_id}» không thể phụ thuộc vào chính nó.")
            elif target_pos is None:
                self.add(where, f"Không có câu hỏi «{cond.question}».")
            elif target_pos > index:
                self.add(
                    where,
                    f"Câu «{cond.question}» đứng sau câu «{own_id or '?'}»; điều "
                    "kiện chỉ được dựa vào câu hỏi đứng trước.",
                )
            elif cond.op is not ConditionOp.ANSWERED and cond.question in self.by_id:
                target = self.by_id[cond.question]
                if not target.kind.has_options:
                    self.add(
                        where,
                        f"Câu «{target.id}» không có phương án để so sánh; "
                        'hãy dùng op = "answered".',
                    )
                    continue
                known = {o.code for o in target.options}
                for i, code in enumerate(cond.values):
                    if code not in known:
                        self.add(
                            _at(_at(_at(loc, "show_if"), "values"), i),
                            f"Câu «{target.id}» không có phương án mã «{code}»; "
                            f"các mã: {', '.join(sorted(known))}.",
                        )

    def _scoring(self, raw: Any) -> ScoringRules | None:
        loc = "scoring"
        if not isinstance(raw, dict):
            self.add(loc, "Phải là bảng [scoring].")
            return None
        self.known_keys(raw, _Q_SCORING, loc)
        method = self.enum(raw, "method", loc, ScoringMethod)
        scale_min = self.number(raw, "scale_min", loc, default=1.0)
        scale_max = self.number(raw, "scale_max", loc, default=5.0)
        if scale_min is not None and scale_max is not None and scale_max <= scale_min:
            self.add(_at(loc, "scale_max"), f"Phải lớn hơn scale_min ({_fmt(scale_min)}).")
        weighted = self.boolean(raw, "weighted_elements", loc, False)
        positive = self.strings(raw, "positive_codes", loc)
        if method is ScoringMethod.SHARE_SATISFIED and not positive:
            self.add(
                _at(loc, "positive_codes"),
                'Phương pháp "share_satisfied" cần danh sách mã hài lòng, ví dụ ["4", "5"].',
            )

        element_locs: dict[str, str] = {}
        criterion_locs: dict[str, str] = {}
        used_by: dict[str, str] = {}  # question id -> criterion id
        scored: list[tuple[str, Question]] = []  # (location, question) of every criterion question
        elements = []
        for eloc, eraw in self.tables(raw, "elements", loc, required=True, non_empty=True):
            self.known_keys(eraw, _Q_ELEMENT, eloc)
            eid = self.string(eraw, "id", eloc, required=True, pattern=_ID_RE, hint=_ID_HINT)
            self.unique(element_locs, eid, _at(eloc, "id"), "Mã yếu tố")
            etitle = self.string(eraw, "title", eloc, required=True)
            eweight = self.number(eraw, "weight", eloc, default=1.0, positive=True)
            criteria = []
            for cloc, craw in self.tables(eraw, "criteria", eloc, required=True, non_empty=True):
                self.known_keys(craw, _Q_CRITERION, cloc)
                cid = self.string(craw, "id", cloc, required=True, pattern=_ID_RE, hint=_ID_HINT)
                self.unique(criterion_locs, cid, _at(cloc, "id"), "Mã tiêu chí")
                ctitle = self.string(craw, "title", cloc, required=True)
                cweight = self.number(craw, "weight", cloc, default=1.0, positive=True)
                qids = self.strings(craw, "questions", cloc, required=True, non_empty=True) or []
                for qloc, qid in qids:
                    question = self.by_id.get(qid)
                    if question is None:
                        if qid in self.question_locs:
                            continue  # the question itself is broken and already reported
                        self.add(qloc, f"Không có câu hỏi «{qid}».")
                    elif not any(o.value is not None for o in question.options):
                        self.add(
                            qloc,
                            f"Câu «{qid}» không được chấm điểm: không có phương án "
                            "nào mang giá trị (value).",
                        )
                    elif qid in used_by:
                        self.add(qloc, f"Câu «{qid}» đã dùng cho tiêu chí «{used_by[qid]}».")
                    else:
                        used_by[qid] = cid or "?"
                        scored.append((qloc, question))
                if cid and ctitle and cweight is not None and qids:
                    criteria.append(Criterion(cid, ctitle, tuple(q for _, q in qids), cweight))
            if eid and etitle and eweight is not None:
                elements.append(Element(eid, etitle, tuple(criteria), eweight))

        positive_codes = tuple(v for _, v in positive or ())
        if method is ScoringMethod.SHARE_SATISFIED and positive:
            self._check_positive_codes(positive, scored)
        if method is ScoringMethod.MEAN and scale_min is not None and scale_max is not None:
            for qloc, question in scored:
                values = [o.value for o in question.options if o.value is not None]
                if min(values) < scale_min or max(values) > scale_max:
                    self.add(
                        qloc,
                        f"Giá trị phương án của câu «{question.id}» "
                        f"({_fmt(min(values))}..{_fmt(max(values))}) nằm ngoài thang "
                        f"scale_min..scale_max ({_fmt(scale_min)}..{_fmt(scale_max)}).",
                    )
        if method is None or scale_min is None or scale_max is None:
            return None
        return ScoringRules(
            method=method,
            elements=tuple(elements),
            positive_codes=positive_codes,
            scale_min=float(scale_min),
            scale_max=float(scale_max),
            weighted_elements=weighted,
        )

    def _check_positive_codes(
        self, positive: list[tuple[str, str]], scored: list[tuple[str, Question]]
    ) -> None:
        codes = {v for _, v in positive}
        for ploc, code in positive:
            owners = [q for _, q in scored if q.option(code) is not None]
            if scored and not owners:
                self.add(ploc, f"Mã «{code}» không là phương án của câu nào được chấm điểm.")
            elif any(q.option(code).dont_know for q in owners):  # type: ignore[union-attr]
                self.add(ploc, f"Mã «{code}» là phương án «không biết», không tính là hài lòng.")
        for qloc, question in scored:
            if not codes & {o.code for o in question.options}:
                self.add(
                    qloc,
                    f"Câu «{question.id}» không có phương án nào thuộc positive_codes "
                    f"({', '.join(sorted(codes))}).",
                )


# --- plans ---------------------------------------------------------------------------------------

_P_TOP = (
    "key",
    "name",
    "description",
    "year",
    "period_start",
    "period_end",
    "survey_points",
    "conversion",
    "bands",
    "seed",
    "min_n",
    "min_response_rate",
    "groups",
    "units",
    "extra",
)
_P_GROUP = (
    "group",
    "questionnaire",
    "mode",
    "quota",
    "reserves",
    "weight",
    "frame_scope",
    "rated_levels",
)
_P_UNIT = ("code", "name", "level", "parent")
_P_BAND = ("min_percent", "points")
YEAR_MIN, YEAR_MAX = 2000, 2100


def load_plan(source: Source, catalog: Mapping[str, Questionnaire] | None = None) -> Plan:
    """Load a campaign plan from TOML and validate it completely.

    Questionnaire refs (`key@version`) are looked up in `catalog` (default: the shipped
    questionnaires). Raises PlanError listing every problem found, each with its location.
    """
    problems: list[Problem] = []
    data, _ = _parse(source, problems)
    if data is None:
        raise PlanError(problems, _source_name(source))
    if catalog is None:
        from questionnaires.catalog import shipped_questionnaires  # late: catalog imports us

        catalog = shipped_questionnaires()
    result = _PlanBuilder(catalog).build(data)
    if isinstance(result, list):
        raise PlanError(result, _source_name(source))
    return result


class _PlanBuilder(_Reader):
    """Builds a Plan from parsed TOML, collecting problems on the way."""

    def __init__(self, catalog: Mapping[str, Questionnaire]) -> None:
        super().__init__()
        self.catalog = catalog

    def build(self, data: dict[str, Any]) -> Plan | list[Problem]:
        self.known_keys(data, _P_TOP, "")
        key = self.string(
            data,
            "key",
            "",
            required=True,
            pattern=_KEY_RE,
            hint="chỉ gồm chữ thường không dấu, chữ số và dấu '-'",
        )
        name = self.string(data, "name", "", required=True)
        description = self.string(data, "description", "")
        year = self.number(
            data, "year", "", required=True, integer=True, minimum=YEAR_MIN, maximum=YEAR_MAX
        )
        start = self._date(data, "period_start")
        end = self._date(data, "period_end")
        if start and end and start > end:
            self.add(
                "period_end",
                f"Ngày kết thúc ({end:%d/%m/%Y}) trước ngày bắt đầu ({start:%d/%m/%Y}).",
            )
        elif start and end and year is not None and not start.year <= year <= end.year:
            self.add("year", f"Năm {year} nằm ngoài kỳ khảo sát {start:%d/%m/%Y}–{end:%d/%m/%Y}.")
        points = self.number(data, "survey_points", "", default=30.0, positive=True, maximum=100)
        conversion = self.enum(
            data, "conversion", "", ConversionMethod, default=ConversionMethod.LINEAR
        )
        bands = self._bands(data, conversion, points)
        seed = self.number(data, "seed", "", integer=True, minimum=0)
        min_n = self.number(data, "min_n", "", default=10, integer=True, minimum=1)
        min_rate = self.number(data, "min_response_rate", "", default=0.5, minimum=0, maximum=1)
        extra = data.get("extra", {})
        if not isinstance(extra, dict):
            self.add("extra", "Phải là bảng [extra].")
        units = self._units(data)
        groups = self._groups(data, units)

        if self.problems:
            return self.problems
        assert key and name and year is not None and start and end  # no problems recorded
        assert points is not None and conversion is not None
        assert min_n is not None and min_rate is not None
        return Plan(
            key=key,
            name=name,
            year=int(year),
            period_start=start,
            period_end=end,
            groups=tuple(groups),
            units=tuple(units),
            survey_points=float(points),
            conversion=conversion,
            bands=tuple(bands),
            seed=int(seed) if seed is not None else None,
            description=description or "",
            min_n=int(min_n),
            min_response_rate=float(min_rate),
            extra=dict(extra),
        )

    def _date(self, data: dict[str, Any], key: str) -> dt.date | None:
        value = self.get(data, key, "", True)
        if value is _MISSING:
            return None
        # TOML datetimes are date subclasses: refuse them, a period is made of whole days.
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                pass
        self.add(key, "Phải là một ngày dạng YYYY-MM-DD, ví dụ 2022-01-01.")
        return None

    def _bands(
        self, data: dict[str, Any], conversion: ConversionMethod | None, points: float | None
    ) -> list[Band]:
        entries = self.tables(data, "bands", "", required=False, non_empty=False)
        if conversion is ConversionMethod.BANDS and not entries:
            self.add("bands", 'Cách quy đổi "bands" cần ít nhất một khung điểm [[bands]].')
        if conversion is ConversionMethod.LINEAR and entries:
            self.add("bands", 'Khung điểm chỉ dùng khi conversion = "bands".')
        bands = []
        previous: float | None = None
        for bloc, braw in entries:
            self.known_keys(braw, _P_BAND, bloc)
            low = self.number(braw, "min_percent", bloc, required=True, minimum=0, maximum=100)
            pts = self.number(braw, "points", bloc, required=True, minimum=0, maximum=points)
            # Bands are read top-down: the first one whose lower bound is reached applies.
            if low is not None and previous is not None and low >= previous:
                self.add(
                    _at(bloc, "min_percent"),
                    "Các khung phải xếp theo min_percent giảm dần "
                    f"({_fmt(low)} không nhỏ hơn {_fmt(previous)}).",
                )
            if low is not None:
                previous = low
            if low is not None and pts is not None:
                bands.append(Band(float(low), float(pts)))
        return bands

    def _units(self, data: dict[str, Any]) -> list[UnitRef]:
        codes: dict[str, str] = {}
        units = []
        for uloc, raw in self.tables(data, "units", "", required=False, non_empty=False):
            self.known_keys(raw, _P_UNIT, uloc)
            code = self.string(raw, "code", uloc, required=True)
            self.unique(codes, code, _at(uloc, "code"), "Mã đơn vị")
            name = self.string(raw, "name", uloc)
            level = self.string(raw, "level", uloc)
            parent = self.string(raw, "parent", uloc)
            if code is not None and code not in {u.code for u in units}:
                units.append(UnitRef(code, name or "", level or "", parent or ""))
        return units

    def _groups(self, data: dict[str, Any], units: list[UnitRef]) -> list[GroupPlan]:
        seen: dict[str, str] = {}
        levels = {u.level for u in units}
        groups = []
        for gloc, raw in self.tables(data, "groups", "", required=True, non_empty=True):
            self.known_keys(raw, _P_GROUP, gloc)
            group = self.enum(raw, "group", gloc, RespondentGroup)
            self.unique(seen, group.value if group else None, _at(gloc, "group"), "Nhóm đối tượng")
            ref = self.string(
                raw,
                "questionnaire",
                gloc,
                required=True,
                pattern=_REF_RE,
                hint="phải có dạng mã@phiên-bản, ví dụ sipas-citizen@2026.1",
            )
            if ref:
                questionnaire = self.catalog.get(ref)
                if questionnaire is None:
                    self.add(_at(gloc, "questionnaire"), f"Không có bảng hỏi «{ref}».")
                elif group is not None and questionnaire.group is not group:
                    self.add(
                        _at(gloc, "questionnaire"),
                        f"Bảng hỏi «{ref}» dành cho nhóm «{questionnaire.group.label}», "
                        f"không phải «{group.label}».",
                    )
            mode = self.enum(raw, "mode", gloc, Mode)
            quota = self.number(raw, "quota", gloc, required=True, integer=True, minimum=1)
            reserves = self.number(raw, "reserves", gloc, default=0, integer=True, minimum=0)
            weight = self.number(raw, "weight", gloc, default=1.0, positive=True)
            scope = self.enum(raw, "frame_scope", gloc, FrameScope, default=FrameScope.PER_UNIT)
            rated = self.strings(raw, "rated_levels", gloc) or []
            for rloc, level in rated:
                if units and level not in levels:
                    self.add(rloc, f"Không có đơn vị nào thuộc cấp «{level}» trong [[units]].")
            if None in (group, ref, mode, quota, reserves, weight, scope):
                continue
            assert group and ref and mode and scope and quota is not None
            assert reserves is not None and weight is not None
            groups.append(
                GroupPlan(
                    group=group,
                    questionnaire=ref,
                    mode=mode,
                    quota=int(quota),
                    reserves=int(reserves),
                    weight=float(weight),
                    frame_scope=scope,
                    rated_levels=tuple(level for _, level in rated),
                )
            )
        return groups
