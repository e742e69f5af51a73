"""Password reset: the four steps, and links that must stop working."""
from __future__ import annotations

import re
import time

import pytest

from bankapp.extensions import db, mail
from bankapp.identity.security import check_password, make_reset_token, make_verification_token
from support.users import TEST_PASSWORD, log_in_as
from support.web import post_form

NEW_PASSWORD = "lantern orbit velvet quarry"


def request_reset(client, email):
    with mail.record_messages() as outbox:
        response = post_form(client, "/accounts/password_reset/", {"email": email})
    return response, outbox


def set_new_password(client, token, password=NEW_PASSWORD, again=None):
    return post_form(client, f"/accounts/reset/{token}/",
                     {"new_password1": password, "new_password2": again or password})


def test_reset_request_for_a_known_email_sends_a_working_link(client, customer):
    response, outbox = request_reset(client, "Alice@example.com")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/accounts/password_reset/done/")
    assert len(outbox) == 1 and outbox[0].recipients == ["alice@example.com"]
    link = re.search(r"http://localhost(/accounts/reset/[^/\s]+/)", outbox[0].body).group(1)
    page = client.get(link)
    assert page.status_code == 200
    assert 'autocomplete="new-password"' in page.get_data(as_text=True)
    done = set_new_password(client, link.split("/")[-2])
    assert done.headers["Location"].endswith("/accounts/reset/done/")
    assert client.get("/accounts/reset/done/").status_code == 200
    db.session.refresh(customer)
    assert check_password(customer, NEW_PASSWORD)
    assert not check_password(customer, TEST_PASSWORD)


def test_reset_request_for_an_unknown_email_looks_the_same(client):
    response, outbox = request_reset(client, "nobody@example.com")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/accounts/password_reset/done/")
    # The address is told no account uses it (the same work as a real reset), with no link
    # that resets anything.
    [notice] = outbox
    assert notice.recipients == ["nobody@example.com"]
    assert "no active bankapp account uses it" in notice.body
    assert "/accounts/reset/" not in notice.body


def test_reset_done_page_does_not_reveal_the_address(client):
    page = client.get("/accounts/password_reset/done/").get_data(as_text=True)
    assert "If an account uses the address" in page


def test_new_password_follows_the_sign_up_rules(client, customer):
    token = make_reset_token(customer)
    response = set_new_password(client, token, "password1234")
    assert response.status_code == 200
    assert "most common passwords" in response.get_data(as_text=True)
    response = set_new_password(client, token, "alice@example.com")
    assert "cannot be your email address" in response.get_data(as_text=True)
    db.session.refresh(customer)
    assert check_password(customer, TEST_PASSWORD)


def test_new_passwords_must_match(client, customer):
    response = set_new_password(client, make_reset_token(customer), NEW_PASSWORD,
                                again=NEW_PASSWORD + "x")
    assert response.status_code == 200
    assert "The two passwords do not match." in response.get_data(as_text=True)


def test_reset_token_works_only_once(client, customer):
    token = make_reset_token(customer)
    assert set_new_password(client, token).status_code == 302
    reused = client.get(f"/accounts/reset/{token}/")
    assert reused.status_code == 400
    assert "This reset link does not work" in reused.get_data(as_text=True)


def test_reset_token_stops_working_after_a_password_change(client, customer):
    from bankapp.identity.security import set_password

    token = make_reset_token(customer)
    set_password(customer, "another fine passphrase")
    db.session.commit()
    assert client.get(f"/accounts/reset/{token}/").status_code == 400


def test_tampered_reset_token_is_refused(client, customer):
    token = make_reset_token(customer)
    assert client.get(f"/accounts/reset/{token[:-3]}abc/").status_code == 400


def test_expired_reset_token_is_refused(client, customer, monkeypatch):
    from itsdangerous.timed import TimestampSigner

    issued = int(time.time()) - 2 * 3600  # the link lives one hour
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: issued)
    token = make_reset_token(customer)
    monkeypatch.undo()
    assert client.get(f"/accounts/reset/{token}/").status_code == 400


def test_verification_token_is_not_a_reset_token(client, customer):
    token = make_verification_token(customer)
    assert client.get(f"/accounts/reset/{token}/").status_code == 400
    response = client.post(f"/accounts/reset/{token}/", data={
        "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 400
    db.session.refresh(customer)
    assert check_password(customer, TEST_PASSWORD)


def test_reset_token_is_not_a_verification_token(client, make_user):
    user = make_user(verified=False)
    assert client.get(f"/accounts/verify/{make_reset_token(user)}/").status_code == 400
    db.session.refresh(user)
    assert not user.is_verified


def test_password_reset_ends_the_users_other_sessions(app, client, customer):
    other_device = app.test_client()
    log_in_as(other_device, customer)
    assert other_device.get("/dashboard/").status_code == 200
    set_new_password(client, make_reset_token(customer))
    response = other_device.get("/dashboard/")
    assert response.status_code == 302
    assert "/accounts/login/" in response.headers["Location"]


def test_password_reset_tells_the_owner_by_email(client, customer):
    with mail.record_messages() as outbox:
        set_new_password(client, make_reset_token(customer))
    assert [m.subject for m in outbox] == ["Your bankapp password was changed"]


@pytest.mark.parametrize("attempts, last_status", [(3, 302), (4, 429)])
def test_reset_requests_are_rate_limited(client, attempts, last_status):
    for _ in range(attempts):
        response, _ = request_reset(client, "nobody@example.com")
    assert response.status_code == last_status
