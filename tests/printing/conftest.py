"""Fixtures for the printing tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# the test modules share data builders and PDF helpers from this directory
sys.path.insert(0, str(Path(__file__).parent))

from printing_fixtures import CAMPAIGN, make_questionnaire  # noqa: E402

from printing.layout import FormLayout, prepare_layout  # noqa: E402
from questionnaires.model import Questionnaire  # noqa: E402


@pytest.fixture(scope="session")
def questionnaire() -> Questionnaire:
    return make_questionnaire()


@pytest.fixture(scope="session")
def layout(questionnaire: Questionnaire) -> FormLayout:
    return prepare_layout(questionnaire, CAMPAIGN)


@pytest.fixture(scope="session")
def long_layout() -> FormLayout:
    return prepare_layout(make_questionnaire(extra_pages=True), CAMPAIGN)
