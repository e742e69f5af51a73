"""Sign-up: the rules a new customer's details must meet, and the confirmation email."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from bankapp.identity.validators import password_problems
from bankapp.extensions import db, mail
from bankapp.models import OutboxMessage, User
from support.users import TEST_PASSWORD
from support.web import post_form

SIGNUP = "/accounts/signup/"


def signup_data(**overrides) -> dict:
    data = {
        "email": "new.customer@example.com",
        "password1": TEST_PASSWORD,
        "password2": TEST_PASSWORD,
        "phone_number": "+442071838750",
        "date_of_birth": "1990-01-01",
    }
    data.update(overrides)
    return data


def user_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(User))


def sign_up(client, **overrides):
    return post_form(client, SIGNUP, signup_data(**overrides))


def links_in(text: str) -> list[str]:
    return re.findall(r"https?://\S+", text)


def test_user_registration(client):
    response = sign_up(client)
    assert response.status_code == 302
    assert user_count() == 1


def test_signup_redirects_to_login_with_check_your_email_message(client):
    response = sign_up(client)
    assert response.headers["Location"].endswith("/accounts/login/")
    page = client.get("/accounts/login/").get_data(as_text=True)
    assert "Check your email" in page


def test_signup_stores_normalised_details_of_an_unverified_customer(client):
    sign_up(client, email="New.Customer@Example.COM", phone_number="+44 20 7183 8750")
    user = db.session.scalar(sa.select(User))
    assert user.email == "new.customer@example.com"
    assert user.phone_number == "+442071838750"
    assert user.date_of_birth == date(1990, 1, 1)
    assert user.role == "customer"
    assert not user.is_verified
    assert user.password_hash.startswith("$argon2id$")


def test_signup_page_has_labelled_fields_with_autocomplete(client):
    page = client.get(SIGNUP).get_data(as_text=True)
    for name, autocomplete in [("email", "email"), ("password1", "new-password"),
                               ("password2", "new-password"), ("phone_number", "tel"),
                               ("date_of_birth", "bday")]:
        assert f'<label for="{name}"' in page
        assert re.search(rf'<input[^>]*autocomplete="{autocomplete}"[^>]*name="{name}"', page)


def test_mismatched_passwords_are_refused(client):
    response = sign_up(client, password2="complexpassword124")
    assert response.status_code == 200
    assert "The two passwords do not match." in response.get_data(as_text=True)
    assert user_count() == 0


@pytest.mark.parametrize("password, message", [
    ("short pass", "Use at least 12 characters"),
    ("123456789012345", "cannot be only digits"),
    ("password1234", "most common passwords"),
    ("PASSWORD1234", "most common passwords"),
    ("1Q2W3E4R5T6Y", "most common passwords"),
    ("abababababababab", "too easy to guess"),
    ("new.customer@example.com", "cannot be your email address"),
    ("NEW.CUSTOMER", "cannot contain your name, your email address"),
    ("x" * 64 + "Z" * 65, "at most 128 characters"),
])
def test_weak_passwords_are_refused(client, password, message):
    response = sign_up(client, password1=password, password2=password)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert user_count() == 0


def test_zxcvbn_advice_is_shown_for_a_guessable_password(client):
    response = sign_up(client, password1="bcdefghijklmnopq", password2="bcdefghijklmnopq")
    assert "Avoid sequences." in response.get_data(as_text=True)


@pytest.mark.parametrize("password", [
    TEST_PASSWORD,
    "correct horse battery staple",
    "a" * 10 + "Ωmega" + "-river-lamp-" * 9 + "end",  # long passphrase, not truncated
])
def test_good_passwords_are_accepted(app, password):
    assert len(password) <= 128
    assert password_problems(password, "someone@example.com") == []


def test_a_long_password_is_not_truncated(client):
    password = "river lamp orbit " * 7  # 119 characters
    sign_up(client, password1=password, password2=password)
    user = db.session.scalar(sa.select(User))
    from bankapp.identity.security import check_password

    assert check_password(user, password)
    assert not check_password(user, password[:72])


@pytest.mark.parametrize("phone, message", [
    ("02071838750", "starting with +"),
    ("+44 20 71", "8 to 15 digits"),
    ("+1234567890123456", "8 to 15 digits"),
    ("+44 20 7183 875a", "only digits"),
    ("+999 1234 5678", "not a valid phone number"),
    ("+44 1234", "8 to 15 digits"),
    ("+1 555 000 0000", "not a valid phone number"),
])
def test_bad_phone_numbers_are_refused(client, phone, message):
    response = sign_up(client, phone_number=phone)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert user_count() == 0


def test_date_of_birth_in_the_future_is_refused(client):
    tomorrow = (date.today() + timedelta(days=2)).isoformat()
    response = sign_up(client, date_of_birth=tomorrow)
    assert response.status_code == 200
    assert "must be in the past" in response.get_data(as_text=True)
    assert user_count() == 0


def test_customer_under_eighteen_is_refused(client):
    today = date.today()
    seventeen = date(today.year - 17, 1, 1).isoformat()
    response = sign_up(client, date_of_birth=seventeen)
    assert response.status_code == 200
    assert "at least 18 years old" in response.get_data(as_text=True)
    assert user_count() == 0


def test_customer_aged_eighteen_is_accepted(client):
    today = date.today()
    eighteen = date(today.year - 18, 1, 1) - timedelta(days=2)
    response = sign_up(client, date_of_birth=eighteen.isoformat())
    assert response.status_code == 302
    assert user_count() == 1


@pytest.mark.parametrize("value", ["01/02/1990", "1990-13-01", "yesterday"])
def test_date_of_birth_must_be_an_iso_date(client, value):
    response = sign_up(client, date_of_birth=value)
    assert response.status_code == 200
    assert "Enter the date as YYYY-MM-DD" in response.get_data(as_text=True)


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "two@@example.com"])
def test_bad_email_addresses_are_refused(client, email):
    response = sign_up(client, email=email)
    assert response.status_code == 200
    assert "Enter a valid email address" in response.get_data(as_text=True)
    assert user_count() == 0


def test_a_fullwidth_look_alike_signs_up_as_the_same_address(client, make_user):
    make_user(email="alice@example.com")
    with mail.record_messages() as outbox:
        response = sign_up(client, email="\uff41lice@example.com")  # a fullwidth "a"
    assert response.status_code == 302
    assert user_count() == 1  # NFKC: it is alice@example.com, whose owner is told
    assert [m.recipients for m in outbox] == [["alice@example.com"]]


@pytest.mark.parametrize("email", [
    "\u0430lice@example.com",  # a Cyrillic "а" among Latin letters
    "alice@\u0435xample.com",  # a Cyrillic "е" in the domain
    "\u0430\u0441\u0435@example.com",  # Cyrillic letters that all look Latin ("ace")
])
def test_look_alike_addresses_are_refused_with_a_clear_message(client, email):
    response = sign_up(client, email=email)
    assert response.status_code == 200
    assert "looks like another address" in response.get_data(as_text=True)
    assert user_count() == 0


def test_an_address_in_one_other_script_is_accepted(client):
    assert sign_up(client, email="\u0430\u043b\u0438\u0441\u0430@example.com").status_code == 302
    assert user_count() == 1


def test_refused_form_keeps_typed_values_but_not_passwords(client):
    response = sign_up(client, email="kept@example.com", phone_number="+44 20 71",
                       date_of_birth="1985-06-07")
    page = response.get_data(as_text=True)
    assert 'value="kept@example.com"' in page
    assert 'value="+44 20 71"' in page
    assert 'value="1985-06-07"' in page
    assert TEST_PASSWORD not in page
    assert 'aria-invalid="true"' in page


def test_duplicate_email_is_not_revealed_and_the_owner_is_emailed(client, make_user):
    make_user(email="taken@example.com")
    with mail.record_messages() as outbox:
        response = sign_up(client, email="Taken@Example.com")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/accounts/login/")
    assert "Check your email" in client.get("/accounts/login/").get_data(as_text=True)
    assert user_count() == 1
    assert len(outbox) == 1
    assert outbox[0].recipients == ["taken@example.com"]
    assert "Someone tried to sign up" in outbox[0].subject


def test_verification_email_carries_a_working_absolute_link(client):
    with mail.record_messages() as outbox:
        sign_up(client)
    assert len(outbox) == 1
    assert outbox[0].recipients == ["new.customer@example.com"]
    link = [u for u in links_in(outbox[0].body) if "/accounts/verify/" in u][0]
    assert link.startswith("http://localhost/accounts/verify/")
    response = client.get(link)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/accounts/login/")
    assert db.session.scalar(sa.select(User)).is_verified


def test_resend_sends_a_new_link_to_an_unverified_user(client, make_user):
    make_user(email="waiting@example.com", verified=False)
    with mail.record_messages() as outbox:
        response = post_form(client, "/accounts/verify/resend/", {"email": "Waiting@example.com"})
    assert response.status_code == 302
    assert len(outbox) == 1
    assert "/accounts/verify/" in outbox[0].body


@pytest.mark.parametrize("email", ["nobody@example.com", "verified@example.com"])
def test_resend_answers_the_same_for_unknown_and_verified_addresses(client, make_user, email):
    make_user(email="verified@example.com", verified=True)
    with mail.record_messages() as outbox:
        response = post_form(client, "/accounts/verify/resend/", {"email": email})
    assert response.status_code == 302
    assert outbox == []
    assert "If an account with that address" in client.get("/accounts/login/").get_data(as_text=True)


def test_resend_is_rate_limited(client):
    statuses = [post_form(client, "/accounts/verify/resend/", {"email": "x@example.com"}).status_code
                for _ in range(4)]
    assert statuses == [302, 302, 302, 429]


def test_smtp_failure_keeps_the_signup_and_its_email_waits_in_the_outbox(smtp_down, client):
    response = sign_up(client)
    assert response.status_code == 302
    assert user_count() == 1
    [queued] = db.session.scalars(sa.select(OutboxMessage)).all()
    assert (queued.recipient, queued.status) == ("new.customer@example.com", "pending")
    # Nothing for the visitor to do: the outbox retries (no "send a new link" that would
    # end up as a second email once the server is back).
    assert "Check your email" in client.get("/accounts/login/").get_data(as_text=True)


def test_signups_from_one_ip_are_rate_limited(app, client):
    # Each sign-up sends an email; one address must not be able to flood mailboxes.
    app.config["SIGNUP_RATE_LIMIT"] = "2 per hour"
    statuses = [sign_up(client, email=f"n{n}@example.com").status_code for n in range(3)]
    assert statuses == [302, 302, 429]
    assert user_count() == 2


def test_sign_up_may_give_a_name_for_statements_and_payees(client):
    post_form(client, "/accounts/signup/", {
        "first_name": "  Grace ", "last_name": "Hopper", "email": "grace@example.com",
        "password1": "complexpassword123", "password2": "complexpassword123",
        "phone_number": "+442071838750", "date_of_birth": "1990-01-01"})
    user = db.session.scalar(db.select(User).where(User.email == "grace@example.com"))
    assert (user.first_name, user.last_name) == ("Grace", "Hopper")


def test_a_name_longer_than_80_characters_is_refused_inline(client):
    response = post_form(client, "/accounts/signup/", {
        "first_name": "x" * 81, "email": "long@example.com",
        "password1": "complexpassword123", "password2": "complexpassword123",
        "phone_number": "+442071838750", "date_of_birth": "1990-01-01"})
    assert response.status_code == 200 and "80 characters" in response.get_data(as_text=True)
