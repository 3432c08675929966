"""SQLAlchemy 2.0 typed models, one module per aggregate."""

from .analysis import ScoreSnapshot  # noqa: F401
from .campaigns import Campaign, CampaignGroup, CampaignStatus, Draw, RatedUnit, Stratum
from .fieldwork import RESERVE_RELEASING, AccessToken, Assignment, Outcome
from .frames import (
    BatchStatus,
    FrameEntry,
    FramePack,
    ImportBatch,
    ImportIssue,
    IssueSeverity,
    PhoneKind,
)
from .ops import AuditAction, AuditEntry, BackgroundJob, JobKind, JobStatus, RateLimitHit
from .responses import Answer, FormDraft, PaperEntry, Response, ResponseLink, ResponseSource
from .units import Unit, UnitLevel
from .users import Role, User, user_units

__all__ = [
    "RESERVE_RELEASING", "AccessToken", "Answer", "Assignment", "AuditAction", "AuditEntry",
    "BackgroundJob", "BatchStatus", "Campaign", "CampaignGroup", "CampaignStatus", "Draw",
    "FormDraft", "FrameEntry", "FramePack", "ImportBatch", "ImportIssue", "IssueSeverity",
    "JobKind", "JobStatus", "Outcome", "PaperEntry", "PhoneKind", "RateLimitHit", "RatedUnit",
    "Response", "ResponseLink", "ResponseSource", "Role", "Stratum", "Unit", "UnitLevel",
    "User", "user_units",
]
