"""The profile page: name and phone as at sign-up, and an email change that must be confirmed
by the new address and can be undone from the old one."""
from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bankapp.audit import Action
from bankapp.extensions import db, mail
from bankapp.models import EmailChange, EmailChangeStatus, Role
from bankapp.identity.security import (
    EMAIL_CHANGE_CONFIRM_SALT,
    check_password,
    signing_serializer,
    make_email_change_confirm_token,
    make_email_change_not_me_token,
)
from support.backoffice import audit_rows
from support.users import TEST_PASSWORD, age_the_sign_in, enrol_totp, log_in_as, totp_now
from support.web import csrf_token, post_form

NEW = "alice.new@example.com"
CONFIRM_LINK = re.compile(r"http://localhost(/accounts/profile/email/confirm/[^/\s]+/)")
NOT_ME_LINK = re.compile(r"http://localhost(/accounts/profile/email/not-me/[^/\s]+/)")
CHECK_NEW_MAILBOX = "Check the mailbox of your new address"


def changes() -> list[EmailChange]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(EmailChange).order_by(EmailChange.id)))


def request_change(client, new_email=NEW, password=TEST_PASSWORD):
    with mail.record_messages() as outbox:
        response = post_form(client, "/accounts/profile/email/",
                             {"new_email": new_email, "current_password": password})
    return response, outbox


def mail_to(outbox, address):
    return [message for message in outbox if message.recipients == [address]]


def links(outbox, pattern) -> list[str]:
    return [link for message in outbox for link in pattern.findall(message.body)]


@pytest.fixture
def requested(customer_client):
    """Alice asked to move to NEW: the confirmation link and the "not me" link."""
    _, outbox = request_change(customer_client)
    [confirm] = links(outbox, CONFIRM_LINK)
    [not_me] = links(outbox, NOT_ME_LINK)
    return confirm, not_me


@pytest.fixture
def other_device(app, customer):
    device = app.test_client()
    log_in_as(device, customer)
    assert device.get("/dashboard/").status_code == 200
    return device


def logged_out(device) -> bool:
    response = device.get("/dashboard/")
    return response.status_code == 302 and "/accounts/login/" in response.headers["Location"]


# ---------------------------------------------------------------- name and phone


@pytest.mark.parametrize("role", Role.ALL)
def test_every_role_has_a_profile_page_in_the_navigation(client, make_user, role):
    user = make_user(role=role, phone_number="+442071838750")
    log_in_as(client, user)
    page = client.get("/accounts/profile/").get_data(as_text=True)
    assert 'href="/accounts/profile/"' in page and ">Profile<" in page
    assert 'value="+442071838750"' in page and user.email in page


def test_the_profile_page_needs_a_login(client):
    response = client.get("/accounts/profile/")
    assert response.status_code == 302 and "/accounts/login/" in response.headers["Location"]


def test_profile_saves_name_and_phone_in_the_sign_up_form(customer_client, customer):
    response = post_form(customer_client, "/accounts/profile/", {
        "first_name": "  Alicia ", "last_name": "", "phone_number": "+44 20 7183 8751"})
    assert response.status_code == 302
    db.session.refresh(customer)
    assert (customer.first_name, customer.last_name) == ("Alicia", None)
    assert customer.phone_number == "+442071838751"  # stored in E.164, as at sign-up


def test_a_phone_change_needs_a_recent_sign_in(customer_client, customer):
    age_the_sign_in(customer_client)
    response = post_form(customer_client, "/accounts/profile/", {
        "first_name": "Alice", "last_name": "Archer", "phone_number": "+44 20 7183 8751"})
    assert response.status_code == 302
    assert "/accounts/reauthenticate/" in response.headers["Location"]
    db.session.refresh(customer)
    assert customer.phone_number == "+442071838750"


def test_a_phone_change_tells_the_owner_by_email(customer_client, customer):
    with mail.record_messages() as outbox:
        post_form(customer_client, "/accounts/profile/", {
            "first_name": "Alice", "last_name": "Archer", "phone_number": "+44 20 7183 8751"})
    [notice] = mail_to(outbox, "alice@example.com")
    assert "phone number" in notice.body and "ending 50" in notice.body
    assert "ending 51" in notice.body


