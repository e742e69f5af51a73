"""Two-step sign-in: TOTP enrolment, the login's second step, recovery codes, the lockout,
who must have a second factor, the API token, and the operator's reset."""
from __future__ import annotations

import re
from html import unescape

import pytest
import sqlalchemy as sa

from bankapp.audit import Action
from bankapp.identity.factors import provisioning_uri, qr_code_data_uri
from bankapp.platform.crypto import decrypt_field
from bankapp.extensions import db, mail
from bankapp.models import RecoveryCode, Role, TotpDevice
from support.backoffice import audit_rows
from support.users import TEST_PASSWORD, age_the_sign_in, enrol_totp, log_in_as, totp_now
from support.web import csrf_token, post_form

SETUP = "/accounts/2fa/totp/setup/"
SECOND_STEP = "/accounts/login/2fa/"


def password_step(client, email="alice@example.com", password=TEST_PASSWORD):
    return post_form(client, "/accounts/login/", {"email": email, "password": password})


def second_step(client, code):
    return post_form(client, SECOND_STEP, {"code": code})


def logged_in(client) -> bool:
    return client.get("/dashboard/").status_code == 200


def secret_on_page(html: str) -> str:
    return re.search(r'id="totp-secret"[^>]*>([A-Z2-7]+)<', html).group(1)


@pytest.fixture
def enrolled(customer):
    """Alice with an authenticator app; its secret."""
    return enrol_totp(customer)


# ---------------------------------------------------------------- enrolment


def test_setup_page_shows_a_qr_code_and_the_same_secret_as_text(customer_client, customer):
    html = customer_client.get(SETUP).get_data(as_text=True)
    secret = secret_on_page(html)
    qr = re.search(r'<img class="qr-code" src="(data:image/svg\+xml[^"]+)"', html)
    assert qr, "no QR code image"
    # The picture is the QR code of the otpauth:// URI that carries this very secret.
    assert provisioning_uri(customer, secret) == (
        f"otpauth://totp/bankapp:alice%40example.com?secret={secret}&issuer=bankapp")
    assert unescape(qr.group(1)) == qr_code_data_uri(customer, secret)
    device = db.session.scalar(sa.select(TotpDevice))
    assert device.confirmed_at is None and decrypt_field(device.secret_encrypted) == secret


def test_reloading_the_setup_page_keeps_the_secret_already_scanned(customer_client):
    first = secret_on_page(customer_client.get(SETUP).get_data(as_text=True))
    assert secret_on_page(customer_client.get(SETUP).get_data(as_text=True)) == first


def test_an_abandoned_setup_gets_a_new_secret(customer_client):
    from datetime import timedelta

    first = secret_on_page(customer_client.get(SETUP).get_data(as_text=True))
    device = db.session.scalar(sa.select(TotpDevice))
    device.created_at -= timedelta(minutes=11)
    db.session.commit()
    assert secret_on_page(customer_client.get(SETUP).get_data(as_text=True)) != first


def test_setup_page_has_no_inline_script(customer_client):
    html = customer_client.get(SETUP).get_data(as_text=True)
    assert "style=" not in html
    assert not re.search(r"<script(?![^>]*\ssrc=)", html)  # only scripts from static files


def test_the_secret_is_encrypted_at_rest(customer_client):
    secret = secret_on_page(customer_client.get(SETUP).get_data(as_text=True))
    stored = db.session.scalar(sa.select(TotpDevice.secret_encrypted))
    assert secret not in stored


def test_enrolment_completes_only_with_a_valid_code(customer_client, customer):
    customer_client.get(SETUP)
    response = post_form(customer_client, SETUP, {"code": "000000"})
    assert response.status_code == 200
    assert "That code is not right" in response.get_data(as_text=True)
    db.session.refresh(customer)
    assert not customer.mfa_enabled


