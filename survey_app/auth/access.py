"""Role checks and unit scoping shared by every blueprint."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps

from flask import Flask
from flask_login import current_user, login_required
from sqlalchemy import select

from ..errors import Forbidden, NotFound
from ..extensions import db
from ..models import Role, Unit, User


def roles_required(*roles: Role) -> Callable:
    """View decorator: signed in and holding one of `roles` (403 otherwise)."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                raise Forbidden("Bạn không có quyền thực hiện chức năng này.")
            return view(*args, **kwargs)

        return wrapped

    return decorate


def descendants(unit_ids: Iterable[int]) -> set[int]:
    """The units and every unit below them in the tree (level by level; trees are shallow)."""
    found = set(unit_ids)
    frontier = set(found)
    while frontier:
        children = set(db.session.scalars(select(Unit.id).where(Unit.parent_id.in_(frontier))))
        frontier = children - found
        found |= frontier
    return found


def unit_scope(user: User) -> set[int] | None:
    """Unit ids the user may act on; None means every unit (administrators, analysts)."""
    if user.role in (Role.ADMIN, Role.ANALYST):
        return None
    return descendants(u.id for u in user.units)


def check_unit(user: User, unit_id: int) -> None:
    """404 for a unit outside the user's scope: it must not learn that the unit exists."""
    scope = unit_scope(user)
    if scope is not None and unit_id not in scope:
        raise NotFound("Không tìm thấy đơn vị này trong phạm vi của bạn.")


def local_target(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None: "next" parameters must not send a
    user to another site ("//host", "/\\host" and absolute URLs are refused)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if any(c in target for c in "\r\n\\"):
        return None
    return target


def register_template_helpers(app: Flask) -> None:
    """Expose Role to templates so navigation can depend on it."""

    @app.context_processor
    def inject_roles():
        return {"Role": Role}
