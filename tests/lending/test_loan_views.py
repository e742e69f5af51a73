"""The loan pages: applying with the schedule shown first, the loan's page, repaying, and the
teller's queue where applications are approved or rejected."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from bankapp.extensions import db
from bankapp.models import Loan, LoanStatus
from support.api import bearer
from support.backoffice import balance, post_with_csrf
from support.lending import active_loan, apply_for
from support.users import log_in_as
from support.web import form_fields, post_form

APPLY = "/loans/apply/"


def _application(product, account, **changes):
    return {"product": str(product.id), "principal": "1,200.00", "term": "12",
            "account": account.account_number, "purpose": "Shop stock", **changes}


def test_the_schedule_is_shown_before_applying(customer_client, product, account):
    response = post_form(customer_client, APPLY, {**_application(product, account),
                                                  "show": "1"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="schedule"' in page and "$106.62" in page
    assert 'name="apply"' in page
    assert db.session.query(Loan).count() == 0


def test_a_customer_applies_from_the_form(customer_client, product, account):
    response = post_form(customer_client, APPLY, {**_application(product, account),
                                                  "apply": "1"}, follow_redirects=True)
    assert response.status_code == 200
    assert "Your application for $1,200.00 was sent" in response.get_data(as_text=True)
    assert db.session.query(Loan).one().status == LoanStatus.SUBMITTED


@pytest.mark.parametrize("changes,message", [
    ({"principal": "99.99"}, "This product lends from"),
    ({"term": "61"}, "repaid in 1 to 60 repayments"),
    ({"term": ""}, "repaid in 1 to 60 repayments"),
    ({"principal": "1.234,5"}, "ambiguous"),
    ({"principal": "-5"}, "greater than zero"),
])
def test_a_bad_application_is_shown_again_with_why(customer_client, product, account,
                                                   changes, message):
    response = post_form(customer_client, APPLY, {**_application(product, account, **changes),
                                                  "apply": "1"})
    assert response.status_code in (200, 422)
    assert message in response.get_data(as_text=True)
    assert db.session.query(Loan).count() == 0


def test_the_application_page_speaks_french(client, customer, product, account):
    customer.locale = "fr"
    db.session.commit()
    log_in_as(client, customer)
    page = client.get(APPLY).get_data(as_text=True)
    assert "Demander un prêt" in page


def test_the_loan_page_shows_the_schedule_and_the_payoff(customer_client, customer, account,
                                                         product, teller):
    loan = active_loan(customer, account, product, teller)
    page = customer_client.get(f"/loans/{loan.id}/").get_data(as_text=True)
    assert 'id="payoff"' in page and "$1,200.00" in page
    assert page.count('class="instalment') == 12


def test_another_customers_loan_is_not_found(client, customer, account, product, teller,
                                             make_user):
    loan = active_loan(customer, account, product, teller)
    log_in_as(client, make_user(email="eve@example.com"))
    assert client.get(f"/loans/{loan.id}/").status_code == 404


def test_a_customer_repays_from_the_loan_page(customer_client, customer, account, product,
                                              teller):
    loan = active_loan(customer, account, product, teller)
    fields = form_fields(customer_client.get(f"/loans/{loan.id}/").get_data(as_text=True))
    response = customer_client.post(f"/loans/{loan.id}/repay/",
                                    data={**fields, "amount": "50.00"}, follow_redirects=True)
    assert "Repaid $50.00." in response.get_data(as_text=True)
    assert balance(account) == D("1640.00")


def test_repaying_more_than_the_payoff_from_the_page_changes_nothing(customer_client, customer,
                                                                     account, product, teller):
    loan = active_loan(customer, account, product, teller)
    fields = form_fields(customer_client.get(f"/loans/{loan.id}/").get_data(as_text=True))
    response = customer_client.post(f"/loans/{loan.id}/repay/",
                                    data={**fields, "amount": "5,000.00"})
    assert response.status_code == 422
    assert "more than the loan owes" in response.get_data(as_text=True)
    assert balance(account) == D("1690.00")


def test_the_teller_queue_lists_applications(client, customer, account, product, teller):
    loan = apply_for(customer, account, product)
    log_in_as(client, teller)
    page = client.get("/teller/loans/").get_data(as_text=True)
    assert loan.number in page


def test_a_teller_approves_from_the_review_page(app, client, customer, account, product,
                                                teller):
    loan = apply_for(customer, account, product)
    log_in_as(client, teller)
    response = post_with_csrf(client, app, f"/teller/loans/{loan.id}/approve")
    assert response.status_code == 303
    db.session.refresh(loan)
    assert loan.status == LoanStatus.ACTIVE
    assert balance(account) == D("1690.00")


def test_a_rejection_without_a_reason_is_shown_again(app, client, customer, account, product,
                                                     teller):
    loan = apply_for(customer, account, product)
    log_in_as(client, teller)
    response = post_with_csrf(client, app, f"/teller/loans/{loan.id}/reject", {"reason": ""})
    assert response.status_code == 422
    assert "Give a reason." in response.get_data(as_text=True)
    db.session.refresh(loan)
    assert loan.status == LoanStatus.SUBMITTED


def test_a_customer_cannot_reach_the_queue(customer_client):
    assert customer_client.get("/teller/loans/").status_code == 403


@pytest.mark.parametrize("url", ["/loans/{}/", "/teller/loans/{}/", "/api/v1/loans/{}"])
def test_a_loan_id_too_large_for_the_database_is_not_found(client, customer, teller, url):
    log_in_as(client, teller if url.startswith("/teller") else customer)
    headers = bearer(customer) if url.startswith("/api") else {}
    response = client.get(url.format(2**70), headers=headers)
    assert response.status_code == 404
