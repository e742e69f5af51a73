"""Passkeys: adding one, signing in with it (both factors, or the second step), what a tampered
or replayed response gets, sign counts, removal and the two-step bookkeeping.

Every ceremony goes through py_webauthn's real verification with a software authenticator
(tests/support/passkeys.py); nothing of ours is mocked.
"""
from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from bankapp.audit import Action
from bankapp.extensions import db
from bankapp.models import RecoveryCode, Role, WebAuthnCredential
from support.backoffice import audit_rows
from support.passkeys import (REGISTER, REGISTER_OPTIONS, SECURITY, UP, SoftAuthenticator,
                              add_passkey, b64url, page_token, post_json)
from support.users import TEST_PASSWORD, age_the_sign_in, enrol_totp, log_in_as, totp_now
from support.web import post_form

LOGIN = "/accounts/login/"
SECOND_STEP = "/accounts/login/2fa/"
SIGN_IN_OPTIONS, SIGN_IN = "/accounts/login/passkey/options/", "/accounts/login/passkey/"
STEP_OPTIONS, STEP = "/accounts/login/2fa/passkey/options/", "/accounts/login/2fa/passkey/"
CONFIRM_OPTIONS = "/accounts/passkeys/confirm/options/"


# ---------------------------------------------------------------- helpers


def register_options(client, name="Work laptop"):
    return post_json(client, REGISTER_OPTIONS, {"name": name}, page_token(client))


def sign_in(client, authenticator: SoftAuthenticator, **tamper):
    """The login page's passkey button: options, the authenticator, the verification."""
    token = page_token(client, LOGIN)
    options = post_json(client, SIGN_IN_OPTIONS, {}, token)
    assert options.status_code == 200, options.get_json()
    return post_json(client, SIGN_IN, {"credential": authenticator.get(options.get_json(),
                                                                         **tamper)}, token)


def password_step(client, email="alice@example.com"):
    return post_form(client, LOGIN, {"email": email, "password": TEST_PASSWORD})


def second_step(client, authenticator: SoftAuthenticator, **tamper):
    token = page_token(client, SECOND_STEP)
    options = post_json(client, STEP_OPTIONS, {}, token)
    assert options.status_code == 200, options.get_json()
    return post_json(client, STEP, {"credential": authenticator.get(options.get_json(),
                                                                     **tamper)}, token)


def logged_in(client) -> bool:
    return client.get("/dashboard/").status_code == 200


def stored(authenticator: SoftAuthenticator) -> WebAuthnCredential:
    return db.session.scalar(sa.select(WebAuthnCredential).where(
        WebAuthnCredential.credential_id == authenticator.id))


@pytest.fixture
def alice_passkey(app, customer):
    """Alice with one passkey (added through the security page); its authenticator."""
    client = app.test_client()
    log_in_as(client, customer)
    authenticator, answer = add_passkey(client)
    assert answer.status_code == 201, answer.get_json()
    return authenticator


# ---------------------------------------------------------------- adding a passkey


def test_a_customer_adds_a_named_passkey_and_two_step_sign_in_turns_on(customer_client,
                                                                       customer):
    authenticator, answer = add_passkey(customer_client, name="  Work   laptop ")
    assert answer.status_code == 201
    assert answer.get_json() == {"redirect": "/accounts/security/"}
    passkey = stored(authenticator)
    assert (passkey.user_id, passkey.name, passkey.transports) == (customer.id, "Work laptop",
                                                                   "internal")
    db.session.refresh(customer)
    assert customer.mfa_enabled
    [row] = audit_rows(Action.PASSKEY_ADD)
    assert row.actor_id == customer.id and row.details["name"] == "Work laptop"
    page = customer_client.get(SECURITY).get_data(as_text=True)
    assert re.search(r'class="passkey-name">Work laptop<', page)
    assert re.search(r'class="passkey-last-used">Not yet<', page)


def test_registration_asks_for_a_resident_key_and_user_verification(customer_client, customer):
    options = register_options(customer_client).get_json()
    assert options["rp"] == {"id": "localhost", "name": "bankapp"}
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["user"]["name"] == "alice@example.com"
    assert options["user"]["id"] == b64url(customer.id.to_bytes(8, "big"))
    assert options["excludeCredentials"] == []


