"""User administration: listing, roles, (de)activation and the last-admin rule."""
import re

import pytest

from bankapp.backoffice.admin import services
from bankapp.audit import Action
from bankapp.extensions import db
from bankapp.models import Role
from support.backoffice import (  # noqa: F401  (fixtures)
    admin,
    admin_client,
    audit_rows,
    other_admin,
    post_with_csrf,
)
from support.users import log_in_as


def test_users_are_listed_and_searched(admin_client, make_user):
    make_user(email="zed@example.com", first_name="Zed", last_name="Zulu")
    make_user(email="yolanda@example.com", first_name="Yolanda", last_name="Young")
    everyone = admin_client.get("/admin/users/").get_data(as_text=True)
    assert "zed@example.com" in everyone and "yolanda@example.com" in everyone
    found = admin_client.get("/admin/users/?q=ZULU").get_data(as_text=True)
    assert "zed@example.com" in found and "yolanda@example.com" not in found


def test_the_user_list_is_paginated(admin_client, make_user):
    for n in range(30):
        make_user(email=f"bulk{n:02d}@example.com")
    first = admin_client.get("/admin/users/?q=bulk").get_data(as_text=True)
    second = admin_client.get("/admin/users/?q=bulk&page=2").get_data(as_text=True)
    assert len(re.findall(r"bulk\d\d@", first)) == 25
    assert len(re.findall(r"bulk\d\d@", second)) == 5 and "Page 2 of 2" in second


def test_admin_changes_a_users_role(app, admin_client, customer):
    response = post_with_csrf(admin_client, app, f"/admin/users/{customer.id}/role/",
                              {"role": "teller"})
    assert response.status_code == 303
    db.session.refresh(customer)
    assert customer.role == Role.TELLER
    [row] = audit_rows(Action.ROLE_CHANGE)
    assert row.details == {"email": customer.email, "from": "customer", "to": "teller"}


def test_an_unknown_role_is_refused_inline(app, admin_client, customer):
    response = post_with_csrf(admin_client, app, f"/admin/users/{customer.id}/role/",
                              {"role": "superuser"})
    assert response.status_code == 200 and "Not a valid choice" in response.get_data(
        as_text=True)
    db.session.refresh(customer)
    assert customer.role == Role.CUSTOMER


def test_a_role_change_takes_effect_on_the_users_next_request(app, admin, client, make_user):
    teller = make_user(role=Role.TELLER)
    log_in_as(client, teller)
    assert client.get("/teller/").status_code == 200
    services.change_role(teller, Role.CUSTOMER, admin)
    assert client.get("/teller/").status_code == 403


def test_deactivation_ends_the_users_sessions(app, admin, customer_client, customer):
    assert customer_client.get("/dashboard/").status_code == 200
    admin_client = app.test_client()
    log_in_as(admin_client, admin)
    response = post_with_csrf(admin_client, app, f"/admin/users/{customer.id}/deactivate/")
    assert response.status_code == 303
    db.session.refresh(customer)
    assert not customer.is_active
    answer = customer_client.get("/dashboard/")
    assert answer.status_code == 302 and "/accounts/login/" in answer.headers["Location"]


def test_reactivation_needs_a_new_login(app, admin, customer_client, customer):
    services.deactivate(customer, admin)
    services.reactivate(customer, admin)
    assert customer.is_active
    # The old cookie carries the rotated-away session token: still refused.
    assert customer_client.get("/dashboard/").status_code == 302


def test_the_last_admin_cannot_demote_themself(app, admin_client, admin):
    response = post_with_csrf(admin_client, app, f"/admin/users/{admin.id}/role/",
                              {"role": "teller"})
    assert response.status_code == 200
    assert "last active admin" in response.get_data(as_text=True)
    db.session.refresh(admin)
    assert admin.role == Role.ADMIN