def test_enrolment_shows_ten_recovery_codes_once_and_keeps_only_their_hashes(customer_client,
                                                                            customer):
    secret = secret_on_page(customer_client.get(SETUP).get_data(as_text=True))
    response = post_form(customer_client, SETUP, {"code": totp_now(secret)})
    html = response.get_data(as_text=True)
    codes = re.findall(r'class="recovery-code">([a-z0-9-]+)<', html)
    assert response.status_code == 200 and len(codes) == 10 and len(set(codes)) == 10
    db.session.refresh(customer)
    assert customer.mfa_enabled
    stored = db.session.scalars(sa.select(RecoveryCode.code_hash)).all()
    # Salted argon2id: under 112 bits a plain hash is not enough (ASVS 5.0 V6.5.2).
    assert len(stored) == 10 and all(h.startswith("$argon2id$") for h in stored)
    assert not any(code.replace("-", "") in h for code in codes for h in stored)
    assert [row.details for row in audit_rows(Action.MFA_ENROL)] == [{"factor": "totp"}]
    assert 'class="recovery-code"' not in customer_client.get("/accounts/security/").get_data(
        as_text=True)


def test_a_wrong_code_during_setup_does_not_mention_recovery_codes(customer_client):
    customer_client.get(SETUP)
    html = post_form(customer_client, SETUP, {"code": "000000"}).get_data(as_text=True)
    assert "Enter the 6-digit code your app shows now for bankapp" in unescape(html)
    assert "recovery code" not in html.lower().split("<form")[1]


def test_a_malformed_code_during_setup_asks_for_six_digits_only(customer_client):
    customer_client.get(SETUP)
    html = post_form(customer_client, SETUP, {"code": "abc"}).get_data(as_text=True)
    assert "Enter the 6-digit code from your authenticator app." in html
    assert "recovery code" not in html.lower().split("<form")[1]


def code_input(html: str) -> str:
    """The second-factor code box (named ``code``, or ``remove-code`` on the security page)."""
    return re.search(r'<input[^>]*name="(?:remove-)?code"[^>]*>', html).group(0)


def test_the_setup_code_input_opens_the_numeric_keypad(customer_client):
    tag = code_input(customer_client.get(SETUP).get_data(as_text=True))
    assert 'inputmode="numeric"' in tag and 'autocomplete="one-time-code"' in tag


def test_the_second_step_code_input_opens_the_numeric_keypad(client, enrolled):
    password_step(client)
    html = client.get(SECOND_STEP).get_data(as_text=True)
    tag = code_input(html)
    assert 'inputmode="numeric"' in tag and 'autocomplete="one-time-code"' in tag
    assert 'href="/accounts/login/2fa/?with=recovery"' in html


def test_a_recovery_code_is_typed_on_the_full_keyboard(client, enrolled):
    password_step(client)
    tag = code_input(client.get(SECOND_STEP + "?with=recovery").get_data(as_text=True))
    assert 'inputmode="text"' in tag and 'autocomplete="off"' in tag


def _step_up_page(client, customer, funded_account, make_user) -> str:
    """The transfer confirmation page asking for a code (a first payment to Bob)."""
    source = funded_account(customer, "100.00")
    bobs = funded_account(make_user(email="bob@example.com"))
    post_form(client, "/accounts/transfer/", {"from_account": source.account_number,
                                              "to_account": bobs.account_number,
                                              "amount": "5"})
    return "/accounts/transfer/confirm/"


CODE_PAGES = {
    "transfer step-up": _step_up_page,
    "security page": lambda *_: "/accounts/security/",
    "daily limit": lambda *_: "/accounts/limits/",
    "email change": lambda *_: "/accounts/profile/email/",
    "scheduled payment": lambda client, customer, funded_account, _: (
        funded_account(customer, "10.00") and "/accounts/scheduled/new/"),
}


@pytest.mark.parametrize("page", CODE_PAGES)
def test_every_code_input_opens_the_numeric_keypad_and_offers_the_full_keyboard(
        customer_client, customer, funded_account, make_user, page):
    enrol_totp(customer)
    db.session.commit()
    url = CODE_PAGES[page](customer_client, customer, funded_account, make_user)
    html = customer_client.get(url).get_data(as_text=True)
    tag = code_input(html)
    assert 'inputmode="numeric"' in tag and 'autocomplete="one-time-code"' in tag
    assert f'href="{url}?with=recovery" data-mode="recovery"' in html
    recovery = customer_client.get(f"{url}?with=recovery").get_data(as_text=True)
    tag = code_input(recovery)
    assert 'inputmode="text"' in tag and 'autocomplete="off"' in tag


