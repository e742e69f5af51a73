"""role_required: anonymous visitors log in first, the wrong role gets a 403 page."""
from __future__ import annotations

import pytest

from bankapp.models import Role
from bankapp.identity.security import role_required
from support.users import log_in_as
from support.web import csrf_token

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


# Pages of one's own login, open to every role (login_required, no role_required).
EVERY_ROLE_URLS = ["/accounts/password/"]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("url", EVERY_ROLE_URLS)
def test_anonymous_visitor_is_sent_to_login_from_every_role_pages(client, url, method):
    # A valid CSRF token (from the login page), so only the login requirement can refuse.
    data = {"csrf_token": csrf_token(client, "/accounts/login/")} if method == "POST" else None
    response = client.open(url, method=method, data=data)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("role", Role.ALL)
@pytest.mark.parametrize("url", EVERY_ROLE_URLS)
def test_every_role_opens_the_every_role_pages(client, make_user, url, role):
    log_in_as(client, make_user(role=role))
    assert client.get(url).status_code == 200
