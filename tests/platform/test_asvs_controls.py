"""Controls the OWASP ASVS 5.0 table in SECURITY.md marks as met and no other test proves.

One behaviour per test, each named as the rule it proves; SECURITY.md cites them by name.
"""
from __future__ import annotations

import json
import logging
import re
import string
import zlib
from base64 import urlsafe_b64decode
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from flask.sessions import SecureCookieSessionInterface

from bankapp import create_app
from bankapp.notifications import outbox
from bankapp.extensions import db, mail
from bankapp.models import Role
from bankapp.platform.logs import HANDLER_NAME
from config import ProductionConfig
from support.users import TEST_PASSWORD, log_in_as
from support.web import csrf_token, post_form

ROOT = Path(__file__).resolve().parents[2]
APP_SOURCES = sorted((ROOT / "bankapp").rglob("*.py"))


def source_hits(pattern: str) -> list[str]:
    found = []
    for path in APP_SOURCES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(pattern, line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


@pytest.fixture
def production_app(production_env):
    production_env.delenv("FLASK_DEBUG", raising=False)
    app = create_app(ProductionConfig)

    def probe():
        return {"remote_addr": request_remote_addr()}

    app.add_url_rule("/_probe", "probe", probe)
    return app


def request_remote_addr():
    from flask import request

    return request.remote_addr


def log_in(client, email="alice@example.com", password=TEST_PASSWORD):
    return post_form(client, "/accounts/login/", {"email": email, "password": password})


def bearer(user) -> dict:
    from bankapp.api.tokens import issue_access_token

    return {"Authorization": f"Bearer {issue_access_token(user)}"}


# ---------------------------------------------------------------- V1 encoding and injection


def test_html_output_escapes_user_supplied_text(client, make_user):
    teller = make_user(role=Role.TELLER)
    person = make_user(first_name="<script>alert(1)</script>", last_name='"><img src=x>')
    log_in_as(client, teller)
    page = client.get(f"/teller/customers/{person.id}/").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    assert "<img src=x>" not in page


def test_search_input_cannot_inject_sql(client, make_user, customer):
    log_in_as(client, make_user(role=Role.TELLER))
    response = client.get("/teller/customers/", query_string={"q": "x' OR '1'='1' --"})
    assert response.status_code == 200
    assert "alice@example.com" not in response.get_data(as_text=True)


# `flask backup`/`restore` run pg_dump and pg_restore: the one module that starts programs.
BACKUP_MODULE = "bankapp/cli/backups.py"


def test_the_app_runs_no_os_commands_outside_the_backup_commands():
    hits = source_hits(r"\b(subprocess|os\.system|os\.popen|os\.exec\w*|os\.spawn\w*)\b")
    assert [hit for hit in hits if not hit.startswith(BACKUP_MODULE + ":")] == []


def test_the_backup_commands_start_programs_without_a_shell():
    source = (ROOT / BACKUP_MODULE).read_text()
    calls = re.findall(r"subprocess\.(\w+)\(", source)
    assert calls == ["run"]  # one place: _run, given an argument list
    assert "shell=" not in source and "os.system" not in source and "os.popen" not in source
    assert re.search(r"def _run\(command: list\[str\]", source)


def test_the_app_never_evaluates_code():
    assert source_hits(r"(?<![\w.])(eval|exec|compile)\(|\bpickle\b|\bmarshal\b") == []


def test_templates_are_never_built_from_strings():
    assert source_hits(r"render_template_string|from_string\(|jinja_env\.from_string") == []


def test_an_email_address_with_a_line_break_sends_no_mail(client, customer):
    with mail.record_messages() as outbox:
        response = post_form(client, "/accounts/password_reset/",
                             {"email": "alice@example.com\r\nBcc: thief@evil.example"})
    assert response.status_code == 200  # the form again, with its error
    assert outbox == []


# ---------------------------------------------------------------- V3 web frontend


def test_hsts_covers_subdomains_in_production(production_app):
    response = production_app.test_client().get("/_probe", base_url="https://bank.example")
    directives = [d.strip().lower() for d in
                  response.headers["Strict-Transport-Security"].split(";")]
    assert "includesubdomains" in directives


def test_no_cors_header_is_sent_to_a_foreign_origin(client, customer):
    headers = {"Origin": "https://evil.example", **bearer(customer)}
    for response in (client.get("/api/v1/accounts", headers=headers),
                     client.options("/api/v1/accounts", headers={
                         "Origin": "https://evil.example",
                         "Access-Control-Request-Method": "POST"})):
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize("url", ["/accounts/login/", "/api/v1/openapi.json",
                                 "/static/favicon.svg", "/no-such-page/", "/api/no-such-thing"])
def test_every_kind_of_response_forbids_mime_sniffing(client, url):
    assert client.get(url).headers["X-Content-Type-Options"] == "nosniff"


# ---------------------------------------------------------------- V4 API and web service


def test_text_responses_declare_utf8(client, customer, funded_account):
    account = funded_account(customer, "10.00")
    log_in_as(client, customer)
    page = client.get("/dashboard/")
    csv = client.get(f"/reports/statement/{account.account_number}/?format=csv")
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert csv.headers["Content-Type"] == "text/csv; charset=utf-8"


def test_api_refuses_plain_http_in_production_without_redirecting(production_app):
    response = production_app.test_client().get("/api/v1/accounts",
                                                base_url="http://bank.example")
    assert response.status_code == 403
    assert "Location" not in response.headers
    assert response.mimetype == "application/problem+json"


def test_api_over_https_is_not_refused_in_production(production_app):
    response = production_app.test_client().get("/api/v1/accounts",
                                                base_url="https://bank.example")
    assert response.status_code == 401  # no token: the API itself answered


def test_client_cannot_spoof_its_address_past_the_trusted_proxy(production_app):
    response = production_app.test_client().get(
        "/_probe", base_url="https://bank.example",
        headers={"X-Forwarded-For": "198.51.100.66, 203.0.113.9"},
        environ_base={"REMOTE_ADDR": "10.0.0.1"})
    # One trusted hop: only the address the proxy appended counts, not what the client sent.
    assert response.get_json() == {"remote_addr": "203.0.113.9"}


# ---------------------------------------------------------------- V6 authentication


PASSWORD_FORMS = [
    ("/accounts/signup/", None),
    ("/accounts/login/", None),
    ("/accounts/password/", "customer"),
]


def _password_inputs(client, url, login_as):
    if login_as:
        log_in_as(client, login_as)
    page = client.get(url).get_data(as_text=True)
    inputs = [tag for tag in re.findall(r"<input[^>]*>", page)
              if re.search(r'name="[a-z_]*password\d?"', tag)]
    assert inputs, url
    return inputs


@pytest.mark.parametrize("url, who", PASSWORD_FORMS)
def test_password_fields_are_masked(client, customer, url, who):
    for tag in _password_inputs(client, url, customer if who else None):
        assert 'type="password"' in tag


@pytest.mark.parametrize("url, who", PASSWORD_FORMS)
def test_password_fields_allow_paste_and_password_managers(client, customer, url, who):
    for tag in _password_inputs(client, url, customer if who else None):
        assert re.search(r'autocomplete="(current|new)-password"', tag), tag
        assert "onpaste" not in tag.lower() and 'autocomplete="off"' not in tag


@pytest.mark.parametrize("typed", [TEST_PASSWORD.upper(), TEST_PASSWORD + " ",
                                   " " + TEST_PASSWORD, TEST_PASSWORD[:-1]])
def test_password_is_verified_exactly_as_typed(client, customer, typed):
    assert log_in(client, password=typed).status_code == 200  # the form again: refused
    assert client.get("/dashboard/").status_code == 302


def test_passwords_never_expire_with_age(client, customer):
    customer.created_at = datetime.now(timezone.utc) - timedelta(days=3 * 365)
    db.session.commit()
    assert log_in(client).headers["Location"].endswith("/dashboard/")


@pytest.mark.parametrize("url", ["/accounts/signup/", "/accounts/password_reset/"])
def test_no_secret_question_or_password_hint_is_asked(client, url):
    page = client.get(url).get_data(as_text=True)
    names = re.findall(r'<(?:input|select|textarea)[^>]*name="([^"]+)"', page)
    assert names and not [n for n in names if re.search(r"question|answer|hint|secret", n)]
    assert not re.search(r"secret question|security question|password hint", page, re.I)


# ---------------------------------------------------------------- V7 sessions


def test_session_tokens_are_random_with_at_least_128_bits(make_user):
    tokens = [make_user().session_token for _ in range(20)]
    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        # URL-safe base64: 6 bits a character, so 22+ characters carry 128+ bits.
        assert set(token) <= set(string.ascii_letters + string.digits + "-_")
        assert len(token) * 6 >= 128


@pytest.mark.parametrize("role, url", [
    (Role.CUSTOMER, "/dashboard/"), (Role.CUSTOMER, "/reports/"),
    (Role.CUSTOMER, "/accounts/password/"), (Role.TELLER, "/teller/"),
    (Role.ADMIN, "/admin/users/"), (Role.ADMIN, "/admin/audit/"),
])
def test_every_logged_in_page_offers_logout(client, make_user, role, url):
    log_in_as(client, make_user(role=role))
    page = client.get(url).get_data(as_text=True)
    assert re.search(r'<form[^>]*method="post"[^>]*action="/accounts/logout/"'
                     r'|<form[^>]*action="/accounts/logout/"[^>]*method="post"', page, re.I)


# ---------------------------------------------------------------- V11 cryptography


def _sha1_signed_session(app, data: dict) -> str:
    return SecureCookieSessionInterface().get_signing_serializer(app).dumps(data)


def test_a_session_cookie_signed_with_hmac_sha1_is_refused(app, client, customer):
    log_in_as(client, customer)
    with client.session_transaction() as session:
        contents = dict(session)
    legacy = app.test_client()
    legacy.set_cookie("session", _sha1_signed_session(app, contents))
    assert legacy.get("/dashboard/").status_code == 302
    # The same contents signed the app's way (HMAC-SHA-256) are accepted.
    assert client.get("/dashboard/").status_code == 200


def test_production_argon2_parameters_meet_owasp_minimums():
    # OWASP Password Storage Cheat Sheet, argon2id: m >= 19 MiB with t >= 2, p = 1.
    assert ProductionConfig.ARGON2_MEMORY_COST >= 19 * 1024
    assert ProductionConfig.ARGON2_TIME_COST >= 2
    assert ProductionConfig.ARGON2_PARALLELISM >= 1


# ---------------------------------------------------------------- V13 configuration


def test_source_control_metadata_is_not_served(client):
    for url in ("/.git/HEAD", "/.git/config", "/static/../.git/HEAD", "/static/.git/HEAD"):
        assert client.get(url).status_code == 404, url


def test_static_folder_has_no_directory_listing(client):
    for url in ("/static/", "/static/css/"):
        assert client.get(url).status_code == 404, url


def test_trace_method_is_not_supported(client):
    for url in ("/", "/accounts/login/", "/api/v1/accounts"):
        assert client.open(url, method="TRACE").status_code == 405, url


def test_production_ignores_flask_debug(production_env):
    production_env.setenv("FLASK_DEBUG", "1")
    app = create_app(ProductionConfig)
    assert app.debug is False


# ---------------------------------------------------------------- V14 data protection


def test_api_ignores_an_access_token_in_the_query_string(client, customer):
    from bankapp.api.tokens import issue_access_token

    token = issue_access_token(customer)
    for name in ("access_token", "token", "jwt"):
        response = client.get("/api/v1/accounts", query_string={name: token})
        assert response.status_code == 401, name


def test_logout_clears_site_data(client, customer):
    log_in(client)
    response = client.post("/accounts/logout/", data={"csrf_token": csrf_token(client, "/dashboard/")})
    assert response.status_code == 302
    assert '"cache"' in response.headers["Clear-Site-Data"]
    assert '"storage"' in response.headers["Clear-Site-Data"]


def _cookie_contents(value: str) -> dict:
    # itsdangerous: "<payload>.<time>.<sig>", or ".<zlib payload>.<time>.<sig>"
    compressed = value.startswith(".")
    payload = value.lstrip(".").split(".")[0]
    raw = urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return json.loads(zlib.decompress(raw) if compressed else raw)


def test_session_cookie_holds_only_session_data(client, customer):
    log_in(client)
    client.get("/dashboard/")
    contents = _cookie_contents(client.get_cookie("session").value)
    allowed = {"_user_id", "_fresh", "_id", "auth_at", "seen_at", "csrf_token", "_flashes",
               "_permanent", "sid"}
    assert set(contents) <= allowed
    assert TEST_PASSWORD not in json.dumps(contents)
    assert customer.email not in json.dumps(contents)


# ---------------------------------------------------------------- V15 secure coding


def test_every_dependency_is_pinned():
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-r"):
                assert re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[\w.]+", line), line


def test_a_query_parameter_cannot_override_a_posted_field(client, customer, funded_account):
    from decimal import Decimal

    account = funded_account(customer)
    log_in_as(client, customer)
    url = f"/accounts/{account.account_number}/deposit/"
    page = client.get(url).get_data(as_text=True)
    from support.web import form_fields

    fields = {**form_fields(page), "amount": "10.00", "description": "body"}
    response = client.post(url + "?amount=999.00&description=query", data=fields)
    assert response.status_code == 302
    db.session.refresh(account)
    assert account.balance == Decimal("10.00")


# ---------------------------------------------------------------- V16 logging


def _app_log_line(message: str, *args) -> str:
    handler = next(h for h in logging.getLogger().handlers if h.name == HANDLER_NAME)
    record = logging.getLogger("bankapp.test").makeRecord(
        "bankapp.test", logging.WARNING, __file__, 1, message, args, None)
    return handler.format(record)


def test_log_timestamps_are_utc(app):
    line = _app_log_line("hello")
    stamp = line.split(" ", 1)[0]
    when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert abs(datetime.now(timezone.utc) - when) < timedelta(minutes=1)


def test_line_breaks_in_logged_values_cannot_forge_a_record(app):
    forged = "/x\n2030-01-01T00:00:00.000Z INFO bankapp.identity: user 1 logged in\rok"
    lines = _app_log_line("unhandled error on GET %s", forged).split("\n")
    assert all(line.startswith(" ") for line in lines[1:])
    assert "\r" not in "".join(lines)


def test_unhandled_error_is_logged_with_its_traceback(app, client, caplog):
    def broken():
        raise RuntimeError("boom for the log")

    app.add_url_rule("/_broken_logged", "broken_logged", broken)
    with caplog.at_level(logging.ERROR, logger="bankapp"):
        assert client.get("/_broken_logged").status_code == 500
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "/_broken_logged" in record.getMessage()
    assert record.exc_info and "boom for the log" in str(record.exc_info[1])


def test_emailed_links_are_signed_with_hmac_sha256(app, customer):
    # V11.4.1: a reset token signed with HMAC-SHA-1 (itsdangerous' own default) is refused.
    import hashlib

    from itsdangerous import URLSafeTimedSerializer

    from bankapp.identity.security import (RESET_PASSWORD_SALT, _password_fingerprint, load_reset_token,
                                  make_reset_token)

    payload = {"uid": customer.id, "pw": _password_fingerprint(customer)}
    sha1 = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=RESET_PASSWORD_SALT,
                                  signer_kwargs={"digest_method": hashlib.sha1})
    assert load_reset_token(sha1.dumps(payload)) is None
    assert load_reset_token(make_reset_token(customer)) == customer


