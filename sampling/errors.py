"""The root exception of the sampling core."""

from __future__ import annotations


class SamplingError(ValueError):
    """Invalid input to the sampling core (bad frame, quota, allocation or seed)."""
