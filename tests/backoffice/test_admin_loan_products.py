"""The admin's loan products page: the products listed, a product added with the rules of
``flask create-loan-product`` (audited), bad terms shown again with why and nothing made."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from bankapp.audit import Action
from bankapp.extensions import db
from bankapp.models import LoanProduct
from support.backoffice import (  # noqa: F401  (fixtures)
    admin,
    admin_client,
    audit_rows,
    teller,
)
from support.lending import PRODUCT_FIELDS, make_product
from support.users import log_in_as
from support.web import post_form

PAGE = "/admin/loan-products/"


def test_the_admin_sees_every_loan_product(admin_client):
    make_product(name="Harvest loan", annual_rate="9.5", late_fee_kind="percent", late_fee="2")
    page = admin_client.get(PAGE).get_data(as_text=True)
    assert page.count('class="product"') == 1
    assert "Harvest loan" in page and "9.5%" in page and "2%" in page


def test_an_admin_adds_a_loan_product(admin_client, admin):  # noqa: F811
    response = post_form(admin_client, PAGE, PRODUCT_FIELDS)
    assert response.status_code == 303
    product = db.session.query(LoanProduct).one()
    assert (product.name, product.principal_max, product.term_max, product.annual_rate) == (
        "Small business loan", D("50000.00"), 60, D("12"))
    assert product.created_by_id == admin.id
    [row] = audit_rows(Action.LOAN_PRODUCT_CREATE)
    assert row.actor_id == admin.id and row.target_id == str(product.id)


def test_the_new_product_is_listed_after_adding_it(admin_client):
    page = post_form(admin_client, PAGE, PRODUCT_FIELDS,
                     follow_redirects=True).get_data(as_text=True)
    assert "Loan product “Small business loan” added" in page
    assert page.count('class="product"') == 1


@pytest.mark.parametrize("changes, field, message", [
    ({"name": "  "}, "name", "Give the product a name of at most 80 characters."),
    ({"currency": "EUR"}, "currency", "Loans are in the bank&#39;s currency, USD."),
    ({"annual_rate": "100.5"}, "annual_rate", "The annual rate is 0 to 100 percent."),
    ({"annual_rate": "-1"}, "annual_rate", "The annual rate is 0 to 100 percent."),
    ({"annual_rate": "12,5"}, "annual_rate", "Enter a number such as 1500.00."),
    ({"principal_min": "60000"}, "principal_max", "The principal runs from a minimum"),
    ({"term_min": "0"}, "term_max", "The term runs from at least 1 repayment"),
    ({"term_max": "ten"}, "term_max", "Enter a whole number."),
    ({"grace_days": "400"}, "grace_days", "Grace days are 0 to 365."),
    ({"frequency": "daily"}, "frequency", "Choose weekly or monthly repayments."),
    ({"late_fee_kind": "percent", "late_fee": "150"}, "late_fee",
     "The late fee is a positive amount, or 0 to 100 percent."),
    ({"disbursement_fee": "100.00"}, "disbursement_fee",
     "The disbursement fee is below the smallest principal."),
])
def test_bad_terms_are_shown_again_with_why_and_add_nothing(admin_client, changes, field,
                                                            message):
    response = post_form(admin_client, PAGE, {**PRODUCT_FIELDS, **changes})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'id="{field}-error">{message}' in page
    assert 'value="Small business loan"' in page or field == "name"
    assert db.session.query(LoanProduct).count() == 0
    assert audit_rows(Action.LOAN_PRODUCT_CREATE) == []


def test_a_second_product_of_the_same_name_is_refused(admin_client):
    make_product()
    response = post_form(admin_client, PAGE, PRODUCT_FIELDS)
    assert response.status_code == 422
    assert "A product with that name exists already." in response.get_data(as_text=True)
    assert db.session.query(LoanProduct).count() == 1


def test_a_form_without_its_csrf_token_adds_nothing(admin_client):
    response = admin_client.post(PAGE, data=PRODUCT_FIELDS)
    assert response.status_code in (400, 422)
    assert db.session.query(LoanProduct).count() == 0


def test_a_teller_cannot_reach_loan_products(client, teller):  # noqa: F811
    log_in_as(client, teller)
    assert client.get(PAGE).status_code == 403


def test_the_loan_products_page_speaks_french(admin_client, admin):  # noqa: F811
    admin.locale = "fr"
    db.session.commit()
    make_product(annual_rate="12.5")
    page = admin_client.get(PAGE).get_data(as_text=True)
    assert "Produits de prêt" in page and "Ajouter un produit" in page
    assert "12,5\xa0%" in page and "Chaque mois" in page
