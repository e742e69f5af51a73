"""Which new passwords are refused beyond length: the common and breached list shipped with the
app, the optional Have I Been Pwned range check, and words of the bank and of the user
(ASVS 5.0 V6.1.2, V6.2.4, V6.2.11, V6.2.12). Sign-up, reset and password change share them."""
from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from bankapp.extensions import db
from bankapp.identity import common_passwords
from bankapp.identity.security import check_password, make_reset_token
from bankapp.identity.validators import password_problems
from bankapp.models import User
from support.net import free_port
from support.pwned import running_range_api, sha1_hex
from support.users import TEST_PASSWORD
from support.web import post_form

GOOD = "lantern orbit velvet quarry"
COMMON = "iloveyou1234"  # on the list, not in zxcvbn's, zxcvbn score 1
BREACHED = "ochre tundra pelican 77"  # not on the offline list: only the range API knows it


def sign_up(client, password, **fields):
    data = {"email": "new.customer@example.com", "password1": password, "password2": password,
            "phone_number": "+442071838750", "date_of_birth": "1990-01-01", **fields}
    return post_form(client, "/accounts/signup/", data)


def text(response) -> str:
    return response.get_data(as_text=True)


def users() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(User))


# ---------------------------------------------------------------- the offline list


def test_the_shipped_list_holds_far_more_than_3000_passwords_of_twelve_characters():
    assert common_passwords.count() > 1_000_000


@pytest.mark.parametrize("password", [COMMON,
                                      "correcthorsebatterystaple"])
def test_common_passwords_of_twelve_characters_or_more_are_refused(app, password):
    assert password_problems(password) == [
        "This is one of the most common passwords; choose another."]


def test_zxcvbn_alone_would_have_let_a_listed_password_through(app):
    # Why the list is shipped: zxcvbn's own has 229 passwords of 12+ characters.
    from zxcvbn import zxcvbn
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    assert COMMON not in FREQUENCY_LISTS["passwords"] and zxcvbn(COMMON)["score"] > 0
    assert common_passwords.is_common(COMMON)


def test_a_common_password_is_refused_at_sign_up(client):
    response = sign_up(client, COMMON)
    assert "one of the most common passwords" in text(response) and users() == 0


def test_a_common_password_is_refused_at_reset(client, customer):
    url = f"/accounts/reset/{make_reset_token(customer)}/"
    response = post_form(client, url, {"new_password1": COMMON, "new_password2": COMMON})
    assert "one of the most common passwords" in text(response)
    assert check_password(customer, TEST_PASSWORD)


def test_a_common_password_is_refused_at_password_change(customer_client, customer):
    response = post_form(customer_client, "/accounts/password/", {
        "current_password": TEST_PASSWORD, "new_password1": COMMON, "new_password2": COMMON})
    assert "one of the most common passwords" in text(response)
    assert check_password(customer, TEST_PASSWORD)


def test_the_refusal_is_in_french_for_a_french_reader(client):
    response = post_form(client, "/accounts/signup/", {
        "email": "new.customer@example.com", "password1": COMMON, "password2": COMMON,
        "phone_number": "+442071838750", "date_of_birth": "1990-01-01"},
        headers={"Accept-Language": "fr"})
    assert "mots de passe les plus courants" in text(response)


# ---------------------------------------------------------------- context words


@pytest.mark.parametrize("password, word", [
    ("Archer-lantern-orbit", "archer"),  # last name
    ("alice lantern orbit 9", "alice"),  # first name and email's local part
    ("orbit velvet bankapp", "bankapp"),  # the software
])
def test_a_password_with_the_users_or_the_banks_words_is_refused(app, password, word):
    problems = password_problems(password, "alice@example.com", ("Alice", "Archer"))
    assert problems == [f"A password cannot contain your name, your email address or the "
                        f"bank's name (“{word}”)."]


def test_the_banks_configured_name_is_refused(app):
    app.config["BANK_NAME"] = "Kigali Savings Cooperative"
    assert "savings" in password_problems("my savings are safe here 7")[0]
    assert password_problems("lantern orbit velvet quarry") == []


