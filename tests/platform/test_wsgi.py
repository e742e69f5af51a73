"""wsgi.py, the entry of every host: a production app missing its settings on Vercel answers 500
with the reason in the log; elsewhere it refuses to start. `make vercel-check` shows the same
through the built function and Vercel's own Python runtime."""
from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from werkzeug.test import Client

WSGI = Path(__file__).resolve().parents[2] / "wsgi.py"


@pytest.fixture
def unconfigured_production(monkeypatch):
    for name in ("BANKAPP_ENV", "FLASK_ENV", "SECRET_KEY", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/x")
    return monkeypatch


def test_outside_vercel_a_missing_setting_stops_the_process(unconfigured_production):
    unconfigured_production.delenv("VERCEL", raising=False)
    unconfigured_production.setenv("BANKAPP_ENV", "production")
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(WSGI))
    assert "SECRET_KEY" in stopped.value.code


@pytest.mark.parametrize("path, content_type", [("/accounts/login/", "text/html"),
                                                ("/api/v1/token", "application/problem+json")])
def test_on_vercel_a_missing_setting_answers_500_and_logs_its_name(
        unconfigured_production, capfd, path, content_type):
    unconfigured_production.setenv("VERCEL", "1")  # production is then the default
    app = runpy.run_path(str(WSGI))["app"]
    started = capfd.readouterr().err
    assert "refusing to start in production without SECRET_KEY" in started

    response = Client(app).get(path)
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith(content_type)
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_data(as_text=True)
    for leak in ("Traceback", "SECRET_KEY", "sys.exit", "File \""):
        assert leak not in body
    logged = capfd.readouterr().err
    assert "SECRET_KEY" in logged and f"answered 500 to GET {path}" in logged
