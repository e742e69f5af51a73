"""PUBLIC_URL is the one base of every absolute link; production answers no other host.

The attack: a reset request sent with a forged ``Host`` (or ``X-Forwarded-Host``) header must
never produce an email whose link leads anywhere but the bank, or the victim's click hands the
reset token to whoever owns that host.
"""
from __future__ import annotations

import re
from contextlib import contextmanager

import pytest

from bankapp import create_app
from bankapp.extensions import db
from bankapp.models import Role, User
from bankapp.notifications import outbox
from bankapp.identity.security import hash_password, make_reset_token
from config import ProductionConfig
from support.settings import PUBLIC_URL, deliver_mail_to
from support.users import TEST_PASSWORD

BANK = "https://bank.example"
FORGED = ("evil.example", "evil.example:443", "bank.example.evil.example")
LINK = re.compile(r"https?://[^\s/]+[^\s]*")


@contextmanager
def bank_in_production(sink):
    """A production app (PUBLIC_URL=https://bank.example) mailing through a real SMTP sink,
    with a verified customer and one still to confirm their address.

    CSRF is off here: the attacker's request carries their own valid token, so CSRF is not
    the protection under test; the host check and the link base are.
    """
    app = create_app(ProductionConfig)
    app.config["WTF_CSRF_ENABLED"] = False
    deliver_mail_to(app, sink.host, sink.port)
    with app.app_context():
        db.create_all()
        db.session.add_all([
            User(email=email, password_hash=hash_password(TEST_PASSWORD), role=Role.CUSTOMER,
                 is_verified=verified, phone_number="+442071838750")
            for email, verified in (("victim@example.com", True), ("pending@example.com", False))])
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def production(production_env, smtp_sink):
    with bank_in_production(smtp_sink) as app:
        yield app


def post(app, path: str, data: dict, host: str = "bank.example", **headers):
    """POST as a client reaching the app through one proxy that speaks HTTPS; then one pass
    of the mail worker (production's requests only queue their mail)."""
    response = app.test_client().post(path, data=data, base_url=f"https://{host}",
                                      headers={"X-Forwarded-Proto": "https", **headers})
    outbox.deliver()
    return response


def links_in(messages) -> list[str]:
    found = []
    for message in messages:
        body = message.get_body(preferencelist=("plain",)).get_content()
        found += LINK.findall(body)
    return found


def assert_every_link_is_the_banks(sink) -> None:
    links = links_in(sink.messages)
    assert all(link.startswith(BANK + "/") for link in links), links


SIGNUP = {"email": "victim@example.com", "password1": "lantern orbit velvet quarry",
          "password2": "lantern orbit velvet quarry", "phone_number": "+442071838750",
          "date_of_birth": "1990-01-01"}

MAIL_SENDING_FORMS = [
    pytest.param("/accounts/password_reset/", {"email": "victim@example.com"}, id="reset"),
    pytest.param("/accounts/verify/resend/", {"email": "pending@example.com"}, id="verification"),
    pytest.param("/accounts/signup/", SIGNUP, id="signup-notice"),
    pytest.param("/accounts/signup/", {**SIGNUP, "email": "newcomer@example.com"},
                 id="signup-verification"),
]


@pytest.mark.parametrize("path, data", MAIL_SENDING_FORMS)
@pytest.mark.parametrize("host", FORGED)
def test_a_forged_host_header_is_refused_and_mails_no_foreign_link(production, smtp_sink,
                                                                    path, data, host):
    response = post(production, path, data, host=host)
    assert response.status_code == 400
    assert "evil" not in response.get_data(as_text=True)
    assert_every_link_is_the_banks(smtp_sink)


@pytest.mark.parametrize("path, data", MAIL_SENDING_FORMS)
def test_a_forged_x_forwarded_host_is_refused_and_mails_no_foreign_link(production, smtp_sink,
                                                                        path, data):
    response = post(production, path, data, **{"X-Forwarded-Host": "evil.example"})
    assert response.status_code == 400
    assert_every_link_is_the_banks(smtp_sink)


@pytest.mark.parametrize("path, data", MAIL_SENDING_FORMS)
def test_email_links_are_built_on_public_url(production, smtp_sink, path, data):
    response = post(production, path, data)
    assert response.status_code == 302
    links = links_in(smtp_sink.messages)
    assert links, "the form sent no email with a link"
    assert all(link.startswith(BANK + "/accounts/") for link in links), links


def test_x_forwarded_host_is_ignored_without_a_trusted_proxy(production_env, smtp_sink):
    # TRUST_PROXY_HOPS=0: the app faces clients directly, so the header is the client's own
    # words and is not taken as the host at all.
    production_env.setenv("TRUST_PROXY_HOPS", "0")
    with bank_in_production(smtp_sink) as app:
        response = app.test_client().post(
            "/accounts/password_reset/", data={"email": "victim@example.com"},
            base_url=BANK, headers={"X-Forwarded-Host": "evil.example"})
        assert response.status_code == 302
        outbox.deliver()  # the mail worker's pass
        links = links_in(smtp_sink.messages)
        assert len(links) == 1 and links[0].startswith(BANK + "/accounts/reset/")


