"""What the image writes to its log, read whole after a customer's full journey.

The server is started with the Dockerfile's own command line (gunicorn with the repository's
``gunicorn.conf.py``; only the bind address changes) in the production configuration, on a
fresh migrated PostgreSQL database, sending its email to a local SMTP sink. A customer signs
up, confirms the address from the email, logs in, transfers money, asks for a reset and sets
a new password from the emailed link. Then every line the server wrote (stdout and stderr)
is read: each must be JSON, each request must have its one line with its request id, and
nothing may carry an email address, a token, a password or a cookie.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url

from config import normalize_database_url
from support.database import POSTGRES, SERVER_URL, migrate
from support.net import free_port, serving
from support.settings import FIELD_ENCRYPTION_KEY, PRODUCTION_SECRET, PUBLIC_URL
from support.web import form_fields

pytestmark = pytest.mark.skipif(not POSTGRES, reason="production refuses SQLite: needs "
                                "TEST_DATABASE_URL (PostgreSQL)")

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "journey.customer@example.com"
PASSWORD = "tangerine-orbit-kettle-42"
NEW_PASSWORD = "quiet-harbour-lantern-77"
# Anything shaped like an email address (the JSON formatter writes [email] instead).
ADDRESS = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def image_command(port: int) -> list[str]:
    """The Dockerfile's CMD, bound to a loopback port and run by this Python."""
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", "")
    command = yaml.safe_load(re.search(r"^CMD\s+(\[.*?\])\s*$", dockerfile, re.M).group(1))
    assert command[0] == "gunicorn"
    command = [sys.executable, "-m", "gunicorn", *command[1:]]
    return [f"127.0.0.1:{port}" if part == "0.0.0.0:8000" else part for part in command]


class Browser:
    """Just enough of a browser behind the TLS proxy: cookies (Secure ones included, as the
    proxy spoke HTTPS), the public Host, and every answer's request id."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.request_ids: list[str] = []

    def send(self, method: str, path: str, form: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Host": "bank.example", "X-Forwarded-Proto": "https",
                   "X-Forwarded-For": "203.0.113.7"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"{PUBLIC_URL}{path}"  # CSRF's same-origin check on HTTPS
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        self.request_ids.append(response.headers["X-Request-ID"])
        connection.close()
        return response.status, response.headers.get("Location", ""), text

    def get(self, path: str):
        return self.send("GET", path)

    def submit(self, path: str, data: dict, page: str | None = None):
        """POST ``data`` with the hidden fields of the form at ``path`` (or of ``page``)."""
        if page is None:
            status, _, page = self.get(path)
            assert status == 200, (path, status)
        return self.send("POST", path, {**form_fields(page), **data})


@pytest.fixture
def database():
    server = make_url(normalize_database_url(SERVER_URL))
    name = f"bankapp_journey_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    migrate(url)
    yield url
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def server(tmp_path, database, smtp_sink):
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("TEST_", "REDIS", "VERCEL", "PROMETHEUS", "DATABASE",
                                   "MAIL_", "BANKAPP_", "FLASK_", "LOG_"))}
    env.update(BANKAPP_ENV="production", FLASK_APP="wsgi", SECRET_KEY=PRODUCTION_SECRET,
               DATABASE_URL=database, PUBLIC_URL=PUBLIC_URL,
               FIELD_ENCRYPTION_KEY=FIELD_ENCRYPTION_KEY, CUSTOMER_2FA="optional",
               MAIL_SERVER=smtp_sink.host, MAIL_PORT=str(smtp_sink.port), MAIL_USE_TLS="0",
               MAIL_DEFAULT_SENDER="bankapp <no-reply@bank.example>", LOG_LEVEL="INFO")
    port = free_port()
    log_path = tmp_path / "server.log"
    with serving(image_command(port), env, ROOT, port, log_path):
        # compose's worker beside the app: in production the pages only queue mail. Its
        # output (a summary line per pass besides its log) is its own file, checked for
        # secrets too.
        with open(tmp_path / "worker.log", "w") as log:
            worker = subprocess.Popen([sys.executable, "-m", "flask", "deliver-mail",
                                       "--interval", "0.5"], env=env, cwd=ROOT, stdout=log,
                                      stderr=subprocess.STDOUT)
        try:
            yield Browser(port), log_path
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=20)


def fund(database: str, email: str, amount: str) -> list[str]:
    """A teller's work, done in this process: two accounts for ``email``, money on the first."""
    from bankapp import create_app, ledger
    from bankapp.extensions import db
    from bankapp.models import User
    from support.database import SuiteConfig

    app = create_app(type("JourneyDatabase", (SuiteConfig,), {
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(database)}))
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == email))
        first, second = (ledger.open_account(user, kind) for kind in ("CHECKING", "SAVINGS"))
        ledger.deposit(first, Decimal(amount), "Opening deposit", user)
        numbers = [first.account_number, second.account_number]
        db.session.remove()
        db.engine.dispose()
    return numbers


