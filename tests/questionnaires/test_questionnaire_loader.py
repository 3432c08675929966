"""The questionnaire file format: standard option sets, validation with locations, digests."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from questionnaires.catalog import DATA_DIR
from questionnaires.errors import Problem, QuestionnaireError, QuestionnaireFormatError
from questionnaires.loader import (
    DONT_KNOW_LABEL,
    SATISFACTION_LABELS,
    canonical_source,
    load_questionnaire,
    source_digest,
)
from questionnaires.model import ConditionOp, QuestionKind, RespondentGroup, ScoringMethod

HEADER = """
key = "thu"
version = "1"
title = "Phiếu thử"
group = "citizen"
"""

GOOD = (
    HEADER
    + """
[[sections]]
id = "A"
title = "Phần A"

[[sections.questions]]
id = "q1"
kind = "yes_no_dk"
text = "Ông/Bà có góp ý không?"

[[sections.questions]]
id = "q2"
kind = "satisfaction5"
text = "Mức hài lòng"
required = true
show_if = { question = "q1", op = "in", values = ["co"] }

[[sections.questions]]
id = "q3"
kind = "rating"
text = "Cho điểm"
min = 0
max = 10

[[sections.questions]]
id = "q4"
kind = "satisfaction5"
text = "Không có lựa chọn không biết"
dont_know = false

[[sections.questions]]
id = "q5"
kind = "text"
text = "Ý kiến khác"
max_length = 200

[scoring]
method = "share_satisfied"
positive_codes = ["4", "5"]

[[scoring.elements]]
id = "E1"
title = "Yếu tố 1"
[[scoring.elements.criteria]]
id = "C1"
title = "Tiêu chí 1"
questions = ["q2"]
[[scoring.elements.criteria]]
id = "C2"
title = "Tiêu chí 2"
weight = 2
questions = ["q4"]
"""
)


def problems_of(text: str | bytes) -> list[Problem]:
    with pytest.raises(QuestionnaireError) as info:
        load_questionnaire(text)
    return info.value.problems


def locations(text: str) -> set[str]:
    return {p.location for p in problems_of(text)}


# --- a valid file and the standard option sets ---------------------------------------------


def test_good_file_loads_with_standard_options_filled_in():
    q = load_questionnaire(GOOD)
    assert q.ref == "thu@1"
    assert q.group is RespondentGroup.CITIZEN
    assert [x.id for x in q.questions()] == ["q1", "q2", "q3", "q4", "q5"]

    yes_no = q.question("q1")
    assert [(o.code, o.label, o.value, o.dont_know) for o in yes_no.options] == [
        ("co", "Có", 1.0, False),
        ("khong", "Không", 0.0, False),
        ("khong_biet", "Không biết", None, True),
    ]
    sat = q.question("q2")
    assert [o.label for o in sat.options[:5]] == list(SATISFACTION_LABELS)
    assert [o.code for o in sat.options] == ["1", "2", "3", "4", "5", "9"]
    assert [o.value for o in sat.options] == [1.0, 2.0, 3.0, 4.0, 5.0, None]
    assert sat.options[-1].label == DONT_KNOW_LABEL and sat.options[-1].dont_know
    assert sat.required
    assert sat.show_if is not None and sat.show_if.op is ConditionOp.IN
    assert sat.show_if.values == ("co",)
    assert not sat.is_shown({"q1": "khong"}) and sat.is_shown({"q1": "co"})

    rating = q.question("q3")
    assert [o.code for o in rating.options] == [str(i) for i in range(11)]
    assert (rating.min_value, rating.max_value) == (0.0, 10.0)
    assert not any(o.dont_know for o in rating.options)

    assert [o.code for o in q.question("q4").options] == ["1", "2", "3", "4", "5"]
    text = q.question("q5")
    assert text.kind is QuestionKind.TEXT and text.options == () and text.max_length == 200

    assert q.scoring is not None
    assert q.scoring.method is ScoringMethod.SHARE_SATISFIED
    assert q.scoring.positive_codes == ("4", "5")
    assert [c.weight for c in q.scoring.elements[0].criteria] == [1.0, 2.0]
    assert len(q.digest) == 64 and q.digest == source_digest(GOOD)


def test_sources_as_text_bytes_and_path_agree(tmp_path: Path):
    path = tmp_path / "thu.toml"
    path.write_text(GOOD, encoding="utf-8")
    from_text = load_questionnaire(GOOD)
    from_bytes = load_questionnaire(GOOD.encode("utf-8"))
    from_path = load_questionnaire(path)
    assert from_text == from_bytes == from_path


def test_text_is_nfc_normalised_and_digest_ignores_line_ends_and_bom():
    decomposed = unicodedata.normalize("NFD", GOOD)
    assert decomposed != GOOD
    q = load_questionnaire(decomposed)
    assert q.title == "Phiếu thử" and unicodedata.is_normalized("NFC", q.title)
    crlf_bom = b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode("utf-8")
    assert canonical_source(crlf_bom) == canonical_source(GOOD)
    assert load_questionnaire(crlf_bom).digest == q.digest == load_questionnaire(GOOD).digest


def test_digest_changes_when_the_text_changes():
    edited = GOOD.replace('text = "Mức hài lòng"', 'text = "Mức độ hài lòng"')
    assert load_questionnaire(edited).digest != load_questionnaire(GOOD).digest


# --- every problem, with its location ----------------------------------------------------------


def test_a_broken_file_reports_every_problem_at_once():
    broken = """