def test_the_public_host_name_is_refused(app):
    app.config["PUBLIC_URL"] = "https://online.umurenge.example"
    assert "umurenge" in password_problems("umurenge lantern orbit")[0]


def test_a_name_at_sign_up_is_refused_in_the_password(client):
    response = sign_up(client, "zebedee lantern orbit", first_name="Zebedee")
    assert "cannot contain your name" in text(response) and users() == 0


def test_the_users_name_is_refused_at_password_change(customer_client, customer):
    response = post_form(customer_client, "/accounts/password/", {
        "current_password": TEST_PASSWORD, "new_password1": "archer velvet quarry",
        "new_password2": "archer velvet quarry"})
    assert "cannot contain your name" in text(response)
    assert check_password(customer, TEST_PASSWORD)


def test_the_users_name_is_refused_at_reset(client, customer):
    url = f"/accounts/reset/{make_reset_token(customer)}/"
    response = post_form(client, url, {"new_password1": "archer velvet quarry",
                                       "new_password2": "archer velvet quarry"})
    assert "cannot contain your name" in text(response)


def test_short_names_do_not_refuse_everything(app):
    assert password_problems("albatross velvet quarry", "al@example.com", ("Al", "Li")) == []


# ---------------------------------------------------------------- the online range check


def test_the_breach_check_is_off_by_default(app):
    assert app.config["PWNED_PASSWORDS_CHECK"] is False
    with running_range_api({BREACHED: 12}) as (url, asked):
        app.config["PWNED_PASSWORDS_URL"] = url
        assert password_problems(BREACHED) == []
    assert asked == []


def test_a_breached_password_is_refused_when_the_check_is_on(app):
    app.config["PWNED_PASSWORDS_CHECK"] = True
    with running_range_api({BREACHED: 12}) as (url, asked):
        app.config["PWNED_PASSWORDS_URL"] = url
        assert "appeared in a data breach" in password_problems(BREACHED)[0]
        assert password_problems(GOOD) == []
    # Only the first five hex characters of each SHA-1 left the app.
    assert asked == [f"/range/{sha1_hex(BREACHED)[:5]}", f"/range/{sha1_hex(GOOD)[:5]}"]


def test_a_breached_password_is_refused_at_sign_up(app, client):
    app.config["PWNED_PASSWORDS_CHECK"] = True
    with running_range_api({BREACHED: 3}) as (url, _):
        app.config["PWNED_PASSWORDS_URL"] = url
        response = sign_up(client, BREACHED)
    assert "appeared in a data breach" in text(response) and users() == 0


def test_an_unreachable_breach_service_fails_open_with_a_warning(app, caplog):
    app.config.update(PWNED_PASSWORDS_CHECK=True,
                      PWNED_PASSWORDS_URL=f"http://127.0.0.1:{free_port()}/range/")
    with caplog.at_level(logging.WARNING, logger="bankapp.identity.breached"):
        assert password_problems(BREACHED) == []
    assert "breached-password check unavailable" in caplog.text


def test_a_slow_breach_service_is_given_up_after_the_timeout(app, caplog):
    app.config.update(PWNED_PASSWORDS_CHECK=True, PWNED_PASSWORDS_TIMEOUT=0.2)
    with running_range_api({BREACHED: 12}, delay=2) as (url, _):
        app.config["PWNED_PASSWORDS_URL"] = url
        with caplog.at_level(logging.WARNING, logger="bankapp.identity.breached"):
            assert password_problems(BREACHED) == []
    assert "timed out" in caplog.text


def test_the_breach_check_never_follows_a_redirect(app, caplog):
    # ASVS 5.0 V15.3.2: the one outbound HTTP request the app can make goes where configured.
    app.config["PWNED_PASSWORDS_CHECK"] = True
    with running_range_api({BREACHED: 12}) as (elsewhere, followed):
        with running_range_api({}, redirect_to=elsewhere.rsplit("/range/", 1)[0]) as (url, _):
            app.config["PWNED_PASSWORDS_URL"] = url
            with caplog.at_level(logging.WARNING, logger="bankapp.identity.breached"):
                assert password_problems(BREACHED) == []
    assert followed == [] and "302" in caplog.text
