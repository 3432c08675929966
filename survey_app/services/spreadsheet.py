"""Spreadsheet safety shared by every export (the rule itself lives in the pure printing
core, which writes the postal manifests)."""

from __future__ import annotations

from printing.postal import FORMULA_START as FORMULA_PREFIXES
from printing.postal import neutralise_cell

__all__ = ["FORMULA_PREFIXES", "neutralise", "neutralise_cell"]


def neutralise(value: object) -> object:
    """Text starting like a formula gets a leading apostrophe so Excel shows it as text."""
    return neutralise_cell(value) if isinstance(value, str) else value
