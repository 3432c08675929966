"""Sign-in and sign-out."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from ..extensions import db
from ..models import AuditAction, Role, User
from ..ratelimit import enforce
from ..services.audit import audit
from .access import local_target

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    """Username and password."""

    username = StringField("Tên đăng nhập", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Mật khẩu", validators=[DataRequired(), Length(max=256)])


def home_for(user: User) -> str:
    """Where a user lands after signing in."""
    return {
        Role.ADMIN: url_for("admin.index"),
        Role.ANALYST: url_for("admin.index"),
        Role.UPLOADER: url_for("admin.index"),
        Role.ENUMERATOR: url_for("admin.index"),
    }[user.role]


@bp.route("/")
def index():
    """Landing page: signed-in users go to their home, others to the sign-in page."""
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    return redirect(url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in (rate-limited per client)."""
    form = LoginForm()
    if form.validate_on_submit():
        cfg = current_app.config
        enforce("login", cfg["LOGIN_LIMIT"], cfg["LOGIN_WINDOW"],
                "Bạn đã đăng nhập sai quá nhiều lần. Vui lòng thử lại sau ít phút.")
        user = db.session.scalar(select(User).where(User.username == form.username.data.strip()))
        if user and user.active and user.check_password(form.password.data):
            login_user(user)
            audit(AuditAction.LOGIN, user=user)
            db.session.commit()
            return redirect(local_target(request.args.get("next")) or home_for(user))
        audit(AuditAction.LOGIN_FAILED, user=None)
        db.session.commit()
        flash("Tên đăng nhập hoặc mật khẩu không đúng.", "error")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout():
    """Sign out (POST with CSRF token)."""
    logout_user()
    return redirect(url_for("auth.login"))