def test_the_reset_link_from_the_email_works_on_the_bank(production, smtp_sink):
    post(production, "/accounts/password_reset/", {"email": "victim@example.com"})
    (link,) = [link for link in links_in(smtp_sink.messages) if "/accounts/reset/" in link]
    page = production.test_client().get(link, headers={"X-Forwarded-Proto": "https"})
    assert page.status_code == 200
    assert 'name="new_password1"' in page.get_data(as_text=True)


def test_a_refused_host_gets_a_bare_400_without_page_or_links(production):
    response = production.test_client().get("/accounts/login/", base_url="https://evil.example",
                                            headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    assert "evil" not in response.get_data(as_text=True)
    assert "Location" not in response.headers


def test_a_plain_http_request_for_a_forged_host_is_not_redirected_to_it(production):
    # Production redirects http to https; for a host it does not serve it must not redirect
    # at all (a redirect to https://evil.example/... would be an open redirect).
    response = production.test_client().get("/accounts/login/", base_url="http://evil.example")
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_the_public_host_is_served(production):
    response = production.test_client().get("/accounts/login/", base_url=BANK,
                                            headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 200


def test_hosts_listed_in_trusted_hosts_are_served_but_links_stay_on_public_url(
        production_env, smtp_sink):
    production_env.setenv("TRUSTED_HOSTS", "bank-eu.example, WWW.bank.example")
    with bank_in_production(smtp_sink) as app:
        for host in ("bank-eu.example", "www.bank.example"):
            response = post(app, "/accounts/password_reset/", {"email": "victim@example.com"},
                            host=host)
            assert response.status_code == 302
        assert post(app, "/accounts/password_reset/", {"email": "victim@example.com"},
                    host="evil.example").status_code == 400
    links = links_in(smtp_sink.messages)
    assert len(links) == 2 and all(link.startswith(BANK + "/accounts/reset/") for link in links)


@pytest.mark.parametrize("value", [
    "bank.example", "ftp://bank.example", "https://", "https://bank.example/?next=x",
    "https://user:pw@bank.example",
])
def test_production_refuses_to_start_with_a_public_url_that_is_not_an_origin(production_env,
                                                                             value):
    production_env.setenv("PUBLIC_URL", value)
    with pytest.raises(SystemExit) as stopped:
        create_app(ProductionConfig)
    assert "PUBLIC_URL" in stopped.value.code


def test_production_refuses_a_plain_http_public_url(production_env):
    production_env.setenv("PUBLIC_URL", "http://bank.example")
    with pytest.raises(SystemExit) as stopped:
        create_app(ProductionConfig)
    assert "https" in stopped.value.code


# ---------------------------------------------------------------- outside production


def test_links_use_public_url_whatever_host_the_request_names(app, client, customer):
    from bankapp.extensions import mail

    app.config["PUBLIC_URL"] = "https://bank.example/branch"
    with mail.record_messages() as outbox:
        client.post("/accounts/password_reset/", base_url="http://evil.example",
                    data={"email": customer.email, "csrf_token": _csrf(client, "evil.example")})
    assert len(outbox) == 1
    (link,) = LINK.findall(outbox[0].body)
    assert link.startswith("https://bank.example/branch/accounts/reset/")


def _csrf(client, host: str) -> str:
    page = client.get("/accounts/password_reset/", base_url=f"http://{host}")
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))[1]


def test_development_without_public_url_links_to_the_address_it_is_served_on(app, client,
                                                                            customer):
    from bankapp.extensions import mail

    assert app.config["PUBLIC_URL"] is None
    with mail.record_messages() as outbox:
        client.post("/accounts/password_reset/", base_url="http://127.0.0.1:5000",
                    data={"email": customer.email, "csrf_token": _csrf(client, "127.0.0.1:5000")})
    (link,) = LINK.findall(outbox[0].body)
    assert link.startswith("http://127.0.0.1:5000/accounts/reset/")


def test_public_url_for_works_outside_a_request(app):
    from bankapp.platform.urls import public_url_for

    app.config["PUBLIC_URL"] = PUBLIC_URL
    user = User(id=7, email="x@example.com", password_hash="h")
    link = public_url_for("auth.password_reset_confirm", token=make_reset_token(user))
    assert link.startswith(PUBLIC_URL + "/accounts/reset/")


def test_openapi_servers_name_the_public_url(app, client):
    app.config["PUBLIC_URL"] = PUBLIC_URL
    document = client.get("/api/v1/openapi.json", base_url="http://evil.example").get_json()
    assert document["servers"] == [{"url": PUBLIC_URL, "description": "This bank"}]


def test_statement_footnote_links_to_public_url(app, customer_client, customer, funded_account):
    account = funded_account(customer, "10.00")
    app.config["PUBLIC_URL"] = PUBLIC_URL
    page = customer_client.get(f"/reports/statement/{account.account_number}/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert PUBLIC_URL + "/reports/verify/" in html
    assert "http://localhost" not in html