def test_the_code_to_set_up_an_app_offers_no_recovery_code(customer_client):
    html = customer_client.get(SETUP).get_data(as_text=True)
    assert "?with=recovery" not in html and "data-code-switch" not in html


def test_recovery_codes_can_be_copied_downloaded_and_printed(customer_client):
    secret = secret_on_page(customer_client.get(SETUP).get_data(as_text=True))
    html = post_form(customer_client, SETUP, {"code": totp_now(secret)}).get_data(
        as_text=True)
    for action, label in [("copy", "Copy the codes"), ("download", "Download (.txt)"),
                          ("print", "Print")]:
        assert f'data-action="{action}">{label}</button>' in html
    assert 'data-file-name="bankapp-recovery-codes.txt"' in html
    assert "js/recovery_codes.js" in html


def test_a_setup_post_without_the_setup_page_is_refused(customer_client, customer):
    token = csrf_token(customer_client, "/accounts/security/")
    response = customer_client.post(SETUP, data={"code": "123456", "csrf_token": token})
    assert response.status_code == 200
    assert "Start again" in response.get_data(as_text=True)
    db.session.refresh(customer)
    assert not customer.mfa_enabled


def test_setup_needs_the_csrf_token(customer_client):
    customer_client.get(SETUP)
    assert customer_client.post(SETUP, data={"code": "123456"}).status_code == 400


def test_a_user_with_an_app_is_sent_from_setup_to_the_security_page(customer_client, enrolled):
    response = customer_client.get(SETUP)
    assert response.status_code == 302 and response.headers["Location"].endswith(
        "/accounts/security/")


# ---------------------------------------------------------------- the login's second step


def test_the_password_alone_leaves_the_browser_logged_out(client, enrolled):
    response = password_step(client)
    assert response.headers["Location"].endswith(SECOND_STEP)
    assert not logged_in(client)
    assert client.get("/accounts/security/").status_code == 302


def test_a_half_logged_in_browser_cannot_use_the_api(client, enrolled):
    password_step(client)
    assert client.get("/api/v1/accounts").status_code == 401


def test_a_right_code_finishes_the_login(client, customer, enrolled):
    password_step(client)
    response = second_step(client, totp_now(enrolled))
    assert response.headers["Location"].endswith("/dashboard/")
    assert logged_in(client)
    [row] = audit_rows(Action.LOGIN_SUCCESS)
    assert row.details["second_factor"] == "totp"


def test_the_second_step_keeps_the_page_the_user_asked_for(client, enrolled):
    post_form(client, "/accounts/login/?next=/reports/",
              {"email": "alice@example.com", "password": TEST_PASSWORD})
    assert second_step(client, totp_now(enrolled)).headers["Location"].endswith("/reports/")


def test_a_code_from_the_previous_step_is_refused_by_default(client, enrolled):
    # ASVS 5.0 V6.5.5: a TOTP code lives its own 30 seconds unless drift is chosen.
    password_step(client)
    assert second_step(client, totp_now(enrolled, -1)).status_code == 200
    assert not logged_in(client)


def test_a_code_from_the_previous_step_is_accepted_when_drift_is_allowed(app, client,
                                                                         enrolled):
    app.config["TOTP_DRIFT_STEPS"] = 1
    password_step(client)
    assert second_step(client, totp_now(enrolled, -1)).status_code == 302


def test_a_code_two_steps_old_is_refused_even_with_drift(app, client, enrolled):
    app.config["TOTP_DRIFT_STEPS"] = 1
    password_step(client)
    assert second_step(client, totp_now(enrolled, -2)).status_code == 200
    assert not logged_in(client)


def test_without_drift_a_code_lives_only_its_own_30_seconds(client, enrolled):
    password_step(client)
    assert second_step(client, totp_now(enrolled, -1)).status_code == 200
    assert second_step(client, totp_now(enrolled)).status_code == 302