def test_registration_excludes_the_passkeys_already_there(customer_client):
    first, _ = add_passkey(customer_client)
    options = register_options(customer_client, name="Phone").get_json()
    assert [c["id"] for c in options["excludeCredentials"]] == [first.id]
    assert options["excludeCredentials"][0]["transports"] == ["internal"]


def test_adding_a_passkey_long_after_signing_in_asks_for_the_password_first(app,
                                                                           customer_client):
    age_the_sign_in(customer_client)
    answer = register_options(customer_client)
    assert answer.status_code == 403
    assert answer.get_json()["detail"] == ("Confirm your password first: this change needs a "
                                           "recent sign-in.")
    with customer_client.session_transaction() as session:
        assert "webauthn" not in session


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, None, 42])
def test_a_passkey_needs_a_name_of_up_to_64_characters(customer_client, name):
    answer = register_options(customer_client, name=name)
    assert answer.status_code == 400
    assert "name of up to 64 characters" in answer.get_json()["detail"]


def test_a_registration_without_user_verification_is_refused(customer_client, customer):
    _, answer = add_passkey(customer_client, flags=UP | 0x40)
    assert answer.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebAuthnCredential)) == 0
    db.session.refresh(customer)
    assert not customer.mfa_enabled
    assert audit_rows(Action.PASSKEY_FAILURE)[0].details["purpose"] == "register"


@pytest.mark.parametrize("tamper", [
    {"challenge": b64url(b"x" * 32)},
    {"origin": "https://evil.example"},
    {"rp_id": "evil.example"},
], ids=["wrong challenge", "wrong origin", "wrong RP id"])
def test_a_tampered_registration_is_refused(customer_client, tamper):
    _, answer = add_passkey(customer_client, **tamper)
    assert answer.status_code == 400
    assert answer.get_json()["detail"] == "That passkey could not be added. Try again."
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebAuthnCredential)) == 0


def test_the_same_passkey_cannot_be_registered_twice(customer_client, customer, make_user,
                                                     app):
    authenticator, _ = add_passkey(customer_client)
    bob = app.test_client()
    log_in_as(bob, make_user(email="bob@example.com"))
    _, answer = add_passkey(bob, authenticator=authenticator)
    assert answer.status_code == 400
    assert answer.get_json()["detail"] == "That passkey is already registered."
    assert stored(authenticator).user_id == customer.id


def test_staff_can_add_a_passkey_as_their_first_factor(client, make_user):
    teller = make_user(role=Role.TELLER, second_factor=False)
    log_in_as(client, teller)
    assert client.get("/teller/").status_code == 302  # the enrolment gate
    _, answer = add_passkey(client)
    assert answer.status_code == 201
    assert client.get("/teller/").status_code == 200


# ---------------------------------------------------------------- signing in


def test_a_passkey_signs_in_with_both_factors(app, customer, alice_passkey):
    client = app.test_client()
    options = post_json(client, SIGN_IN_OPTIONS, {}, page_token(client, LOGIN)).get_json()
    assert options["allowCredentials"] == [] and options["userVerification"] == "required"
    answer = post_json(client, SIGN_IN, {"credential": alice_passkey.get(options)},
                       page_token(client, LOGIN))
    assert answer.status_code == 200
    assert answer.get_json() == {"redirect": "/dashboard/"}
    assert logged_in(client)
    [success] = audit_rows(Action.LOGIN_SUCCESS)
    assert success.actor_id == customer.id and success.details["second_factor"] == "passkey"
    passkey = stored(alice_passkey)
    assert passkey.sign_count == 1 and passkey.last_used_at is not None
    page = client.get(SECURITY).get_data(as_text=True)
    assert not re.search(r'class="passkey-last-used">Not yet<', page)


def test_a_passkey_sign_in_goes_where_the_visitor_was_going(app, alice_passkey):
    client = app.test_client()
    token = page_token(client, LOGIN)
    options = post_json(client, SIGN_IN_OPTIONS, {}, token).get_json()
    answer = post_json(client, SIGN_IN, {"credential": alice_passkey.get(options),
                                         "next": "/accounts/profile/"}, token)
    assert answer.get_json() == {"redirect": "/accounts/profile/"}


def test_a_passkey_sign_in_never_sends_the_visitor_to_another_site(app, alice_passkey):
    client = app.test_client()
    token = page_token(client, LOGIN)
    options = post_json(client, SIGN_IN_OPTIONS, {}, token).get_json()
    answer = post_json(client, SIGN_IN, {"credential": alice_passkey.get(options),
                                         "next": "https://evil.example/"}, token)
    assert answer.get_json() == {"redirect": "/dashboard/"}