def test_production_without_a_mail_server_never_logs_an_emailed_link(production_env, caplog):
    # V16.2.5: the development convenience of logging unsent emails would put reset links,
    # which take over an account, in production's logs.
    from bankapp.models import User
    from bankapp.identity.security import hash_password

    app = create_app(ProductionConfig)
    app.config.update(MAIL_SERVER="", WTF_CSRF_ENABLED=False)
    with app.app_context():
        db.create_all()
        db.session.add(User(email="victim@example.com", role=Role.CUSTOMER, is_verified=True,
                            password_hash=hash_password(TEST_PASSWORD)))
        db.session.commit()
        with caplog.at_level("INFO", logger="bankapp"):
            response = app.test_client().post(
                "/accounts/password_reset/", data={"email": "victim@example.com"},
                base_url="https://bank.example", headers={"X-Forwarded-Proto": "https"})
            # The mail worker's pass refuses to run (flask deliver-mail exits 1).
            with pytest.raises(outbox.MailServerMissing, match="MAIL_SERVER is not set"):
                outbox.deliver()
        db.engine.dispose()
    assert response.status_code == 302
    assert "/accounts/reset/" not in caplog.text


def _csrf_pair(client) -> tuple[str, str]:
    """(the CSRF token the login form carries, the raw value it signs in the session)."""
    token = csrf_token(client, "/accounts/login/")
    with client.session_transaction() as session:
        return token, session["csrf_token"]


def test_csrf_tokens_are_signed_with_hmac_sha256(app, client):
    # V11.2.3 / V11.4.1: Flask-WTF signs with itsdangerous, whose default is HMAC-SHA-1.
    import hashlib

    from itsdangerous import URLSafeTimedSerializer

    token, raw = _csrf_pair(client)
    sha256 = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="wtf-csrf-token",
                                    signer_kwargs={"digest_method": hashlib.sha256})
    assert sha256.loads(token) == raw


def test_a_csrf_token_signed_with_hmac_sha1_is_refused(app, client, customer):
    import hashlib

    from itsdangerous import URLSafeTimedSerializer

    _, raw = _csrf_pair(client)
    sha1 = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="wtf-csrf-token",
                                  signer_kwargs={"digest_method": hashlib.sha1})
    response = client.post("/accounts/login/", data={
        "csrf_token": sha1.dumps(raw), "email": customer.email, "password": TEST_PASSWORD})
    assert response.status_code == 400
