"""Exceptions of the questionnaires package.

One root, `QuestionnaireFormatError`, so the web app can translate every file-format failure into
one Vietnamese message. Each error carries *all* the problems found, each with its location in the
file, so a province editing a TOML file sees every mistake at once instead of one per attempt.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in a file: where (a dotted path such as `sections[1].questions[3].kind`,
    or `dòng 4, cột 7` for a syntax error) and what, in Vietnamese."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class QuestionnaireFormatError(Exception):
    """Root of the package: a questionnaire or plan file (or its use) is not acceptable."""

    kind_label = "Tệp"

    def __init__(self, problems: Iterable[Problem], source: str = "") -> None:
        self.problems: list[Problem] = list(problems)
        self.source = source  # file name or ref, for the message only
        super().__init__(self._summary())

    def _summary(self) -> str:
        where = f" «{self.source}»" if self.source else ""
        lines = [f"{self.kind_label}{where} có {len(self.problems)} lỗi:"]
        lines.extend(f"  - {p}" for p in self.problems)
        return "\n".join(lines)


class QuestionnaireError(QuestionnaireFormatError):
    """A questionnaire file is invalid."""

    kind_label = "Bảng hỏi"


class PlanError(QuestionnaireFormatError):
    """A campaign plan file is invalid."""

    kind_label = "Kế hoạch"


class ImmutableVersionError(QuestionnaireFormatError):
    """A questionnaire version in use by a campaign has changed or disappeared."""

    kind_label = "Phiên bản bảng hỏi"