key = "Sai Khoa"
version = "2026.1"
group = "citizens"
titel = "lỗi chính tả"

[[sections]]
id = "A"
title = "Phần A"

[[sections.questions]]
id = "q1"
kind = "single"
text = "Câu 1"
show_if = { question = "q2", op = "in", values = ["co"] }
options = [ { code = "a", label = "A" }, { code = "a", label = "B" } ]

[[sections.questions]]
id = "q2"
kind = "yes_no_dk"
text = "Câu 2"

[[sections.questions]]
id = "q3"
kind = "slider"
text = "Câu 3"

[[sections.questions]]
id = "q4"
kind = "satisfaction5"
show_if = { question = "q2", op = "in", values = ["yes"] }

[[sections.questions]]
id = "q5"
kind = "text"
text = "Câu 5"

[scoring]
method = "share_satisfied"
positive_codes = ["4", "7"]
[[scoring.elements]]
id = "E1"
title = "Yếu tố"
weight = 0
[[scoring.elements.criteria]]
id = "C1"
title = "T"
questions = ["q4", "q5", "q9"]
"""
    problems = problems_of(broken)
    where = {p.location for p in problems}
    assert {
        "key",
        "title",
        "titel",
        "group",
        "sections[0].questions[0].options[1].code",
        "sections[0].questions[0].show_if.question",
        "sections[0].questions[2].kind",
        "sections[0].questions[3].text",
        "sections[0].questions[3].show_if.values[0]",
        "scoring.elements[0].weight",
        "scoring.elements[0].criteria[0].questions[1]",
        "scoring.elements[0].criteria[0].questions[2]",
    } <= where
    assert len(problems) >= 12
    # A broken question is reported once, not again where a criterion uses it.
    assert "scoring.elements[0].criteria[0].questions[0]" not in where
    # Messages are Vietnamese and say what is wrong.
    by_loc = {p.location: p.message for p in problems}
    assert "Thiếu trường bắt buộc «title»" in by_loc["title"]
    assert "đứng sau" in by_loc["sections[0].questions[0].show_if.question"]
    assert "«yes»" in by_loc["sections[0].questions[3].show_if.values[0]"]
    assert "«q9»" in by_loc["scoring.elements[0].criteria[0].questions[2]"]
    assert "lớn hơn 0" in by_loc["scoring.elements[0].weight"]


def test_error_message_lists_all_problems_and_the_file_name(tmp_path: Path):
    path = tmp_path / "hong.toml"
    path.write_text(HEADER.replace('group = "citizen"', 'group = "x"'), encoding="utf-8")
    with pytest.raises(QuestionnaireFormatError) as info:
        load_questionnaire(path)
    text = str(info.value)
    assert "hong.toml" in text and "group:" in text and "sections:" in text
    assert info.value.source == "hong.toml"


def test_toml_syntax_error_reports_its_line():
    problems = problems_of(HEADER + "\n[[sections]]\nid = A\n")
    assert len(problems) == 1
    assert problems[0].location.startswith("dòng 8,")
    assert "cú pháp TOML" in problems[0].message


def test_invalid_utf8_is_reported():
    problems = problems_of(HEADER.encode("utf-8") + b'\nintro = "\xff"\n')
    assert problems[0].location == "tệp" and "UTF-8" in problems[0].message


def with_questions(body: str, scoring: str = "") -> str:
    return HEADER + '\n[[sections]]\nid = "A"\ntitle = "A"\n' + body + scoring


Q1_YES_NO = '\n[[sections.questions]]\nid = "q1"\nkind = "yes_no_dk"\ntext = "Câu 1"\n'


def test_skip_condition_on_a_later_question_is_refused():
    body = (
        '\n[[sections.questions]]\nid = "q0"\nkind = "text"\ntext = "Câu 0"\n'
        'show_if = { question = "q1", op = "in", values = ["co"] }\n' + Q1_YES_NO
    )
    problems = problems_of(with_questions(body))
    assert [p.location for p in problems] == ["sections[0].questions[0].show_if.question"]
    assert "đứng trước" in problems[0].message


@pytest.mark.parametrize(
    ("condition", "location", "fragment"),
    [
        ('{ question = "q9", op = "in", values = ["co"] }', "show_if.question", "Không có"),
        ('{ question = "q2", op = "answered" }', "show_if.question", "chính nó"),
        ('{ question = "q1", op = "in", values = ["yes"] }', "show_if.values[0]", "«yes»"),
        ('{ question = "q1", op = "among", values = ["co"] }', "show_if.op", "among"),
        ('{ question = "q1", op = "in" }', "show_if.values", "values"),
        ('{ question = "q1", op = "answered", values = ["co"] }', "show_if.values", "answered"),
        ('"q1"', "show_if", "bảng"),
    ],
)
def test_bad_skip_conditions_are_refused(condition: str, location: str, fragment: str):
    body = Q1_YES_NO + (
        '\n[[sections.questions]]\nid = "q2"\nkind = "text"\ntext = "Câu 2"\n'
        f"show_if = {condition}\n"
    )
    problems = problems_of(with_questions(body))
    assert [p.location for p in problems] == [f"sections[0].questions[1].{location}"]
    assert fragment in problems[0].message


def test_condition_on_a_text_question_needs_answered():
    body = (
        '\n[[sections.questions]]\nid = "q1"\nkind = "text"\ntext = "Tên thủ tục"\n'
        '\n[[sections.questions]]\nid = "q2"\nkind = "satisfaction5"\ntext = "Hài lòng?"\n'
    )
    refused = body + 'show_if = { question = "q1", op = "in", values = ["x"] }\n'
    assert locations(with_questions(refused)) == {"sections[0].questions[1].show_if.question"}
    accepted = body + 'show_if = { question = "q1", op = "answered" }\n'
    q = load_questionnaire(with_questions(accepted))
    assert q.question("q2").is_shown({"q1": "Khai sinh"})
    assert not q.question("q2").is_shown({"q1": ""})


def test_duplicate_ids_are_refused_everywhere():
    text = (
        HEADER
        + """
