"""Blueprint registration, security headers and the one error handler."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .errors import SurveyError
from .logging_filters import TOKEN_PATH

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'; frame-ancestors 'none'"
)
# Referrer-Policy: pages whose URL holds a form token send no Referer at all (not even to this
# site, whose access log would then hold the token); every other page sends its own URL to
# this site only, because Flask-WTF refuses an HTTPS POST without a same-site Referer
# (WTF_CSRF_SSL_STRICT), so with "no-referrer" everywhere no staff form worked over HTTPS.
# On every response (replacing any a view set); HSTS too when cookies are secure.
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)

HTTP_MESSAGES = {
    400: "Yêu cầu không hợp lệ.",
    403: "Bạn không có quyền truy cập trang này.",
    404: "Không tìm thấy trang hoặc dữ liệu yêu cầu.",
    405: "Phương thức không được hỗ trợ.",
    409: "Yêu cầu xung đột với trạng thái hiện tại.",
    413: "Tệp tải lên vượt quá dung lượng cho phép.",
    429: "Bạn thao tác quá nhanh. Vui lòng thử lại sau ít phút.",
    500: "Đã có lỗi hệ thống. Vui lòng thử lại sau.",
}


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with its serializer built once per secret key instead
    of twice a request (it is stateless: same keys, salt and signer settings)."""

    _cached: tuple = ((), None)

    def get_signing_serializer(self, app: Flask):
        """The serializer of the app's current secret key (and fallbacks)."""
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cached_keys, serializer = self._cached
        if cached_keys != keys:
            serializer = super().get_signing_serializer(app)
            self._cached = (keys, serializer)
        return serializer


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def error_response(status: int, message: str, code: str = "error", details=None):
    """Render an error as JSON for the API, as a Vietnamese page otherwise."""
    if _wants_json():
        body = {"error": code, "message": message}
        if details:
            body["details"] = details
        return jsonify(body), status
    return render_template("errors/error.html", status=status, message=message,
                           details=details or []), status


def register_web(app: Flask) -> None:
    """Attach blueprints, headers and error handlers."""
    from .admin import bp as admin_bp
    from .analysis import bp as analysis_bp
    from .api import bp as api_bp
    from .auth import bp as auth_bp
    from .auth.access import register_template_helpers
    from .draws import bp as draws_bp
    from .fieldwork import bp as fieldwork_bp
    from .frames import bp as frames_bp
    from .printouts import bp as printouts_bp
    from .respondent import bp as respondent_bp

    for blueprint in (auth_bp, admin_bp, frames_bp, draws_bp, printouts_bp, fieldwork_bp,
                      respondent_bp, analysis_bp, api_bp):
        app.register_blueprint(blueprint)
    register_template_helpers(app)
    app.session_interface = SessionInterface()

    hsts = ("Strict-Transport-Security", "max-age=31536000")

    @app.after_request
    def security_headers(response):
        # Appended after one pass over the few headers a response has: setting them one by
        # one scans the growing list each time (a tenth of a small request's CPU).
        headers = response.headers
        present = {name.lower() for name, _ in headers}
        referrer = ("Referrer-Policy",
                    "no-referrer" if TOKEN_PATH.match(request.path) else "same-origin")
        fixed = [*SECURITY_HEADERS, referrer]
        if app.config.get("SESSION_COOKIE_SECURE"):
            fixed.append(hsts)
        for name, value in fixed:
            if name.lower() in present:
                headers[name] = value  # ours wins, as before
            else:
                headers.add(name, value)
        if "cache-control" not in present and response.mimetype == "text/html":
            headers.add("Cache-Control", "no-store")
        return response

    @app.errorhandler(SurveyError)
    def survey_error(exc: SurveyError):
        from .extensions import db

        db.session.rollback()
        return error_response(exc.status, exc.message, exc.code, exc.details)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return error_response(400, "Phiên làm việc đã hết hạn hoặc biểu mẫu không hợp lệ "
                                   "(thiếu mã CSRF). Vui lòng tải lại trang và thử lại.", "csrf")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        return error_response(status, HTTP_MESSAGES.get(status, exc.description or ""),
                              exc.name.lower().replace(" ", "_"))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        from .extensions import db

        db.session.rollback()
        app.logger.exception("unhandled error on %s", request.endpoint)
        return error_response(500, HTTP_MESSAGES[500], "internal")
