"""Creating users."""

from __future__ import annotations

import re

from sqlalchemy import select

from ..errors import Conflict, SurveyError
from ..extensions import db
from ..models import AuditAction, Role, Unit, User
from .audit import audit

USERNAME = re.compile(r"^[a-z0-9_.-]{3,64}$")


def create_user(username: str, password: str, role: Role, *, full_name: str = "",
                unit_codes: list[str] | None = None, scheme: str | None = None) -> User:
    """Create a user scoped to units (by code); uploaders and enumerators need at least one."""
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise SurveyError("Tên đăng nhập chỉ gồm chữ thường không dấu, số, '.', '_' hoặc '-' "
                          "(3–64 ký tự).")
    if len(password) < 8:
        raise SurveyError("Mật khẩu phải có ít nhất 8 ký tự.")
    if db.session.scalar(select(User.id).where(User.username == username)):
        raise Conflict(f"Tên đăng nhập {username} đã tồn tại.")
    units = []
    for code in unit_codes or []:
        stmt = select(Unit).where(Unit.code == code)
        if scheme:
            stmt = stmt.where(Unit.scheme == scheme)
        found = db.session.scalars(stmt).all()
        if len(found) != 1:
            raise SurveyError(f"Không xác định được đơn vị có mã {code}.")
        units.append(found[0])
    if role in (Role.UPLOADER, Role.ENUMERATOR) and not units:
        raise SurveyError("Tài khoản đơn vị và điều tra viên phải gắn với ít nhất một đơn vị.")
    user = User(username=username, full_name=full_name, role=role, units=units)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    audit(AuditAction.USER_CREATED, target=f"user:{user.id}", role=role.value)
    return user