def test_a_passkey_is_the_second_step_after_the_password(app, customer, alice_passkey):
    client = app.test_client()
    assert password_step(client).headers["Location"].endswith(SECOND_STEP)
    assert not logged_in(client)
    assert 'data-passkey="second-factor"' in client.get(SECOND_STEP).get_data(as_text=True)
    token = page_token(client, SECOND_STEP)
    options = post_json(client, STEP_OPTIONS, {}, token).get_json()
    assert [c["id"] for c in options["allowCredentials"]] == [alice_passkey.id]
    assert options["userVerification"] == "required"
    answer = post_json(client, STEP, {"credential": alice_passkey.get(options)}, token)
    assert answer.get_json() == {"redirect": "/dashboard/"}
    assert logged_in(client)
    assert audit_rows(Action.LOGIN_SUCCESS)[0].details["second_factor"] == "passkey"


def test_the_two_step_page_offers_a_passkey_only_to_accounts_that_have_one(client, customer):
    enrol_totp(customer)
    password_step(client)
    page = client.get(SECOND_STEP).get_data(as_text=True)
    assert "data-passkey" not in page and "passkeys.js" not in page


def test_the_second_step_needs_a_passkey_of_that_same_account(app, make_user, customer,
                                                              alice_passkey):
    bob = make_user(email="bob@example.com")
    bob_client = app.test_client()
    log_in_as(bob_client, bob)
    bobs_key, _ = add_passkey(bob_client)
    client = app.test_client()
    password_step(client)
    answer = second_step(client, bobs_key)
    assert answer.status_code == 400
    assert not logged_in(client)


def test_the_second_step_by_passkey_needs_the_password_first(app, alice_passkey):
    client = app.test_client()
    answer = post_json(client, STEP_OPTIONS, {}, page_token(client, LOGIN))
    assert answer.status_code == 400
    assert "log in again" in answer.get_json()["detail"]


def test_a_deactivated_customer_cannot_sign_in_with_a_passkey(app, customer, alice_passkey):
    customer.is_active = False
    db.session.commit()
    client = app.test_client()
    assert sign_in(client, alice_passkey).status_code == 400
    assert not logged_in(client)


def test_a_sign_in_whose_user_handle_is_not_the_owners_is_refused(app, customer, make_user,
                                                                  alice_passkey):
    other = make_user(email="bob@example.com")
    client = app.test_client()
    answer = sign_in(client, alice_passkey, user_handle=other.id.to_bytes(8, "big"))
    assert answer.status_code == 400
    assert not logged_in(client)


# ---------------------------------------------------------------- tampered and replayed answers


@pytest.mark.parametrize("tamper, reason", [
    ({"challenge": b64url(b"y" * 32)}, "challenge"),
    ({"origin": "https://evil.example"}, "origin"),
    ({"rp_id": "evil.example"}, "RP ID"),
    ({"flags": UP}, "verification"),
], ids=["wrong challenge", "wrong origin", "wrong RP id", "no user verification"])
def test_a_tampered_sign_in_is_refused_and_audited(app, customer, alice_passkey, tamper, reason):
    client = app.test_client()
    answer = sign_in(client, alice_passkey, **tamper)
    assert answer.status_code == 400
    assert answer.get_json()["detail"].startswith("That passkey could not be checked")
    assert not logged_in(client)
    [failure] = audit_rows(Action.PASSKEY_FAILURE)
    assert failure.actor_id == customer.id and failure.details["purpose"] == "sign-in"
    assert reason in failure.details["reason"]


def test_a_replayed_sign_in_is_refused(app, alice_passkey):
    client = app.test_client()
    token = page_token(client, LOGIN)
    options = post_json(client, SIGN_IN_OPTIONS, {}, token).get_json()
    credential = alice_passkey.get(options)
    assert post_json(client, SIGN_IN, {"credential": credential}, token).status_code == 200
    client.post("/accounts/logout/", data={"csrf_token": page_token(client, "/dashboard/")})
    again = post_json(client, SIGN_IN, {"credential": credential}, page_token(client, LOGIN))
    assert again.status_code == 400
    assert "expired or was already used" in again.get_json()["detail"]
    assert not logged_in(client)
    assert audit_rows(Action.PASSKEY_FAILURE)[0].details["reason"].endswith("already used")