def test_a_password_reset_does_not_skip_the_second_factor(client, customer, enrolled):
    from bankapp.identity.security import make_reset_token

    new_password = "lantern orbit velvet quarry"
    post_form(client, f"/accounts/reset/{make_reset_token(customer)}/",
              {"new_password1": new_password, "new_password2": new_password})
    assert not logged_in(client)
    response = password_step(client, password=new_password)
    assert response.headers["Location"].endswith(SECOND_STEP)
    assert not logged_in(client)


def test_secrets_and_recovery_codes_carry_enough_randomness(customer_client):
    # 32 base32 characters = 160 bits of seed; 12 characters of a 31-symbol alphabet ≈ 59 bits
    # per recovery code (ASVS asks 20 or more); both from the secrets module's CSPRNG.
    from bankapp.identity.factors import RECOVERY_ALPHABET

    secret = secret_on_page(customer_client.get(SETUP).get_data(as_text=True))
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    html = post_form(customer_client, SETUP, {"code": totp_now(secret)}).get_data(
        as_text=True)
    for code in re.findall(r'class="recovery-code">([a-z0-9-]+)<', html):
        assert re.fullmatch(rf"[{RECOVERY_ALPHABET}]{{4}}(-[{RECOVERY_ALPHABET}]{{4}}){{2}}", code)


def test_a_code_is_accepted_only_once(app, client, enrolled):
    code = totp_now(enrolled)
    password_step(client)
    assert second_step(client, code).status_code == 302
    other = app.test_client()
    password_step(other)
    response = second_step(other, code)
    assert response.status_code == 200
    assert not logged_in(other)


@pytest.mark.parametrize("code, message", [
    ("abcdef", "Enter the 6-digit code"), ("1234567", "Enter the 6-digit code"),
    ("12345", "Enter the 6-digit code"), ("12 34 5x", "Enter the 6-digit code"),
    ("1" * 200, "That code is too long."),
])
def test_malformed_codes_are_refused_with_a_clear_message(client, enrolled, code, message):
    password_step(client)
    response = second_step(client, code)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert not logged_in(client)


def test_an_empty_code_is_asked_for_again(client, enrolled):
    password_step(client)
    response = second_step(client, "")
    assert response.status_code == 200 and "Enter the code." in response.get_data(as_text=True)


def test_the_second_step_without_the_password_step_goes_back_to_login(client, enrolled):
    response = client.get(SECOND_STEP)
    assert response.status_code == 302 and response.headers["Location"].endswith(
        "/accounts/login/")


def test_the_second_step_expires(app, client, enrolled):
    password_step(client)
    token = csrf_token(client, SECOND_STEP)
    with client.session_transaction() as session:
        session["mfa_since"] -= app.config["MFA_PENDING_SECONDS"] + 1
    response = client.post(SECOND_STEP, data={"code": totp_now(enrolled), "csrf_token": token})
    assert response.headers["Location"].endswith("/accounts/login/")
    assert not logged_in(client)


def test_a_recovery_code_signs_in_once(customer_client, customer, app):
    secret = secret_on_page(customer_client.get(SETUP).get_data(as_text=True))
    html = post_form(customer_client, SETUP, {"code": totp_now(secret)}).get_data(
        as_text=True)
    code = re.findall(r'class="recovery-code">([a-z0-9-]+)<', html)[0]
    first, second = app.test_client(), app.test_client()
    password_step(first)
    assert second_step(first, code.upper().replace("-", " ")).status_code == 302
    assert logged_in(first)
    password_step(second)
    assert second_step(second, code).status_code == 200
    assert not logged_in(second)
    assert audit_rows(Action.MFA_RECOVERY_CODE_USED)[0].details == {"left": 9}


def test_a_reused_recovery_code_is_called_already_used(app, customer, enrolled):
    from bankapp.identity.factors import _replace_recovery_codes

    code = _replace_recovery_codes(customer)[0]
    db.session.commit()
    first, second = app.test_client(), app.test_client()
    password_step(first)
    assert second_step(first, code).status_code == 302
    password_step(second)
    html = unescape(second_step(second, code).get_data(as_text=True))
    assert "That recovery code has already been used: each one works once." in html
    assert audit_rows(Action.MFA_FAILURE)[0].details["reason"] == "used recovery code"


