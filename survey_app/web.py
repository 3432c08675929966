"""Blueprint registration, security headers and the one error handler."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .errors import SurveyError

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'; frame-ancestors 'none'"
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

    @app.after_request
    def security_headers(response):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if app.config.get("SESSION_COOKIE_SECURE"):
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        if "Cache-Control" not in response.headers and response.mimetype == "text/html":
            response.headers["Cache-Control"] = "no-store"
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
