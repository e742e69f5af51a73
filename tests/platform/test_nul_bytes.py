"""A NUL character that would reach the database is refused with 400, never a 500.

No text column can store one (PostgreSQL refuses it), so one guard where values meet the
database answers for every page, form and query string; forms that already refuse the value
re-render as before, and the API answers its own 422.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from bankapp.audit import Action
from bankapp.extensions import db
from bankapp.models import AuditEvent, Payee, Role, Transaction
from support.users import TEST_PASSWORD, log_in_as
from support.web import form_fields, post_form

NUL = "\x00"


@pytest.fixture
def as_role(client, make_user):
    def log_in(role: str):
        user = make_user(email=f"{role}@example.com", role=role)
        log_in_as(client, user)
        return user
    return log_in


def test_a_nul_byte_in_the_login_email_is_refused(client, customer):
    response = post_form(client, "/accounts/login/",
                         {"email": f"alice{NUL}@example.com", "password": TEST_PASSWORD})
    assert response.status_code == 400
    assert "cannot be stored" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == Action.LOGIN_FAILURE)) == 0


def test_a_nul_byte_in_the_profile_last_name_changes_nothing(client, as_role):
    user = as_role(Role.CUSTOMER)
    response = post_form(client, "/accounts/profile/", {
        "first_name": "Alice", "last_name": f"Arch{NUL}er", "phone_number": "+442071838750"})
    assert response.status_code == 400
    db.session.refresh(user)
    assert user.last_name != f"Arch{NUL}er"


def test_a_nul_byte_in_a_payee_nickname_is_refused(client, as_role, make_user, funded_account):
    as_role(Role.CUSTOMER)
    payee = funded_account(make_user(email="bob@example.com"))
    shown = post_form(client, "/accounts/payees/", {
        "account_number": payee.account_number, "nickname": f"Bob{NUL}"})
    confirm = client.post("/accounts/payees/confirm/",
                          data=form_fields(shown.get_data(as_text=True)))
    assert confirm.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payee)) == 0


def test_a_nul_byte_in_a_deposit_description_posts_nothing(client, as_role, funded_account):
    account = funded_account(as_role(Role.CUSTOMER))
    url = f"/accounts/{account.account_number}/deposit/"
    response = post_form(client, url, {"amount": "10.00", "description": f"cash{NUL}"})
    assert response.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Transaction)) == 0


def test_a_nul_byte_in_a_one_time_key_posts_nothing(client, as_role, funded_account):
    account = funded_account(as_role(Role.CUSTOMER))
    url = f"/accounts/{account.account_number}/deposit/"
    response = post_form(client, url, {"amount": "10.00", "description": "cash",
                                       "idempotency_key": f"{'k' * 20}{NUL}"})
    assert response.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Transaction)) == 0


def test_a_nul_byte_in_the_teller_search_is_refused(client, as_role):
    as_role(Role.TELLER)
    assert client.get("/teller/customers/?q=ali%00ce").status_code == 400


def test_a_nul_byte_in_the_audit_trail_filter_is_refused(client, as_role):
    as_role(Role.ADMIN)
    assert client.get("/admin/audit/?actor=adm%00in").status_code == 400


def test_a_nul_byte_in_a_path_is_refused(client, as_role):
    as_role(Role.TELLER)
    assert client.get("/teller/entries/ENT%00X/").status_code == 400