def test_login_without_a_second_factor_is_one_step(client, customer):
    assert password_step(client).headers["Location"].endswith("/dashboard/")


# ---------------------------------------------------------------- lockout


def test_five_wrong_codes_lock_second_factor_checks_for_the_account(client, customer, enrolled):
    password_step(client)
    with mail.record_messages() as outbox:
        for _ in range(5):
            assert second_step(client, "000000").status_code in (200, 429)
        response = second_step(client, totp_now(enrolled))
    assert response.status_code == 429
    assert "locked" in response.get_data(as_text=True)
    assert not logged_in(client)
    assert len(audit_rows(Action.MFA_FAILURE)) == 5 and len(audit_rows(Action.MFA_LOCKED)) == 1
    assert [m.recipients for m in outbox] == [[customer.email]]


def test_the_lockout_is_per_account(app, client, customer, make_user, enrolled):
    bob = make_user(email="bob@example.com", second_factor=True)
    password_step(client)
    for _ in range(5):
        second_step(client, "000000")
    other = app.test_client()
    password_step(other, email="bob@example.com")
    assert second_step(other, totp_now(bob.totp_secret)).status_code == 302


def test_the_lockout_ends_after_its_time(app, client, enrolled):
    import sqlalchemy as sa

    from bankapp.models import User, now_utc

    password_step(client)
    for _ in range(5):
        second_step(client, "000000")
    assert second_step(client, totp_now(enrolled)).status_code == 429
    # The lock is a time in the user's row (bankapp.identity.throttle): let it pass.
    db.session.execute(sa.update(User).values(mfa_locked_until=now_utc()))
    db.session.commit()
    assert second_step(client, totp_now(enrolled)).status_code == 302


# ---------------------------------------------------------------- policy


def test_staff_without_a_second_factor_are_sent_to_enrolment(client, make_user):
    teller = make_user(role=Role.TELLER, second_factor=False)
    log_in_as(client, teller)
    for page in ("/teller/", "/reports/", "/accounts/profile/"):
        response = client.get(page)
        assert response.status_code == 302 and response.headers["Location"].endswith(SETUP), page
    assert client.get(SETUP).status_code == 200
    assert client.get("/accounts/security/").status_code == 200


def test_staff_can_work_once_enrolled(client, make_user):
    teller = make_user(role=Role.TELLER, second_factor=False)
    log_in_as(client, teller)
    secret = secret_on_page(client.get(SETUP).get_data(as_text=True))
    post_form(client, SETUP, {"code": totp_now(secret)})
    assert client.get("/teller/").status_code == 200


def test_customers_must_enrol_before_any_money_page_when_required(app, customer_client):
    app.config["CUSTOMER_2FA"] = "required"
    for page in ("/dashboard/", "/accounts/transfer/", "/accounts/open/"):
        response = customer_client.get(page)
        assert response.headers["Location"].endswith(SETUP), page


def test_customers_may_go_without_when_optional(app, customer_client):
    assert app.config["CUSTOMER_2FA"] == "optional"
    assert customer_client.get("/dashboard/").status_code == 200


def test_production_requires_customers_to_enrol_by_default(production_env):
    from bankapp import create_app
    from config import ProductionConfig

    assert create_app(ProductionConfig).config["CUSTOMER_2FA"] == "required"


def test_an_unknown_customer_2fa_setting_refuses_to_start(production_env):
    from bankapp import create_app
    from config import ProductionConfig

    production_env.setenv("CUSTOMER_2FA", "sometimes")
    with pytest.raises(SystemExit) as stopped:
        create_app(ProductionConfig)
    assert "CUSTOMER_2FA" in stopped.value.code


@pytest.mark.parametrize("key", ["not-a-key", "c2hvcnQ=", "q1vOQm3Xh2mQmS0t3f3qk3B2cHk0c1J5dEx4b0ZkR1k=,x"])
def test_production_refuses_a_field_encryption_key_that_is_not_fernet(production_env, key):
    from bankapp import create_app
    from config import ProductionConfig

    production_env.setenv("FIELD_ENCRYPTION_KEY", key)
    with pytest.raises(SystemExit) as stopped:
        create_app(ProductionConfig)
    assert "FIELD_ENCRYPTION_KEY" in stopped.value.code