def test_a_challenge_is_spent_even_when_an_old_cookie_is_sent_again(app, customer_client):
    # A synced passkey counts 0 every time: only the spent challenge stops this replay.
    synced, _ = add_passkey(customer_client, authenticator=SoftAuthenticator(counting=False))
    client = app.test_client()
    token = page_token(client, LOGIN)
    options = post_json(client, SIGN_IN_OPTIONS, {}, token).get_json()
    cookie_with_challenge = client.get_cookie("session").value
    credential = synced.get(options)
    assert post_json(client, SIGN_IN, {"credential": credential}, token).status_code == 200
    attacker = app.test_client()
    attacker.set_cookie("session", cookie_with_challenge)
    again = post_json(attacker, SIGN_IN, {"credential": credential}, token)
    assert again.status_code == 400
    assert not logged_in(attacker)


def test_a_challenge_is_used_once_even_when_the_answer_was_wrong(app, alice_passkey):
    client = app.test_client()
    token = page_token(client, LOGIN)
    options = post_json(client, SIGN_IN_OPTIONS, {}, token).get_json()
    wrong = alice_passkey.get(options, origin="https://evil.example")
    assert post_json(client, SIGN_IN, {"credential": wrong}, token).status_code == 400
    right = alice_passkey.get(options)
    assert post_json(client, SIGN_IN, {"credential": right}, token).status_code == 400
    assert not logged_in(client)


def test_an_expired_challenge_is_refused(app, alice_passkey):
    client = app.test_client()
    token = page_token(client, LOGIN)
    options = post_json(client, SIGN_IN_OPTIONS, {}, token).get_json()
    with client.session_transaction() as session:
        pending = dict(session["webauthn"])
        pending["at"] -= app.config["PASSKEY_CHALLENGE_SECONDS"] + 1
        session["webauthn"] = pending
    answer = post_json(client, SIGN_IN, {"credential": alice_passkey.get(options)}, token)
    assert answer.status_code == 400
    assert "expired" in answer.get_json()["detail"]


def test_a_challenge_for_adding_a_passkey_cannot_sign_in(app, customer_client, alice_passkey):
    token = page_token(customer_client)
    options = register_options(customer_client).get_json()
    forged = alice_passkey.get({"challenge": options["challenge"], "rpId": "localhost"})
    assert post_json(customer_client, SIGN_IN, {"credential": forged}, token).status_code == 400


def test_a_lower_or_equal_sign_count_is_refused_as_a_cloned_authenticator(app, alice_passkey):
    assert sign_in(app.test_client(), alice_passkey, count=5).status_code == 200
    for count in (5, 3):
        client = app.test_client()
        answer = sign_in(client, alice_passkey, count=count)
        assert answer.status_code == 400
        assert not logged_in(client)
    assert stored(alice_passkey).sign_count == 5
    assert "sign count" in audit_rows(Action.PASSKEY_FAILURE)[-1].details["reason"]


def test_of_two_checks_racing_with_one_assertion_only_one_moves_the_count(alice_passkey):
    from bankapp.identity.passkeys import _claim_count

    passkey = stored(alice_passkey)
    assert _claim_count(passkey, 7) and not _claim_count(passkey, 7)
    db.session.refresh(passkey)
    assert passkey.sign_count == 7


def test_a_synced_passkey_that_always_counts_zero_signs_in_every_time(app, customer_client):
    synced, _ = add_passkey(customer_client, authenticator=SoftAuthenticator(counting=False))
    for _ in range(2):
        assert sign_in(app.test_client(), synced).status_code == 200
    assert stored(synced).sign_count == 0


def test_a_counting_passkey_cannot_fall_back_to_zero(app, alice_passkey):
    assert sign_in(app.test_client(), alice_passkey).status_code == 200
    assert sign_in(app.test_client(), alice_passkey, count=0).status_code == 400


def test_an_unknown_passkey_is_refused(app, customer):
    answer = sign_in(app.test_client(), SoftAuthenticator())
    assert answer.status_code == 400
    [failure] = audit_rows(Action.PASSKEY_FAILURE)
    assert failure.actor_id is None and failure.details["reason"] == "unknown passkey"


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("url", [REGISTER_OPTIONS, REGISTER, SIGN_IN_OPTIONS, SIGN_IN,
                                 STEP_OPTIONS, STEP, CONFIRM_OPTIONS])