def test_the_last_admin_cannot_deactivate_themself(app, admin_client, admin):
    response = post_with_csrf(admin_client, app, f"/admin/users/{admin.id}/deactivate/")
    assert response.status_code == 200
    assert "last active admin" in response.get_data(as_text=True)
    db.session.refresh(admin)
    assert admin.is_active
    assert admin_client.get("/admin/users/").status_code == 200


def test_a_deactivated_admin_does_not_count_as_another_admin(admin, other_admin):
    services.deactivate(other_admin, admin)
    with pytest.raises(services.AdminError, match="last active admin"):
        services.change_role(admin, Role.CUSTOMER, admin)


def test_an_admin_may_step_down_when_another_admin_remains(admin, other_admin):
    services.change_role(admin, Role.TELLER, admin)
    assert admin.role == Role.TELLER


def test_deactivating_twice_is_refused_inline(app, admin_client, admin, customer):
    services.deactivate(customer, admin)
    response = post_with_csrf(admin_client, app, f"/admin/users/{customer.id}/deactivate/")
    assert response.status_code == 200
    assert "already deactivated" in response.get_data(as_text=True)
    assert len(audit_rows(Action.DEACTIVATE)) == 1


def test_unknown_user_is_404(admin_client):
    assert admin_client.get("/admin/users/9999/").status_code == 404


# ---------------------------------------------------------------- ending sessions (V7.4.5)


def test_an_admin_ends_one_users_sessions_and_api_tokens(app, admin_client, customer,
                                                         make_user):
    from support.api import bearer

    others = make_user()
    customer_browser, other_browser = app.test_client(), app.test_client()
    log_in_as(customer_browser, customer)
    log_in_as(other_browser, others)
    token = bearer(customer)
    response = post_with_csrf(admin_client, app, f"/admin/users/{customer.id}/end-sessions/")
    assert response.status_code == 303
    assert customer_browser.get("/dashboard/").status_code == 302
    assert app.test_client().get("/api/v1/accounts", headers=token).status_code == 401
    # Nobody else is touched, the user may sign in again, and the admin stays in.
    assert other_browser.get("/dashboard/").status_code == 200
    assert admin_client.get("/admin/users/").status_code == 200
    db.session.refresh(customer)
    assert customer.is_active
    [row] = audit_rows(Action.END_USER_SESSIONS)
    assert row.target_id == str(customer.id) and row.details == {"email": customer.email}


def test_an_admin_ends_everyones_sessions_their_own_included(app, admin_client, admin,
                                                             customer, make_user):
    from support.api import bearer

    browsers = []
    for person in (customer, make_user(role=Role.TELLER)):
        browser = app.test_client()
        log_in_as(browser, person)
        browsers.append(browser)
    token = bearer(customer)
    response = post_with_csrf(admin_client, app, "/admin/sessions/end-all/")
    assert response.status_code == 303 and "/accounts/login/" in response.headers["Location"]
    for browser in (*browsers, admin_client):
        assert browser.get("/reports/").status_code == 302
    assert app.test_client().get("/api/v1/accounts", headers=token).status_code == 401
    [row] = audit_rows(Action.END_ALL_SESSIONS)
    assert row.actor_id == admin.id and row.details == {"sessions": 3}


@pytest.mark.parametrize("url", ["/admin/sessions/end-all/", "/admin/users/1/end-sessions/"])
def test_only_admins_end_sessions(app, client, make_user, customer, url):
    log_in_as(client, make_user(role=Role.TELLER))
    assert post_with_csrf(client, app, url).status_code == 403
    assert audit_rows(Action.END_ALL_SESSIONS) == audit_rows(Action.END_USER_SESSIONS) == []


def test_the_user_page_offers_to_end_their_sessions(admin_client, customer):
    page = admin_client.get(f"/admin/users/{customer.id}/").get_data(as_text=True)
    assert f'action="/admin/users/{customer.id}/end-sessions/"' in page


def test_the_user_list_offers_to_end_everyones_sessions(admin_client):
    page = admin_client.get("/admin/users/").get_data(as_text=True)
    assert 'action="/admin/sessions/end-all/"' in page