# ---------------------------------------------------------------- the security page


def test_removing_the_app_long_after_signing_in_asks_for_the_password_first(app, customer_client,
                                                                            customer, enrolled):
    token = csrf_token(customer_client, "/accounts/security/")
    age_the_sign_in(customer_client)
    refused = customer_client.post("/accounts/2fa/totp/remove/", data={
        "csrf_token": token, "remove-code": totp_now(enrolled)})
    assert "/accounts/reauthenticate/" in refused.headers["Location"]
    db.session.refresh(customer)
    assert customer.mfa_enabled


def test_removing_the_app_needs_a_recent_sign_in_and_a_current_code(customer_client, customer,
                                                                   enrolled):
    token = csrf_token(customer_client, "/accounts/security/")
    customer_client.post("/accounts/2fa/totp/remove/", data={
        "csrf_token": token, "remove-code": totp_now(enrolled)})
    db.session.refresh(customer)
    assert not customer.mfa_enabled
    assert db.session.scalar(sa.select(sa.func.count()).select_from(TotpDevice)) == 0
    assert len(audit_rows(Action.MFA_REMOVE)) == 1


def test_removing_the_app_without_a_code_asks_for_one(customer_client, customer, enrolled):
    token = csrf_token(customer_client, "/accounts/security/")
    answer = customer_client.post("/accounts/2fa/totp/remove/", data={
        "csrf_token": token, "remove-code": ""})
    page = customer_client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Enter a current code to remove the app." in page
    db.session.refresh(customer)
    assert customer.mfa_enabled


def test_removing_the_app_with_a_wrong_code_changes_nothing(customer_client, customer, enrolled):
    token = csrf_token(customer_client, "/accounts/security/")
    customer_client.post("/accounts/2fa/totp/remove/", data={
        "csrf_token": token, "remove-code": "000000"})
    db.session.refresh(customer)
    assert customer.mfa_enabled


def test_new_recovery_codes_void_the_old_ones(customer_client, customer, enrolled):
    token = csrf_token(customer_client, "/accounts/security/")
    first = customer_client.post("/accounts/2fa/recovery-codes/", data={
        "csrf_token": token}).get_data(as_text=True)
    old = re.findall(r'class="recovery-code">([a-z0-9-]+)<', first)
    second = customer_client.post("/accounts/2fa/recovery-codes/", data={
        "csrf_token": token}).get_data(as_text=True)
    new = re.findall(r'class="recovery-code">([a-z0-9-]+)<', second)
    assert len(old) == len(new) == 10 and not set(old) & set(new)
    from bankapp.identity.factors import SecondFactorRefused, verify_second_factor

    with pytest.raises(SecondFactorRefused):
        verify_second_factor(customer, old[0])
    assert verify_second_factor(customer, new[0]) == "recovery"


def test_the_security_page_has_no_password_box_after_a_recent_sign_in(customer_client,
                                                                     enrolled):
    html = customer_client.get("/accounts/security/").get_data(as_text=True)
    assert 'type="password"' not in html


def test_long_after_signing_in_the_security_page_has_one_password_box(app, customer_client,
                                                                      enrolled):
    age_the_sign_in(customer_client)
    html = customer_client.get("/accounts/security/").get_data(as_text=True)
    assert html.count('type="password"') == 1
    assert "Current password" in html and "Confirm it is you" in html


def test_new_recovery_codes_long_after_signing_in_ask_for_the_password_first(
        app, customer_client, enrolled):
    token = csrf_token(customer_client, "/accounts/security/")
    age_the_sign_in(customer_client)
    answer = customer_client.post("/accounts/2fa/recovery-codes/", data={"csrf_token": token})
    assert "/accounts/reauthenticate/" in answer.headers["Location"]
    assert not audit_rows(Action.MFA_RECOVERY_CODES_RENEWED)


