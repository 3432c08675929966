"""The package's root exception, translated to an HTTP status and a Vietnamese message."""

from __future__ import annotations


class SurveyError(Exception):
    """A user-caused error: carries a Vietnamese message and the HTTP status that fits."""

    status = 400
    code = "error"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 details: list | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.details = details or []


class NotFound(SurveyError):
    """A thing that does not exist, or that the user may not know exists."""

    status = 404
    code = "not_found"


class Forbidden(SurveyError):
    """The user is known but may not do this."""

    status = 403
    code = "forbidden"


class Conflict(SurveyError):
    """The request clashes with the current state (e.g. redraw after fieldwork started)."""

    status = 409
    code = "conflict"


class TooManyRequests(SurveyError):
    """A rate limit was hit."""

    status = 429
    code = "rate_limited"