def test_every_passkey_endpoint_refuses_a_request_without_the_csrf_token(customer_client, url):
    answer = post_json(customer_client, url, {"name": "x", "password": TEST_PASSWORD})
    assert answer.status_code == 400
    assert answer.content_type == "application/problem+json"
    assert "CSRF" in answer.get_json()["detail"]


@pytest.mark.parametrize("raw", [
    "{not json", "[]", '"text"', "null", "\x00\xff",
    '{"credential": "garbage"}', '{"credential": 42}',
    '{"credential": {"id": "!!", "rawId": "!!"}}',
    '{"credential": {"id": "AA", "rawId": "AA", "type": "public-key", "response": '
    '{"clientDataJSON": "!!", "authenticatorData": "%%", "signature": "", "userHandle": "@@"}}}',
    '{"credential": {"id": "AA", "rawId": "AA", "type": "public-key", "response": '
    '{"clientDataJSON": "e30", "attestationObject": "oA", "transports": 7}}}',
])
@pytest.mark.parametrize("url", [REGISTER, SIGN_IN, STEP])
def test_a_malformed_body_gets_a_400_with_a_json_reason_never_a_500(app, customer,
                                                                     alice_passkey, url, raw):
    client = app.test_client()
    if url == REGISTER:
        log_in_as(client, customer)
        token = page_token(client)
        register_options(client)
    elif url == SIGN_IN:
        token = page_token(client, LOGIN)
        post_json(client, SIGN_IN_OPTIONS, {}, token)
    else:
        password_step(client)
        token = page_token(client, SECOND_STEP)
        assert post_json(client, STEP_OPTIONS, {}, token).status_code == 200
    answer = post_json(client, url, token=token, raw=raw)
    assert answer.status_code == 400
    assert answer.content_type == "application/problem+json"
    assert "log in again" not in answer.get_json()["detail"]


def test_adding_a_passkey_without_javascript_gets_a_clear_answer(customer_client):
    answer = customer_client.post(REGISTER_OPTIONS, data={
        "csrf_token": page_token(customer_client), "name": "x", "password": TEST_PASSWORD})
    assert answer.status_code == 400
    assert "JavaScript" in answer.get_json()["detail"]


def test_passkeys_need_a_domain_name_not_an_ip_address(app):
    client = app.test_client()
    page = client.get(LOGIN, base_url="http://127.0.0.1/").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    answer = client.post(SIGN_IN_OPTIONS, data="{}", content_type="application/json",
                         headers={"X-CSRFToken": token}, base_url="http://127.0.0.1/")
    assert answer.status_code == 400
    assert "not by an IP address" in answer.get_json()["detail"]


def test_the_relying_party_is_public_url_not_the_requests_host(app, customer_client):
    app.config["PUBLIC_URL"] = "https://bank.example"
    token = page_token(customer_client)
    options = register_options(customer_client).get_json()
    assert options["rp"]["id"] == "bank.example"
    authenticator = SoftAuthenticator()
    as_localhost = authenticator.create(options)  # origin http://localhost: refused
    assert post_json(customer_client, REGISTER, {"credential": as_localhost},
                     token).status_code == 400
    options = register_options(customer_client).get_json()
    as_bank = authenticator.create(options, origin="https://bank.example")
    assert post_json(customer_client, REGISTER, {"credential": as_bank}, token).status_code == 201


# ---------------------------------------------------------------- removal and bookkeeping


def remove(client, passkey_id: int, **fields):
    data = {"csrf_token": page_token(client)} | fields
    return client.post(f"/accounts/passkeys/{passkey_id}/remove/", data=data)


def test_another_users_passkey_cannot_be_removed(app, make_user, alice_passkey):
    bob = app.test_client()
    log_in_as(bob, make_user(email="bob@example.com"))
    assert remove(bob, stored(alice_passkey).id).status_code == 404
    assert remove(bob, 999_999).status_code == 404
    assert stored(alice_passkey) is not None


def test_removing_a_passkey_needs_the_csrf_token(customer_client, alice_passkey):
    answer = customer_client.post(f"/accounts/passkeys/{stored(alice_passkey).id}/remove/")
    assert answer.status_code == 400
    assert stored(alice_passkey) is not None


