"""/.well-known/security.txt (RFC 9116): the deployment's security contact, or 404 without one."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

URL = "/.well-known/security.txt"


def fields(response) -> list[tuple[str, str]]:
    lines = response.get_data(as_text=True).splitlines()
    return [tuple(part.strip() for part in line.split(":", 1)) for line in lines if line]


def field(response, name: str) -> list[str]:
    return [value for key, value in fields(response) if key == name]


def test_without_a_security_contact_there_is_no_security_txt(app, client):
    app.config["SECURITY_CONTACT"] = ""
    assert client.get(URL).status_code == 404


def test_security_txt_is_utf8_plain_text(app, client):
    app.config["SECURITY_CONTACT"] = "mailto:security@bank.example"
    response = client.get(URL)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_a_mailto_contact_is_given_as_it_is(app, client):
    app.config["SECURITY_CONTACT"] = "mailto:security@bank.example"
    assert field(client.get(URL), "Contact") == ["mailto:security@bank.example"]


def test_an_https_contact_is_given_as_it_is(app, client):
    app.config["SECURITY_CONTACT"] = "https://bank.example/security"
    assert field(client.get(URL), "Contact") == ["https://bank.example/security"]


def test_a_bare_email_contact_becomes_a_mailto_uri(app, client):
    app.config["SECURITY_CONTACT"] = "security@bank.example"
    assert field(client.get(URL), "Contact") == ["mailto:security@bank.example"]


def test_several_contacts_are_listed_in_order(app, client):
    app.config["SECURITY_CONTACT"] = "security@bank.example, https://bank.example/security"
    assert field(client.get(URL), "Contact") == ["mailto:security@bank.example",
                                                  "https://bank.example/security"]


@pytest.mark.parametrize("setting", ["http://bank.example/security", "call the bank",
                                     "security@bank.example\nExpires: 1999-01-01T00:00:00Z"])
def test_a_contact_that_is_not_an_allowed_uri_is_left_out(app, client, setting):
    app.config["SECURITY_CONTACT"] = setting
    response = client.get(URL)
    assert response.status_code == 404
    assert "1999" not in response.get_data(as_text=True)


def test_expires_is_about_a_year_ahead_and_less_than_one(app, client):
    app.config["SECURITY_CONTACT"] = "security@bank.example"
    [expires] = field(client.get(URL), "Expires")
    when = datetime.strptime(expires, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    ahead = when - datetime.now(timezone.utc)
    assert timedelta(days=360) < ahead < timedelta(days=365)


def test_preferred_language_is_english(app, client):
    app.config["SECURITY_CONTACT"] = "security@bank.example"
    assert field(client.get(URL), "Preferred-Languages") == ["en"]


def test_no_canonical_field_is_built_from_the_request_host(app, client):
    app.config["SECURITY_CONTACT"] = "security@bank.example"
    response = client.get(URL, headers={"Host": "evil.example"})
    assert "evil.example" not in response.get_data(as_text=True)
    assert field(response, "Canonical") == []


def test_canonical_is_the_files_address_on_public_url(app, client):
    app.config.update(SECURITY_CONTACT="security@bank.example", PUBLIC_URL="https://bank.example")
    response = client.get(URL, headers={"Host": "evil.example"})
    assert field(response, "Canonical") == ["https://bank.example/.well-known/security.txt"]


def test_every_line_is_a_known_field(app, client):
    app.config["SECURITY_CONTACT"] = "security@bank.example"
    names = {name for name, _ in fields(client.get(URL))}
    assert names <= {"Contact", "Expires", "Preferred-Languages", "Canonical"}

