"""App factory, configuration, security headers, sign-in, CSRF and error pages."""

from __future__ import annotations

import pytest
from helpers import csrf_from, login, make_user

from survey_app import create_app
from survey_app.config import DEMO_SECRET_KEY


def test_production_refuses_demo_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("SURVEY_ENV", "production")
    monkeypatch.setenv("SURVEY_SECRET_KEY", DEMO_SECRET_KEY)
    with pytest.raises(RuntimeError, match="demo secret key"):
        create_app(instance_path=str(tmp_path))
    monkeypatch.setenv("SURVEY_SECRET_KEY", "a-real-secret-of-enough-length")
    monkeypatch.setenv("SURVEY_DATABASE_URL", f"sqlite:///{tmp_path / 'p.db'}")
    app = create_app(instance_path=str(tmp_path))
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_instance_config_and_environment_override(tmp_path, monkeypatch):
    (tmp_path / "config.py").write_text("SHORT_CODE_LIMIT = 3\nPUBLIC_BASE_URL = 'https://a.vn'\n")
    monkeypatch.setenv("SURVEY_PUBLIC_BASE_URL", "https://b.vn")
    app = create_app(instance_path=str(tmp_path))
    assert app.config["SHORT_CODE_LIMIT"] == 3
    assert app.config["PUBLIC_BASE_URL"] == "https://b.vn"
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'survey.db'}"


@pytest.mark.parametrize("path", ["/login", "/khong-co-trang-nay"])
def test_security_headers_on_pages_and_errors(client, path):
    response = client.get(path)
    assert response.status_code in (200, 404)
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_staff_forms_work_over_https(client):
    """Over HTTPS Flask-WTF refuses a POST without a same-site Referer; staff pages let the
    browser send one (same-origin), and a POST without it is still refused."""
    from helpers import csrf_from, make_user

    make_user("quantri", "admin")
    page = client.get("/login", base_url="https://localhost")
    assert page.headers["Referrer-Policy"] == "same-origin"
    form = {"username": "quantri", "password": "password-123",
            "csrf_token": csrf_from(page.get_data(as_text=True))}
    refused = client.post("/login", data=form, base_url="https://localhost")
    assert refused.status_code == 400
    signed_in = client.post("/login", data=form, base_url="https://localhost",
                            headers={"Referer": "https://localhost/login"})
    assert signed_in.status_code == 302 and "/login" not in signed_in.headers["Location"]


def test_not_found_page_is_vietnamese(client):
    response = client.get("/khong-co-trang-nay")
    assert response.status_code == 404
    assert "Không tìm thấy" in response.get_data(as_text=True)


def test_login_logout_and_wrong_password(client):
    make_user("quantri", "admin")
    bad = login(client, "quantri", "sai-mat-khau")
    assert bad.status_code == 401
    assert "không đúng" in bad.get_data(as_text=True)
    ok = login(client, "quantri", "password-123")
    assert ok.status_code == 302
    page = client.get("/admin/users")
    assert page.status_code == 200 and "quantri" in page.get_data(as_text=True)
    token = csrf_from(page.get_data(as_text=True))
    client.post("/logout", data={"csrf_token": token})
    assert client.get("/admin/users").status_code == 302  # back to the login page


def test_login_without_csrf_is_rejected(client):
    make_user("quantri", "admin")
    response = client.post("/login", data={"username": "quantri", "password": "password-123"})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert client.get("/admin/users").status_code == 302


def test_login_is_rate_limited(client, app_ctx):
    app_ctx.config["LOGIN_LIMIT"] = 3
    try:
        make_user("quantri", "admin")
        statuses = [login(client, "quantri", "sai").status_code for _ in range(5)]
    finally:
        app_ctx.config["LOGIN_LIMIT"] = 10
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3:] == [429, 429]


def test_passwords_are_hashed_with_a_kdf(app_ctx):
    user = make_user("quantri", "admin")
    assert user.password_hash.startswith("scrypt:")
    assert "password-123" not in user.password_hash


def test_tokens_never_reach_the_logs(caplog):
    import logging

    from survey_app.logging_filters import install

    install()
    token = "efTqB3hk3s5w98mdv5WFxQ"
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        logging.getLogger("werkzeug").info('%s - - "%s" %s', "127.0.0.1",
                                           f"GET /f/{token} HTTP/1.1", "200")
        logging.getLogger("werkzeug").info(f"POST /f/{token}?x=1")
    # gunicorn's access log passes a dict of atoms (path, query, referer...).
    with caplog.at_level(logging.INFO, logger="gunicorn.access"):
        logging.getLogger("gunicorn.access").info('%(h)s "%(r)s" %(s)s "%(f)s"', {
            "h": "10.0.0.1", "r": f"GET /f/{token} HTTP/1.1", "s": "200",
            "f": f"https://khaosat.vn/f/{token}"})
    text = caplog.text
    assert token not in text
    assert text.count("/f/<token>") == 4