def test_one_of_two_passkeys_is_removed_with_a_button(customer_client, customer, alice_passkey):
    add_passkey(customer_client, name="Phone")
    answer = remove(customer_client, stored(alice_passkey).id)
    assert answer.status_code == 302
    assert stored(alice_passkey) is None
    db.session.refresh(customer)
    assert customer.mfa_enabled
    assert audit_rows(Action.PASSKEY_REMOVE)[0].details["name"] == "Work laptop"


def confirm(client, authenticator: SoftAuthenticator, **tamper) -> str:
    options = post_json(client, CONFIRM_OPTIONS, {}, page_token(client)).get_json()
    return json.dumps(authenticator.get(options, **tamper))


def test_the_last_passkey_goes_only_after_a_recent_sign_in_and_with_the_passkey_itself(
        app, customer_client, customer, alice_passkey):
    passkey_id = stored(alice_passkey).id
    page = customer_client.get(SECURITY).get_data(as_text=True)
    assert 'data-passkey="confirm"' in page
    assert remove(customer_client, passkey_id).status_code == 302
    assert stored(alice_passkey) is not None  # no assertion
    remove(customer_client, passkey_id,
           assertion=confirm(customer_client, alice_passkey, origin="https://evil.example"))
    assert stored(alice_passkey) is not None  # tampered assertion
    assertion = confirm(customer_client, alice_passkey)
    age_the_sign_in(customer_client)
    answer = remove(customer_client, passkey_id, assertion=assertion)
    assert "/accounts/reauthenticate/" in answer.headers["Location"]
    assert stored(alice_passkey) is not None  # no recent sign-in
    with customer_client.session_transaction() as session:
        session["auth_at"] = session["seen_at"]
    remove(customer_client, passkey_id, assertion=confirm(customer_client, alice_passkey))
    assert stored(alice_passkey) is None
    db.session.refresh(customer)
    assert not customer.mfa_enabled
    assert password_step(customer_client).headers["Location"].endswith("/dashboard/")


def test_removing_the_authenticator_app_keeps_passkeys_and_two_step_sign_in(
        customer_client, customer, alice_passkey):
    secret = enrol_totp(customer)
    db.session.add(RecoveryCode(user_id=customer.id, code_hash="0" * 64))
    db.session.commit()
    answer = customer_client.post("/accounts/2fa/totp/remove/", data={
        "csrf_token": page_token(customer_client), "remove-code": totp_now(secret)})
    assert answer.status_code == 302
    db.session.refresh(customer)
    assert customer.mfa_enabled
    assert stored(alice_passkey) is not None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode)) == 1
    page = customer_client.get(SECURITY).get_data(as_text=True)
    assert "Remove the authenticator app" not in page
    assert "Also set up an authenticator app" in page


def test_a_passkey_user_can_still_set_up_an_authenticator_app(customer_client, alice_passkey):
    page = customer_client.get("/accounts/2fa/totp/setup/")
    assert page.status_code == 200 and 'id="totp-secret"' in page.get_data(as_text=True)


def test_with_the_app_and_a_passkey_the_passkey_goes_with_a_button(customer_client, customer,
                                                                   alice_passkey):
    enrol_totp(customer)
    remove(customer_client, stored(alice_passkey).id)
    assert stored(alice_passkey) is None
    db.session.refresh(customer)
    assert customer.mfa_enabled


def test_reset_2fa_removes_passkeys_too(runner, customer, alice_passkey):
    result = runner.invoke(args=["reset-2fa", customer.email])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebAuthnCredential)) == 0
    db.session.refresh(customer)
    assert not customer.mfa_enabled


def test_passkey_pages_load_the_script_and_carry_no_inline_script(app, customer_client):
    for url in (SECURITY,):
        page = customer_client.get(url).get_data(as_text=True)
        assert '<script src="/static/js/passkeys.js" defer></script>' in page
        assert not re.search(r"<script(?![^>]*\bsrc=)", page)
        assert not re.search(r"\son[a-z]+=", page) and "style=" not in page
    anonymous = app.test_client()
    page = anonymous.get(LOGIN).get_data(as_text=True)
    assert 'data-passkey="sign-in"' in page and "/static/js/passkeys.js" in page
    script = anonymous.get("/static/js/passkeys.js")
    assert script.status_code == 200 and "javascript" in script.content_type