[[sections]]
id = "A"
title = "A"
[[sections.questions]]
id = "q1"
kind = "single"
text = "Câu 1"
options = [ { code = "x", label = "X", value = 1 }, { code = "x", label = "Y", value = 2 } ]
[[sections.questions]]
id = "q2"
kind = "satisfaction5"
text = "Câu 2"

[[sections]]
id = "A"
title = "A lần nữa"
[[sections.questions]]
id = "q2"
kind = "satisfaction5"
text = "Câu 2 lặp"

[scoring]
method = "mean"
[[scoring.elements]]
id = "E"
title = "E"
[[scoring.elements.criteria]]
id = "C"
title = "C"
questions = ["q2"]
[[scoring.elements]]
id = "E"
title = "E lặp"
[[scoring.elements.criteria]]
id = "C"
title = "C lặp"
questions = ["q2"]
"""
    )
    problems = problems_of(text)
    by_loc = {p.location: p.message for p in problems}
    assert set(by_loc) == {
        "sections[0].questions[0].options[1].code",
        "sections[1].id",
        "sections[1].questions[0].id",
        "scoring.elements[1].id",
        "scoring.elements[1].criteria[0].id",
        "scoring.elements[1].criteria[0].questions[0]",  # q2 already measures criterion C
    }
    assert "sections[0].id" in by_loc["sections[1].id"]  # points at the first use
    assert all("trùng" in m for loc, m in by_loc.items() if loc.endswith(("id", "code")))


def test_unknown_kind_missing_options_and_misplaced_keys():
    body = """
