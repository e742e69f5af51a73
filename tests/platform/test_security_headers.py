"""Security headers outside production, and error pages that never show a stack trace."""
from __future__ import annotations

import threading

import pytest

from support.database import POSTGRES

REQUIRED_CSP_DIRECTIVES = {
    "default-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}


def _csp(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    directives = [part.strip().split(None, 1) for part in policy.split(";") if part.strip()]
    return {name: (value[0] if value else "") for name, *value in directives}


@pytest.mark.parametrize("directive, value", sorted(REQUIRED_CSP_DIRECTIVES.items()))
def test_csp_sets_directive(client, directive, value):
    assert _csp(client.get("/accounts/login/"))[directive] == value


def test_csp_allows_no_inline_code(client):
    policy = client.get("/accounts/login/").headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy


def test_responses_forbid_mime_sniffing(client):
    assert client.get("/accounts/login/").headers["X-Content-Type-Options"] == "nosniff"


def test_responses_carry_a_strict_referrer_policy(client):
    policy = client.get("/accounts/login/").headers["Referrer-Policy"]
    assert policy in {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}


def test_pages_cannot_be_framed(client):
    assert client.get("/accounts/login/").headers["X-Frame-Options"] == "DENY"


def test_testing_sends_no_hsts(client):
    response = client.get("/accounts/login/", base_url="https://localhost")
    assert "Strict-Transport-Security" not in response.headers


def test_testing_does_not_redirect_plain_http(client):
    response = client.get("/accounts/login/", base_url="http://localhost")
    assert response.status_code == 200


def test_testing_session_cookie_is_httponly_lax(client, customer):
    from support.users import log_in_as

    log_in_as(client, customer)
    cookie = client.get("/dashboard/").headers.get("Set-Cookie", "")
    # The test client rewrites the cookie only when the session changed; force it to.
    if not cookie:
        with client.session_transaction() as session:
            session["touch"] = 1
        cookie = client.get("/dashboard/").headers.get("Set-Cookie", "")
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes


# ---------------------------------------------------------------- error pages


def test_unknown_page_is_a_404_in_the_site_layout(client):
    response = client.get("/no-such-page/")
    body = response.get_data(as_text=True)
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert '<nav class="nav"' in body
    assert "We could not find that page." in body


def test_wrong_method_is_a_405_in_the_site_layout(client):
    response = client.get("/accounts/logout/")
    body = response.get_data(as_text=True)
    assert response.status_code == 405
    assert '<nav class="nav"' in body
    assert "405" in body


def test_crashing_view_shows_a_500_page_without_traceback(app, client):
    def broken_view():
        raise RuntimeError("secret internals: connection string postgres://leak")

    app.add_url_rule("/_broken", "broken", broken_view)
    response = client.get("/_broken")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert '<nav class="nav"' in body
    assert "Something went wrong on our side" in body
    assert "Traceback" not in body
    assert "secret internals" not in body
    assert "RuntimeError" not in body


def test_api_404_answers_json_problem_details(client):
    response = client.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    problem = response.get_json(force=True)
    assert problem["status"] == 404
    assert problem["title"] == "Not Found"
    assert "<html" not in response.get_data(as_text=True)


def test_api_crash_answers_json_problem_details_without_traceback(app, client):
    def broken_api():
        raise RuntimeError("secret internals")

    app.add_url_rule("/api/_broken", "broken_api", broken_api)
    response = client.get("/api/_broken")
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert "secret internals" not in response.get_data(as_text=True)


def test_unreachable_database_is_a_503_not_a_500(app):
    """A database outage answers 'try again' (503 with Retry-After), in HTML and in JSON."""
    import sqlalchemy as sa

    def query_a_dead_database():
        engine = sa.create_engine("postgresql+psycopg2://nobody@127.0.0.1:1/x")
        with engine.connect():
            pass

    app.add_url_rule("/dead-db/", "dead_db", query_a_dead_database)
    app.add_url_rule("/api/v1/dead-db", "dead_db_api", query_a_dead_database)
    client = app.test_client()
    page = client.get("/dead-db/")
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    assert "briefly unavailable" in page.get_data(as_text=True)
    api = client.get("/api/v1/dead-db")
    assert api.status_code == 503 and api.mimetype == "application/problem+json"


@pytest.mark.skipif(not POSTGRES,
                    reason="closes a live PostgreSQL connection under the session")
def test_a_connection_lost_mid_request_is_a_503(app):
    """PostgreSQL restarting under a request: the query fails on the dead connection, nothing
    was written, and the answer is 'try again' (503), not a 500."""
    import sqlalchemy as sa

    from bankapp.extensions import db

    def lose_the_connection_mid_transaction():
        db.session.execute(sa.text("SELECT 1"))  # a transaction is open on a connection
        db.session.connection().connection.dbapi_connection.close()
        db.session.execute(sa.text("SELECT 2"))  # raises: the connection is gone

    app.add_url_rule("/api/v1/lost-db", "lost_db_api", lose_the_connection_mid_transaction)
    response = app.test_client().get("/api/v1/lost-db")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.mimetype == "application/problem+json"


@pytest.mark.skipif(not POSTGRES,
                    reason="closes a live PostgreSQL connection under the session")
def test_a_connection_lost_after_the_answer_is_ready_still_serves_it(app):
    """PostgreSQL restarting just after a read: the answer was built from what was read, and
    the end-of-request rollback on the dead connection must not turn it into a 500."""
    import sqlalchemy as sa

    from bankapp.extensions import db

    def read_then_lose_the_connection():
        value = db.session.execute(sa.text("SELECT 41 + 1")).scalar_one()
        db.session.connection().connection.dbapi_connection.close()
        return {"value": value}

    app.add_url_rule("/api/v1/read-then-lost", "read_then_lost", read_then_lose_the_connection)
    outcome = {}

    def serve():
        # A thread has no app context yet, so the request gets its own and ends it, with its
        # teardown, as under gunicorn (the test's own context would otherwise be reused).
        try:
            outcome["response"] = app.test_client().get("/api/v1/read-then-lost")
        except Exception as error:  # what gunicorn would turn into a 500
            outcome["error"] = error

    worker = threading.Thread(target=serve)
    worker.start()
    worker.join(timeout=30)
    assert "error" not in outcome, outcome.get("error")
    response = outcome["response"]
    assert response.status_code == 200 and response.get_json() == {"value": 42}


# ---------------------------------------------------------------- headers worked out once


def talismans_own_headers(app, path: str, base_url: str) -> list[tuple[str, str]]:
    """The headers Flask-Talisman itself would set on an answer to this request."""
    import flask_talisman
    from flask import Response

    from bankapp.extensions import talisman

    bare = {name for name, _ in Response().headers}
    with app.test_request_context(path, base_url=base_url):
        headers = flask_talisman.Talisman._set_response_headers(talisman, Response()).headers
        return [(name, value) for name, value in headers if name not in bare]


def talisman_header_names(app) -> set[str]:
    return {name for name, _ in talismans_own_headers(app, "/", "https://localhost")} | {
        "Strict-Transport-Security"}


@pytest.mark.parametrize("path", ["/accounts/login/", "/api/v1/accounts", "/api/docs"])
@pytest.mark.parametrize("base_url", ["http://localhost", "https://localhost"])
def test_every_answer_has_talismans_own_headers(app, client, path, base_url):
    expected = talismans_own_headers(app, path, base_url)
    for _ in range(2):  # the first answer works them out, the second reuses them
        response = client.get(path, base_url=base_url)
        names = talisman_header_names(app)
        assert [(k, v) for k, v in response.headers if k in names] == expected


def test_production_answers_have_talismans_own_headers_with_hsts(production_env):
    from bankapp import create_app
    from config import ProductionConfig

    app = create_app(ProductionConfig)
    expected = talismans_own_headers(app, "/accounts/login/", "https://bank.example")
    assert "Strict-Transport-Security" in dict(expected)
    for _ in range(2):
        response = app.test_client().get("/accounts/login/", base_url="https://bank.example")
        names = talisman_header_names(app)
        assert [(k, v) for k, v in response.headers if k in names] == expected


def test_a_view_with_its_own_talisman_options_still_gets_them(app, client):
    from bankapp.extensions import talisman

    app.add_url_rule("/_framable", "framable",
                     talisman(frame_options="SAMEORIGIN")(lambda: "framable"))
    client.get("/accounts/login/")  # the fixed headers are worked out
    assert client.get("/_framable").headers["X-Frame-Options"] == "SAMEORIGIN"
    assert client.get("/accounts/login/").headers["X-Frame-Options"] == "DENY"
