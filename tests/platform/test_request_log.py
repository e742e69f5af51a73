"""Logs: one JSON line per request with its id, the id on every line of the request, no secret."""
from __future__ import annotations

import io
import json
import logging
import re

import pytest

from bankapp import create_app
from bankapp.platform.logs import HANDLER_NAME, JsonLogFormatter, LogFormatter, configure_logging
from config import ProductionConfig, TestingConfig
from support.users import TEST_PASSWORD
from support.web import csrf_token

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def bankapp_handler() -> logging.Handler:
    return next(h for h in logging.getLogger().handlers if h.name == HANDLER_NAME)


@pytest.fixture
def json_log(app):
    """What the app writes to stdout, in JSON (production's format), as a growing buffer."""
    app.config["LOG_FORMAT"] = "json"
    configure_logging(app)
    handler = bankapp_handler()
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)
    app.config["LOG_FORMAT"] = "text"
    configure_logging(app)


def records(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def request_lines(buffer: io.StringIO) -> list[dict]:
    return [entry for entry in records(buffer) if entry["logger"] == "bankapp.request"]


def test_a_request_logs_one_json_line_whose_id_is_echoed(client, json_log):
    response = client.get("/accounts/login/")
    [line] = request_lines(json_log)
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert (line["method"], line["route"], line["endpoint"], line["status"]) == (
        "GET", "/accounts/login/", "auth.login", 200)
    assert line["user_id"] is None and line["duration_ms"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])


def test_the_proxys_request_id_is_kept(client, json_log):
    offered = "3f2c9a1e-7b44-4c1d-9b0e-1d2c3b4a5f60"
    response = client.get("/accounts/login/", headers={"X-Request-ID": offered})
    assert response.headers["X-Request-ID"] == offered
    assert request_lines(json_log)[0]["request_id"] == offered


@pytest.mark.parametrize("offered", ["", "a" * 129, "two words", "<script>", "ünïcode",
                                     'quote"d', "semi;colon\tand tab"])
def test_a_malformed_request_id_is_replaced(client, json_log, offered):
    response = client.get("/accounts/login/", headers={"X-Request-ID": offered})
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])
    assert request_lines(json_log)[0]["request_id"] == response.headers["X-Request-ID"]


def test_every_line_logged_during_a_request_carries_its_id(app, client, json_log):
    def noisy():
        logging.getLogger("bankapp.test").warning("something worth a look")
        return "done"

    app.add_url_rule("/_noisy", "noisy", noisy)
    response = client.get("/_noisy")
    lines = records(json_log)
    assert [entry["logger"] for entry in lines] == ["bankapp.test", "bankapp.request"]
    assert {entry["request_id"] for entry in lines} == {response.headers["X-Request-ID"]}


def test_a_login_is_logged_with_the_user_and_without_any_secret(client, json_log, customer):
    token = csrf_token(client, "/accounts/login/")
    response = client.post("/accounts/login/", data={
        "email": customer.email, "password": TEST_PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    session_cookie = client.get_cookie("session").value
    client.get("/dashboard/")
    written = json_log.getvalue()
    for secret in (TEST_PASSWORD, token, session_cookie):
        assert secret not in written
    login, dashboard = request_lines(json_log)[-2:]
    assert (login["endpoint"], login["user_id"]) == ("auth.login", customer.id)
    assert (dashboard["endpoint"], dashboard["user_id"]) == ("accounts.dashboard", customer.id)


def test_an_account_page_is_logged_by_its_route_not_its_number(customer_client, json_log,
                                                                customer, funded_account):
    account = funded_account(customer, "10.00")
    assert customer_client.get(f"/accounts/{account.account_number}/").status_code == 200
    assert account.account_number not in json_log.getvalue()
    assert request_lines(json_log)[-1]["route"] == "/accounts/<account_number:account_number>/"


def test_an_emailed_token_in_the_path_is_not_logged(client, json_log):
    token = "InRva2VuLXRoYXQtbXVzdC1uZXZlci1iZS1sb2dnZWQi.signature"
    client.get(f"/accounts/reset/{token}/")
    assert token not in json_log.getvalue()


def test_a_json_line_cannot_be_forged_by_a_logged_value(app, json_log):
    forged = 'x"}\n{"level": "INFO", "message": "user 1 logged in"}\r\u2028'
    logging.getLogger("bankapp.test").warning("path %s", forged)
    [line] = json_log.getvalue().splitlines()
    assert json.loads(line)["message"] == f"path {forged}"
    assert "\u2028" not in line and "\r" not in line


def test_a_traceback_stays_inside_its_json_line(app, json_log):
    try:
        raise RuntimeError("boom\nwith a second line")
    except RuntimeError:
        logging.getLogger("bankapp.test").exception("failed")
    [line] = json_log.getvalue().splitlines()
    assert "RuntimeError: boom" in json.loads(line)["exception"]


# ---------------------------------------------------------------- LOG_FORMAT


def test_production_logs_json_and_other_environments_text(production_env):
    create_app(ProductionConfig)
    assert isinstance(bankapp_handler().formatter, JsonLogFormatter)
    create_app(TestingConfig)
    assert isinstance(bankapp_handler().formatter, LogFormatter)


def test_log_format_text_keeps_todays_lines_in_production(production_env):
    production_env.setenv("LOG_FORMAT", "text")
    create_app(ProductionConfig)
    assert isinstance(bankapp_handler().formatter, LogFormatter)


def test_an_unknown_log_format_refuses_to_start(production_env):
    production_env.setenv("LOG_FORMAT", "xml")
    with pytest.raises(SystemExit, match="LOG_FORMAT"):
        create_app(ProductionConfig)


def test_an_api_request_is_logged_with_its_caller(client, json_log, customer):
    from support.api import bearer

    assert client.get("/api/v1/accounts", headers=bearer(customer)).status_code == 200
    [line] = request_lines(json_log)
    assert (line["endpoint"], line["user_id"]) == ("api.list_accounts", customer.id)


def test_an_email_address_in_any_line_is_written_as_email(app, json_log):
    logging.getLogger("sqlalchemy.engine").warning(
        'duplicate key value: Key (email)=(bob.private@example.com) already exists')
    written = json_log.getvalue()
    assert "bob.private@example.com" not in written
    assert "Key (email)=([email]) already exists" in written


def test_an_error_on_a_tokened_link_logs_the_route_not_the_path(app, client, json_log):
    def fails(token):
        raise RuntimeError("boom")

    app.add_url_rule("/_fails/<token>/", "fails", fails)
    token = "InRva2VuLWluLWEtbGluay1vZi1hbi1lbWFpbCI.signature"
    assert client.get(f"/_fails/{token}/").status_code == 500
    written = json_log.getvalue()
    assert token not in written
    assert "unhandled error on GET /_fails/<token>/" in written