[[sections.questions]]
id = "q1"
kind = "single"
text = "Không có phương án"
[[sections.questions]]
id = "q2"
kind = "text"
text = "Văn bản"
options = [ { code = "a", label = "A" }, { code = "b", label = "B" } ]
min = 1
[[sections.questions]]
id = "q3"
kind = "single"
text = "Một phương án"
requried = true
options = [ { code = "a", label = "A", value = "mot" } ]
[[sections.questions]]
id = "câu 4"
kind = "rating"
text = "Thang ngược"
min = 5
max = 1
[[sections.questions]]
id = "q5"
kind = "multi"
text = "Không biết có điểm"
dont_know = true
options = [
  { code = "a", label = "A" },
  { code = "dk", label = "KB", value = 0, dont_know = true },
]
"""
    assert locations(with_questions(body)) == {
        "sections[0].questions[0].options",
        "sections[0].questions[1].options",
        "sections[0].questions[1].min",
        "sections[0].questions[2].requried",
        "sections[0].questions[2].options",
        "sections[0].questions[2].options[0].value",
        "sections[0].questions[3].id",
        "sections[0].questions[3].max",
        "sections[0].questions[4].dont_know",
        "sections[0].questions[4].options[1].value",
    }


def test_empty_file_reports_all_required_fields():
    assert locations("") == {"key", "version", "title", "group", "sections"}


# --- scoring rules ---------------------------------------------------------------------------


def scoring(method: str, extra: str, questions: str) -> str:
    return f"""
[scoring]
method = "{method}"
{extra}
[[scoring.elements]]
id = "E1"
title = "E1"
[[scoring.elements.criteria]]
id = "C1"
title = "C1"
questions = {questions}
"""


SAT = '\n[[sections.questions]]\nid = "s1"\nkind = "satisfaction5"\ntext = "Hài lòng?"\n'
TEXT = '\n[[sections.questions]]\nid = "t1"\nkind = "text"\ntext = "Ý kiến"\n'


def test_criteria_must_measure_scored_questions():
    text = with_questions(
        SAT + TEXT, scoring("share_satisfied", 'positive_codes=["4","5"]', '["s1", "t1", "zz"]')
    )
    by_loc = {p.location: p.message for p in problems_of(text)}
    assert set(by_loc) == {
        "scoring.elements[0].criteria[0].questions[1]",
        "scoring.elements[0].criteria[0].questions[2]",
    }
    assert "không được chấm điểm" in by_loc["scoring.elements[0].criteria[0].questions[1]"]


def test_share_satisfied_needs_existing_positive_codes():
    missing = with_questions(SAT, scoring("share_satisfied", "", '["s1"]'))
    assert locations(missing) == {"scoring.positive_codes"}
    unknown = with_questions(
        SAT, scoring("share_satisfied", 'positive_codes=["hai_long"]', '["s1"]')
    )
    assert locations(unknown) == {
        "scoring.positive_codes[0]",
        "scoring.elements[0].criteria[0].questions[0]",
    }
    dont_know = with_questions(
        SAT, scoring("share_satisfied", 'positive_codes=["5","9"]', '["s1"]')
    )
    assert locations(dont_know) == {"scoring.positive_codes[1]"}


def test_mean_scale_must_cover_the_option_values():
    yes_no = Q1_YES_NO
    refused = with_questions(yes_no, scoring("mean", "scale_min = 1\nscale_max = 5", '["q1"]'))
    assert locations(refused) == {"scoring.elements[0].criteria[0].questions[0]"}
    accepted = with_questions(yes_no, scoring("mean", "scale_min = 0\nscale_max = 1", '["q1"]'))
    rules = load_questionnaire(accepted).scoring
    assert rules is not None and (rules.scale_min, rules.scale_max) == (0.0, 1.0)
    backwards = with_questions(SAT, scoring("mean", "scale_min = 5\nscale_max = 1", '["s1"]'))
    assert "scoring.scale_max" in locations(backwards)


def test_scoring_weights_must_be_positive_and_method_known():
    text = with_questions(SAT, scoring("median", "", '["s1"]')).replace(
        'title = "C1"', 'title = "C1"\nweight = -2'
    )
    assert locations(text) == {"scoring.method", "scoring.elements[0].criteria[0].weight"}


# --- robustness: mangled shipped files fail cleanly ------------------------------------------

SHIPPED_LINES = (DATA_DIR / "sipas-citizen@2026.1.toml").read_text(encoding="utf-8").splitlines()


@settings(max_examples=120, deadline=None)
@given(
    drop=st.sets(st.integers(0, len(SHIPPED_LINES) - 1), max_size=6),
    swap=st.sampled_from(["", "0", "true", '"x"', "[]", "{}", "-1", '["9"]']),
    at=st.integers(0, len(SHIPPED_LINES) - 1),
)
def test_mangled_files_either_load_or_raise_questionnaire_error(drop, swap, at):
    lines = [line for i, line in enumerate(SHIPPED_LINES) if i not in drop]
    if swap and at < len(lines) and " = " in lines[at]:
        key = lines[at].split(" = ", 1)[0]
        lines[at] = f"{key} = {swap}"
    try:
        q = load_questionnaire("\n".join(lines))
    except QuestionnaireError as exc:
        assert exc.problems and all(p.message for p in exc.problems)
    else:
        assert q.questions()