def test_the_security_page_counts_the_recovery_codes_left(customer_client, customer, enrolled):
    token = csrf_token(customer_client, "/accounts/security/")
    html = customer_client.post("/accounts/2fa/recovery-codes/", data={
        "csrf_token": token}).get_data(as_text=True)
    from bankapp.identity.factors import verify_second_factor

    verify_second_factor(customer, re.findall(r'class="recovery-code">([a-z0-9-]+)<', html)[0])
    page = customer_client.get("/accounts/security/").get_data(as_text=True)
    assert re.search(r'id="recovery-codes-left">9<', page)


# ---------------------------------------------------------------- API tokens


def token_request(client, **body):
    return client.post("/api/v1/token", json={"email": "alice@example.com",
                                              "password": TEST_PASSWORD, **body})


def test_a_token_for_an_account_with_two_step_sign_in_needs_the_code(client, enrolled):
    response = token_request(client)
    assert response.status_code == 401
    assert response.get_json()["type"].endswith("mfa-required")


def test_a_token_with_the_right_code_is_issued(client, enrolled):
    response = token_request(client, otp=totp_now(enrolled))
    assert response.status_code == 200 and response.get_json()["access_token"]


def test_a_wrong_api_code_counts_toward_the_same_lockout(app, client, enrolled):
    app.config["LOGIN_RATE_LIMIT"] = "100 per minute"  # the per-email limit is not under test
    for _ in range(5):
        assert token_request(client, otp="000000").get_json()["type"].endswith("mfa-failed")
    response = token_request(client, otp=totp_now(enrolled))
    assert response.status_code == 429 and response.get_json()["type"].endswith("mfa-locked")


def test_staff_without_a_second_factor_get_no_token(client, make_user):
    make_user(email="teller@example.com", role=Role.TELLER, second_factor=False)
    response = client.post("/api/v1/token", json={"email": "teller@example.com",
                                                  "password": TEST_PASSWORD})
    assert response.status_code == 403
    assert response.get_json()["type"].endswith("mfa-enrolment-required")


# ---------------------------------------------------------------- operators


def test_reset_2fa_removes_the_factors_ends_sessions_and_tells_the_owner(app, runner, client,
                                                                        customer, enrolled):
    log_in_as(client, customer)
    with mail.record_messages() as outbox:
        result = runner.invoke(args=["reset-2fa", "Alice@example.com"])
    assert result.exit_code == 0, result.output
    db.session.refresh(customer)
    assert not customer.mfa_enabled
    assert not logged_in(client)
    assert [m.subject for m in outbox] == ["Your bankapp second factor was reset"]
    assert len(audit_rows(Action.MFA_RESET)) == 1
    assert password_step(app.test_client()).headers["Location"].endswith("/dashboard/")


def test_reset_2fa_lifts_a_lockout(app, runner, client, customer, enrolled):
    password_step(client)
    for _ in range(5):
        second_step(client, "000000")
    runner.invoke(args=["reset-2fa", customer.email])
    secret = enrol_totp(customer)
    other = app.test_client()
    password_step(other)
    assert second_step(other, totp_now(secret)).status_code == 302


def test_reset_2fa_of_an_unknown_user_fails_clearly(runner):
    result = runner.invoke(args=["reset-2fa", "nobody@example.com"])
    assert result.exit_code != 0 and "no user" in result.output


def test_rotate_field_key_reencrypts_under_the_new_key(app, runner, customer, enrolled):
    from cryptography.fernet import Fernet

    from bankapp.identity.factors import verify_second_factor

    old_key = Fernet.generate_key().decode()
    app.config["FIELD_ENCRYPTION_KEY"] = old_key
    secret = enrol_totp(customer)
    new_key = Fernet.generate_key().decode()
    app.config["FIELD_ENCRYPTION_KEY"] = f"{new_key},{old_key}"
    result = runner.invoke(args=["rotate-field-key"])
    assert result.exit_code == 0 and "1 stored secret" in result.output
    app.config["FIELD_ENCRYPTION_KEY"] = new_key
    assert verify_second_factor(customer, totp_now(secret)) == "totp"


def test_seed_demo_gives_staff_a_printed_authenticator_key(runner):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    keys = re.findall(r"authenticator key: ([A-Z2-7]+)", result.output)
    assert len(keys) == 2
