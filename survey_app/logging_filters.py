"""Keep secrets out of logs: access-log lines carry paths, and /f/<token> paths carry tokens."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

TOKEN_PATH = re.compile(r"/f/(?!ma\b)[A-Za-z0-9_-]{8,}")


class RedactTokens(logging.Filter):
    """Replace form tokens in log messages and their arguments with a placeholder."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "/f/" in record.msg:
            record.msg = TOKEN_PATH.sub("/f/<token>", record.msg)
        if isinstance(record.args, Mapping):  # gunicorn's access log: a dict of atoms
            record.args = {k: _clean(v) for k, v in record.args.items()}
        elif record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            cleaned = tuple(_clean(a) for a in args)
            record.args = cleaned if isinstance(record.args, tuple) else cleaned[0]
        return True


def _clean(value: object) -> object:
    # The substring test first: most atoms of an access-log line hold no path at all.
    if isinstance(value, str) and "/f/" in value:
        return TOKEN_PATH.sub("/f/<token>", value)
    return value


def install() -> None:
    """Attach the filter to the loggers that write request lines (dev server, gunicorn)."""
    for name in ("werkzeug", "gunicorn.access", "gunicorn.error", "survey_app"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
