"""role_required: anonymous visitors log in first, the wrong role gets a 403 page."""
from __future__ import annotations

import pytest

from bankapp.models import Role
from bankapp.security import role_required
from conftest import log_in_as

STAFF_PAGE = "/test-only/staff/"


@pytest.fixture
def staff_page(app):
    """A tiny staff-only route, registered before the app serves its first request."""

    @role_required(Role.TELLER, Role.ADMIN)
    def staff_only():
        return "staff area"

    app.add_url_rule(STAFF_PAGE, "staff_only", staff_only)
    return STAFF_PAGE


def test_anonymous_visitor_is_sent_to_login(staff_page, client):
    response = client.get(staff_page)
    assert response.status_code == 302
    assert "/accounts/login/" in response.headers["Location"]
    assert "next=" in response.headers["Location"]


def test_customer_on_a_teller_page_gets_403(staff_page, client, customer):
    log_in_as(client, customer)
    response = client.get(staff_page)
    assert response.status_code == 403
    assert "You do not have permission" in response.get_data(as_text=True)


@pytest.mark.parametrize("role", [Role.TELLER, Role.ADMIN])
def test_staff_roles_see_the_teller_page(staff_page, client, make_user, role):
    log_in_as(client, make_user(role=role))
    response = client.get(staff_page)
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "staff area"
