"""Column helpers shared by the models."""

from __future__ import annotations

import datetime as dt
from enum import Enum

from sqlalchemy import JSON, DateTime
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects.postgresql import JSONB


def enum_column(enum_cls: type[Enum], length: int = 32) -> SAEnum:
    """Store an enum by its value as a VARCHAR (no native enum: same schema on every engine)."""
    return SAEnum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


JSONType = JSON().with_variant(JSONB(), "postgresql")
UTCDateTime = DateTime(timezone=True)


def utcnow() -> dt.datetime:
    """Timezone-aware now in UTC."""
    return dt.datetime.now(dt.UTC)
