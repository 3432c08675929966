"""The shipped questionnaires: they load, follow their method, and stay immutable once in use."""

from __future__ import annotations

import pytest

from questionnaires.catalog import (
    DATA_DIR,
    check_immutable,
    get_questionnaire,
    questionnaire_path,
    shipped_questionnaires,
)
from questionnaires.errors import ImmutableVersionError, QuestionnaireFormatError
from questionnaires.loader import load_questionnaire
from questionnaires.model import QuestionKind, RespondentGroup, ScoringMethod

EXPECTED = {
    "sipas-citizen@2026.1": RespondentGroup.CITIZEN,
    "sipas-business@2026.1": RespondentGroup.BUSINESS,
    "par-hdnd@2026.1": RespondentGroup.HDND_DELEGATE,
    "par-leader@2026.1": RespondentGroup.LEADER,
    "par-civil-servant@2026.1": RespondentGroup.CIVIL_SERVANT,
}


@pytest.mark.parametrize("path", sorted(DATA_DIR.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_file_loads(path):
    q = load_questionnaire(path)
    assert path.stem == q.ref
    assert 20 <= len(q.questions()) <= 35
    assert q.intro and q.contact and q.scoring is not None
    assert q.digest == shipped_questionnaires()[q.ref].digest


def test_catalog_holds_one_form_per_group():
    catalog = shipped_questionnaires()
    assert {ref: q.group for ref, q in catalog.items()} == EXPECTED
    assert get_questionnaire("par-hdnd@2026.1") is catalog["par-hdnd@2026.1"]
    catalog.clear()  # callers get a copy: the cache is untouched
    assert len(shipped_questionnaires()) == len(EXPECTED)
    with pytest.raises(KeyError):
        get_questionnaire("sipas-citizen@1999.1")
    assert questionnaire_path("par-leader@2026.1").is_file()
    with pytest.raises(KeyError):
        questionnaire_path("../plans/demo")


@pytest.mark.parametrize("ref", ["sipas-citizen@2026.1", "sipas-business@2026.1"])
def test_sipas_forms_have_five_elements_and_22_criteria(ref):
    q = get_questionnaire(ref)
    rules = q.scoring
    assert rules is not None and rules.method is ScoringMethod.SHARE_SATISFIED
    assert rules.positive_codes == ("4", "5")
    assert [e.title for e in rules.elements] == [
        "Tiếp cận dịch vụ",
        "Thủ tục hành chính",
        "Công chức trực tiếp giải quyết công việc",
        "Kết quả giải quyết thủ tục hành chính",
        "Tiếp nhận, xử lý góp ý, phản ánh, kiến nghị",
    ]
    criteria = [c for e in rules.elements for c in e.criteria]
    assert len(criteria) == 22
    scored = [qid for c in criteria for qid in c.questions]
    assert len(scored) == len(set(scored)) == 22  # one question per criterion
    assert all(q.question(qid).kind is QuestionKind.SATISFACTION for qid in scored)
    # Profile questions and the open suggestion are not scored.
    unscored = [x for x in q.questions() if x.id not in scored]
    assert any(x.kind is QuestionKind.TEXT for x in unscored)
    assert sum(x.kind is QuestionKind.SINGLE for x in unscored) >= 4


def test_sipas_feedback_criteria_are_asked_only_after_feedback():
    q = get_questionnaire("sipas-citizen@2026.1")
    assert q.scoring is not None
    feedback = q.scoring.elements[4]
    gate = q.question("f0")
    assert gate.kind is QuestionKind.YES_NO and "góp ý" in gate.text
    for criterion in feedback.criteria:
        question = q.question(criterion.questions[0])
        assert question.show_if is not None and question.show_if.question == "f0"
        assert question.is_shown({"f0": "co"})
        assert not question.is_shown({"f0": "khong"}) and not question.is_shown({})
    # The other 18 criteria are always asked and required.
    for element in q.scoring.elements[:4]:
        for criterion in element.criteria:
            question = q.question(criterion.questions[0])
            assert question.show_if is None and question.required


@pytest.mark.parametrize(
    "ref", ["par-hdnd@2026.1", "par-leader@2026.1", "par-civil-servant@2026.1"]
)
def test_par_forms_rate_the_seven_reform_areas(ref):
    q = get_questionnaire(ref)
    rules = q.scoring
    assert rules is not None and rules.method is ScoringMethod.MEAN
    assert (rules.scale_min, rules.scale_max) == (1.0, 5.0)
    titles = [e.title for e in rules.elements]
    assert len(titles) == 7
    for word in ("chỉ đạo", "thể chế", "thủ tục", "bộ máy", "công vụ", "tài chính", "số"):
        assert any(word in t for t in titles), word
    for element in rules.elements:
        assert 1 <= len(element.criteria) <= 4
        for criterion in element.criteria:
            question = q.question(criterion.questions[0])
            assert question.kind is QuestionKind.RATING
            values = [o.value for o in question.options if not o.dont_know]
            assert values == [1.0, 2.0, 3.0, 4.0, 5.0]
            assert any(o.dont_know for o in question.options)


def test_leader_and_civil_servant_forms_share_most_content():
    leader = {x.text for x in get_questionnaire("par-leader@2026.1").questions()}
    servant = {x.text for x in get_questionnaire("par-civil-servant@2026.1").questions()}
    assert len(leader & servant) >= 20


def test_shipped_texts_are_nfc():
    import unicodedata

    for q in shipped_questionnaires().values():
        texts = [q.title, q.intro] + [x.text for x in q.questions()]
        texts += [o.label for x in q.questions() for o in x.options]
        assert all(unicodedata.is_normalized("NFC", t) for t in texts)


# --- immutability ---------------------------------------------------------------------------


def test_check_immutable_accepts_the_recorded_digest():
    q = get_questionnaire("sipas-citizen@2026.1")
    assert check_immutable(q.ref, q.digest) is q
    assert check_immutable(q.ref, q.digest, current=q) is q


def test_check_immutable_refuses_an_edited_version():
    ref = "sipas-citizen@2026.1"
    recorded = get_questionnaire(ref).digest
    text = questionnaire_path(ref).read_text(encoding="utf-8")
    edited = load_questionnaire(text.replace("Giới tính của Ông/Bà", "Giới tính"))
    assert edited.ref == ref and edited.digest != recorded
    with pytest.raises(ImmutableVersionError) as info:
        check_immutable(ref, recorded, current=edited)
    assert isinstance(info.value, QuestionnaireFormatError)
    assert info.value.problems[0].location == ref
    assert "phiên bản mới" in info.value.problems[0].message


def test_check_immutable_refuses_a_vanished_or_different_version():
    with pytest.raises(ImmutableVersionError):
        check_immutable("sipas-citizen@2020.9", "0" * 64)
    other = get_questionnaire("par-hdnd@2026.1")
    with pytest.raises(ImmutableVersionError):
        check_immutable("sipas-citizen@2026.1", other.digest, current=other)