def test_a_name_change_needs_no_recent_sign_in(customer_client, customer):
    age_the_sign_in(customer_client)
    response = post_form(customer_client, "/accounts/profile/", {
        "first_name": "Alicia", "last_name": "Archer", "phone_number": "+44 20 7183 8750"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/profile/")
    db.session.refresh(customer)
    assert customer.first_name == "Alicia"


def _phone_error(response) -> str:
    match = re.search(r'id="phone_number-error">([^<]*)<', response.get_data(as_text=True))
    return match.group(1) if match else ""


@pytest.mark.parametrize("phone", ["", "020 7183 8750", "+44 20 7183 875x", "+1234567",
                                   "+99 1234 5678", "+44 20 7183 8750 1234 5678"])
def test_phone_is_validated_as_at_sign_up(client, customer, phone):
    signup = post_form(client, "/accounts/signup/", {
        "email": "new@example.com", "password1": TEST_PASSWORD, "password2": TEST_PASSWORD,
        "phone_number": phone, "date_of_birth": "1990-01-01"})
    log_in_as(client, customer)
    response = post_form(client, "/accounts/profile/", {
        "first_name": "Alice", "last_name": "Archer", "phone_number": phone})
    assert response.status_code == 200
    assert _phone_error(response) and _phone_error(response) == _phone_error(signup)
    db.session.refresh(customer)
    assert customer.phone_number == "+442071838750"


def test_profile_update_is_audited_by_field_names_not_values(customer_client, customer):
    post_form(customer_client, "/accounts/profile/", {
        "first_name": "Alice", "last_name": "Archer", "phone_number": "+442071838751"})
    [row] = audit_rows(Action.PROFILE_UPDATE)
    assert row.actor_id == customer.id and row.target_id == str(customer.id)
    assert row.details == {"fields": ["phone_number"]}


def test_saving_an_unchanged_profile_writes_no_audit_row(customer_client):
    post_form(customer_client, "/accounts/profile/", {
        "first_name": "Alice", "last_name": "Archer", "phone_number": "+442071838750"})
    assert audit_rows(Action.PROFILE_UPDATE) == []


# ---------------------------------------------------------------- requesting an email change


def test_email_change_sends_the_confirmation_link_to_the_new_address_only(customer_client,
                                                                           customer):
    response, outbox = request_change(customer_client, NEW.upper())
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/accounts/profile/")
    assert CHECK_NEW_MAILBOX in customer_client.get("/accounts/profile/").get_data(as_text=True)
    assert len(links(mail_to(outbox, NEW), CONFIRM_LINK)) == 1
    assert links(mail_to(outbox, "alice@example.com"), CONFIRM_LINK) == []
    db.session.refresh(customer)
    assert customer.email == "alice@example.com"  # nothing moves before the confirmation
    [change] = changes()
    assert (change.old_email, change.new_email, change.status) == (
        "alice@example.com", NEW, EmailChangeStatus.PENDING)
    [row] = audit_rows(Action.EMAIL_CHANGE_REQUEST)
    assert row.actor_id == customer.id and row.details == {"change_id": change.id}


def test_the_old_address_gets_a_notice_with_the_not_me_link(customer_client):
    _, outbox = request_change(customer_client)
    [notice] = mail_to(outbox, "alice@example.com")
    assert NEW in notice.body and len(NOT_ME_LINK.findall(notice.body)) == 1
    assert links(mail_to(outbox, NEW), NOT_ME_LINK) == []


def test_email_change_needs_the_current_password(customer_client, customer):
    response, outbox = request_change(customer_client, password="not my password 42")
    assert response.status_code == 200
    assert "That is not your current password." in response.get_data(as_text=True)
    assert outbox == [] and changes() == []
    [row] = audit_rows(Action.EMAIL_CHANGE_FAILURE)
    assert row.actor_id == customer.id and row.details == {"reason": "wrong current password"}
    assert audit_rows(Action.EMAIL_CHANGE_REQUEST) == []


def test_email_change_attempts_are_limited_per_account(app, customer_client):
    for _ in range(5):
        assert request_change(customer_client, password="wrong guess 1234")[0].status_code == 200
    assert request_change(customer_client)[0].status_code == 429
    assert changes() == []


def test_email_change_to_the_current_address_is_refused(customer_client):
    response, outbox = request_change(customer_client, "Alice@Example.com")
    assert "That is already your email address." in response.get_data(as_text=True)
    assert outbox == [] and changes() == []


def test_email_change_checks_the_new_address_as_at_sign_up(customer_client):
    response, outbox = request_change(customer_client, "not-an-address")
    assert "Enter a valid email address" in response.get_data(as_text=True)
    assert outbox == [] and changes() == []


def test_email_change_refuses_a_look_alike_address(customer_client):
    response, outbox = request_change(customer_client, "alice.n\u0435w@example.com")
    assert "looks like another address" in response.get_data(as_text=True)
    assert outbox == [] and changes() == []


def test_email_taken_by_another_account_is_not_revealed(customer_client, make_user):
    make_user(email="bob@example.com")
    taken, taken_outbox = request_change(customer_client, "bob@example.com")
    taken_page = customer_client.get("/accounts/profile/").get_data(as_text=True)
    free, _ = request_change(customer_client, "carol@example.com")
    free_page = customer_client.get("/accounts/profile/").get_data(as_text=True)
    assert (taken.status_code, taken.headers["Location"]) == (free.status_code,
                                                              free.headers["Location"])
    assert CHECK_NEW_MAILBOX in taken_page and CHECK_NEW_MAILBOX in free_page
    [notice] = mail_to(taken_outbox, "bob@example.com")
    assert "already the address of your account" in notice.body
    assert links(taken_outbox, CONFIRM_LINK) == []
    assert len(mail_to(taken_outbox, "alice@example.com")) == 1  # the old address still hears


def test_a_new_request_supersedes_the_older_pending_one(customer_client, requested):
    first_confirm, first_not_me = requested
    _, outbox = request_change(customer_client, "alice.other@example.com")
    first, second = changes()
    assert (first.status, second.status) == (EmailChangeStatus.SUPERSEDED,
                                              EmailChangeStatus.PENDING)
    assert first.cancelled_at is not None
    assert customer_client.get(first_confirm).status_code == 400
    assert customer_client.get(first_not_me).status_code == 400


def test_the_confirmation_email_is_limited_per_recipient(customer_client):
    sent = 0
    for _ in range(4):
        _, outbox = request_change(customer_client)
        sent += len(links(outbox, CONFIRM_LINK))
        assert len(mail_to(outbox, "alice@example.com")) == 1  # the notice is never held back
    assert sent == 3  # MAIL_PER_ADDRESS_LIMIT: 3 per hour


# ---------------------------------------------------------------- the confirmation link


def test_the_confirmation_link_moves_the_account_to_the_new_address(client, customer,
                                                                   requested):
    confirm, _ = requested
    response = client.get(confirm)
    assert response.status_code == 302
    db.session.refresh(customer)
    assert customer.email == NEW
    [change] = changes()
    assert change.status == EmailChangeStatus.CONFIRMED and change.confirmed_at is not None
    [row] = audit_rows(Action.EMAIL_CHANGE_CONFIRM)
    assert row.actor_id == customer.id and row.details == {"change_id": change.id}
    login = post_form(client, "/accounts/login/", {"email": NEW, "password": TEST_PASSWORD})
    assert login.status_code == 302 and login.headers["Location"].endswith("/dashboard/")


def test_confirmation_token_works_once(client, customer, requested):
    confirm, _ = requested
    assert client.get(confirm).status_code == 302
    again = client.get(confirm)
    assert again.status_code == 400
    assert "This link does not work" in again.get_data(as_text=True)
    assert len(audit_rows(Action.EMAIL_CHANGE_CONFIRM)) == 1


def test_confirmation_token_is_bound_to_both_addresses(app, client, customer, requested):
    confirm, _ = requested
    [change] = changes()
    # Signed with the app's own key and salt: only the binding to both addresses refuses them.
    forged = signing_serializer(EMAIL_CHANGE_CONFIRM_SALT)
    genuine = {"change": change.id, "old": "alice@example.com", "new": NEW}
    assert forged.loads(confirm.split("/")[-2]) == genuine
    for payload in ({**genuine, "new": "eve@example.com"}, {**genuine, "old": "eve@example.com"}):
        assert client.get(f"/accounts/profile/email/confirm/{forged.dumps(payload)}/"
                          ).status_code == 400
    customer.email = "alice.elsewhere@example.com"  # the account moved on since the request
    db.session.commit()
    assert client.get(confirm).status_code == 400
    db.session.refresh(customer)
    assert customer.email == "alice.elsewhere@example.com"
    assert changes()[0].status == EmailChangeStatus.PENDING


def test_a_not_me_token_is_not_a_confirmation_token(client, customer, requested):
    _, not_me = requested
    token = not_me.rstrip("/").rsplit("/", 1)[-1]
    assert client.get(f"/accounts/profile/email/confirm/{token}/").status_code == 400
    db.session.refresh(customer)
    assert customer.email == "alice@example.com"


def test_an_address_taken_before_confirmation_is_a_clear_error(client, customer, make_user,
                                                                requested):
    confirm, _ = requested
    make_user(email=NEW)  # signed up with the address after Alice asked for it
    response = client.get(confirm)
    assert response.status_code == 409
    assert "This address is taken" in response.get_data(as_text=True)
    db.session.refresh(customer)
    assert customer.email == "alice@example.com"
    assert changes()[0].status == EmailChangeStatus.PENDING
    assert audit_rows(Action.EMAIL_CHANGE_FAILURE)[0].details["reason"] == "address taken"


@pytest.mark.parametrize("link, age", [("confirm", 49 * 3600), ("not_me", 8 * 86400)])
def test_email_change_links_expire(client, customer, monkeypatch, link, age):
    from itsdangerous.timed import TimestampSigner

    change = EmailChange(user_id=customer.id, old_email=customer.email, new_email=NEW)
    db.session.add(change)
    db.session.commit()
    issued = int(time.time()) - age
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: issued)
    if link == "confirm":
        url = f"/accounts/profile/email/confirm/{make_email_change_confirm_token(change)}/"
    else:
        url = f"/accounts/profile/email/not-me/{make_email_change_not_me_token(change)}/"
    monkeypatch.undo()
    assert client.get(url).status_code == 400


# ---------------------------------------------------------------- "this was not me"


def test_opening_the_not_me_link_changes_nothing(client, customer, requested, other_device):
    _, not_me = requested
    page = client.get(not_me)
    assert page.status_code == 200
    assert "Cancel the change and log out everywhere" in page.get_data(as_text=True)
    assert changes()[0].status == EmailChangeStatus.PENDING
    assert not logged_out(other_device)
    assert audit_rows(Action.EMAIL_CHANGE_CANCEL) == []


def test_not_me_link_cancels_the_change_and_ends_every_session(client, customer, requested,
                                                               other_device):
    confirm, not_me = requested
    version = customer.token_version
    response = post_form(client, not_me, {})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "The email change is cancelled" in page and 'href="/accounts/password_reset/"' in page
    [change] = changes()
    assert change.status == EmailChangeStatus.CANCELLED and change.cancelled_at is not None
    assert logged_out(other_device)
    db.session.refresh(customer)
    assert customer.token_version == version + 1  # every API token is revoked too
    assert customer.email == "alice@example.com"
    [row] = audit_rows(Action.EMAIL_CHANGE_CANCEL)
    assert row.actor_id == customer.id and row.details["change_id"] == change.id
    assert client.get(confirm).status_code == 400  # the confirmation link is dead


def test_not_me_ends_the_session_of_the_browser_it_is_pressed_in(customer_client, requested):
    _, not_me = requested
    post_form(customer_client, not_me, {})
    assert logged_out(customer_client)


def test_not_me_after_confirmation_restores_the_old_address(client, customer, requested,
                                                            other_device):
    confirm, not_me = requested
    client.get(confirm)
    db.session.refresh(customer)
    assert customer.email == NEW
    response = post_form(client, not_me, {})
    assert response.status_code == 200
    assert "keeps the address" in response.get_data(as_text=True)
    db.session.refresh(customer)
    assert customer.email == "alice@example.com"
    [change] = changes()
    assert change.status == EmailChangeStatus.CANCELLED and change.confirmed_at is not None
    assert logged_out(other_device)
    assert audit_rows(Action.EMAIL_CHANGE_CANCEL)[0].details["old_email_restored"] is True


def test_not_me_kills_a_reset_link_sent_to_the_address_it_undoes(app, client, customer,
                                                                 requested):
    confirm, not_me = requested
    client.get(confirm)
    # Whoever moved the account asks for a reset link at the address they now control.
    with mail.record_messages() as outbox:
        post_form(app.test_client(), "/accounts/password_reset/", {"email": NEW})
    [reset] = [link for message in mail_to(outbox, NEW)
               for link in re.findall(r"http://localhost(/accounts/reset/[^/\s]+/)",
                                      message.body)]
    post_form(client, not_me, {})
    attacker = app.test_client()
    assert attacker.get(reset).status_code == 400
    response = post_form(attacker, reset, {"new_password1": "lantern orbit velvet quarry",
                                           "new_password2": "lantern orbit velvet quarry"})
    assert response.status_code == 400
    db.session.refresh(customer)
    assert check_password(customer, TEST_PASSWORD)


def test_not_me_still_ends_every_session_when_the_old_address_was_taken_meanwhile(
        client, customer, make_user, requested, other_device):
    confirm, not_me = requested
    client.get(confirm)
    make_user(email="alice@example.com")  # the freed address now belongs to someone else
    response = post_form(client, not_me, {})
    assert response.status_code == 200
    assert "Please contact the bank" in response.get_data(as_text=True)
    db.session.refresh(customer)
    assert customer.email == NEW
    assert changes()[0].status == EmailChangeStatus.CANCELLED
    assert logged_out(other_device)
    assert audit_rows(Action.EMAIL_CHANGE_CANCEL)[0].details["old_email_restored"] is False


def test_not_me_token_works_once(client, customer, requested):
    _, not_me = requested
    assert post_form(client, not_me, {}).status_code == 200
    db.session.refresh(customer)
    session_token = customer.session_token
    # A valid CSRF token, so only the used link can be what is refused.
    again = client.post(not_me, data={"csrf_token": csrf_token(client, "/accounts/login/")})
    assert again.status_code == 400
    assert client.get(not_me).status_code == 400
    db.session.refresh(customer)
    assert customer.session_token == session_token
    assert len(audit_rows(Action.EMAIL_CHANGE_CANCEL)) == 1


def test_not_me_needs_the_csrf_token(client, customer, requested, other_device):
    _, not_me = requested
    assert client.post(not_me, data={}).status_code == 400
    assert changes()[0].status == EmailChangeStatus.PENDING
    assert not logged_out(other_device)


def test_not_me_is_refused_once_the_account_moved_on_again(client, customer, requested):
    confirm, not_me = requested
    client.get(confirm)
    customer.email = "alice.third@example.com"
    db.session.commit()
    assert client.get(not_me).status_code == 400
    assert client.post(not_me, data={"csrf_token": csrf_token(client, "/accounts/login/")}
                       ).status_code == 400
    db.session.refresh(customer)
    assert customer.email == "alice.third@example.com"


def test_a_confirmed_change_cannot_be_followed_by_another_while_it_can_be_undone(
        customer_client, customer, requested):
    # Else a thief with the session and password moves the account twice, and the owner's
    # "not me" link (which undoes only the change the account still shows) goes dead.
    confirm, not_me = requested
    customer_client.get(confirm)
    response, outbox = request_change(customer_client, new_email="alice.third@example.com")
    assert response.status_code == 200
    assert "cannot be changed again before" in response.get_data(as_text=True)
    assert outbox == []
    assert [change.status for change in changes()] == [EmailChangeStatus.CONFIRMED]
    db.session.refresh(customer)
    assert customer.email == NEW
    assert customer_client.get(not_me).status_code == 200


def test_the_email_can_change_again_once_the_last_change_can_no_longer_be_undone(
        app, customer_client, customer, requested):
    confirm, _ = requested
    customer_client.get(confirm)
    [change] = changes()
    change.requested_at = change.requested_at - timedelta(
        seconds=app.config["EMAIL_CHANGE_REVERT_MAX_AGE"] + 60)
    db.session.commit()
    response, outbox = request_change(customer_client, new_email="alice.third@example.com")
    assert response.status_code == 302
    assert len(links(outbox, CONFIRM_LINK)) == 1


# ---------------------------------------------------------------- with a second factor


def test_email_change_needs_a_current_code_when_the_user_has_a_second_factor(customer_client,
                                                                            customer):
    enrol_totp(customer)
    response, outbox = request_change(customer_client)
    assert response.status_code == 200
    assert "Enter the current code" in response.get_data(as_text=True)
    assert outbox == [] and changes() == []


def test_a_wrong_code_changes_nothing_and_counts_toward_the_lockout(customer_client, customer):
    enrol_totp(customer)
    with mail.record_messages() as outbox:
        response = post_form(customer_client, "/accounts/profile/email/", {
            "new_email": NEW, "current_password": TEST_PASSWORD, "code": "000000"})
    assert "That code is not right" in response.get_data(as_text=True)
    assert outbox == [] and changes() == []
    assert len(audit_rows(Action.MFA_FAILURE)) == 1


def test_with_the_password_and_a_current_code_the_change_is_requested(customer_client,
                                                                    customer):
    secret = enrol_totp(customer)
    with mail.record_messages() as outbox:
        response = post_form(customer_client, "/accounts/profile/email/", {
            "new_email": NEW, "current_password": TEST_PASSWORD, "code": totp_now(secret)})
    assert response.status_code == 302
    assert len(links(outbox, CONFIRM_LINK)) == 1
