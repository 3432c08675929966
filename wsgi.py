"""WSGI entry point for gunicorn: `gunicorn wsgi:app`."""

from survey_app import create_app

app = create_app()