def test_a_full_journey_logs_one_json_line_per_request_and_no_secret(server, database,
                                                                     smtp_sink):
    browser, log_path = server
    secrets = [EMAIL, PASSWORD, NEW_PASSWORD]

    status, location, _ = browser.submit("/accounts/signup/", {
        "email": EMAIL, "password1": PASSWORD, "password2": PASSWORD,
        "phone_number": "+442071838750", "date_of_birth": "1990-01-01",
        "first_name": "Jo", "last_name": "Journey"})
    assert status == 302, location
    confirm = smtp_sink.link_path(smtp_sink.wait_for(EMAIL, ""), "/accounts/verify/")
    secrets.append(confirm.rstrip("/").rsplit("/", 1)[-1])
    assert browser.get(confirm)[0] in (200, 302)

    status, location, _ = browser.submit("/accounts/login/", {"email": EMAIL,
                                                              "password": PASSWORD})
    assert status == 302 and "/login" not in location, location
    secrets += [value for value in browser.cookies.values() if len(value) >= 16]

    source, destination = fund(database, EMAIL, "100.00")
    transfer = {"from_account": source, "to_account": destination, "amount": "12.34",
                "description": "Journey"}
    status, location, _ = browser.submit("/accounts/transfer/", transfer)
    assert status == 303 and location.endswith("/accounts/transfer/confirm/"), location
    status, _, review = browser.get("/accounts/transfer/confirm/")
    assert status == 200
    status, location, _ = browser.submit("/accounts/transfer/", {**transfer,
                                                                 "confirmed": "yes"},
                                         page=review)
    assert status == 303 and source in location, location
    assert browser.submit("/accounts/logout/", {}, page=review)[0] == 302

    assert browser.submit("/accounts/password_reset/", {"email": EMAIL})[0] == 302
    reset = smtp_sink.link_path(smtp_sink.wait_for(EMAIL, "reset"), "/accounts/reset/")
    secrets.append(reset.rstrip("/").rsplit("/", 1)[-1])
    status, location, _ = browser.submit(reset, {"new_password1": NEW_PASSWORD,
                                                 "new_password2": NEW_PASSWORD})
    assert status == 302, location
    status, location, _ = browser.submit("/accounts/login/", {"email": EMAIL,
                                                              "password": NEW_PASSWORD})
    assert status == 302 and "/login" not in location

    time.sleep(0.5)  # the last worker's line reaches the file
    lines = log_path.read_text().splitlines()
    assert lines
    not_json = [line for line in lines if not _is_json_object(line)]
    assert not_json == [], f"{len(not_json)} of {len(lines)} lines are not JSON: {not_json[:5]}"
    entries = [json.loads(line) for line in lines]
    request_lines = [entry for entry in entries if entry["logger"] == "bankapp.request"]
    assert sorted(entry["request_id"] for entry in request_lines) == \
        sorted(browser.request_ids)
    whole = log_path.read_text() + (log_path.parent / "worker.log").read_text()
    assert ADDRESS.findall(whole) == []
    leaked = [secret for secret in secrets if secret in whole]
    assert leaked == []


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False
