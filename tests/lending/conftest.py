"""Fixtures of the lending tests: a product, a funded borrower, staff to decide."""
from __future__ import annotations

import pytest

from support.backoffice import admin, other_admin, teller  # noqa: F401  (fixtures)
from support.concurrency import running_worker_app
from support.lending import make_product


@pytest.fixture
def product(app):
    """Monthly, 12 % a year, equal instalments, 100.00 to 50,000.00 over 1 to 60 months,
    5 grace days, a 15.00 late fee and a 10.00 disbursement fee."""
    return make_product()


@pytest.fixture
def account(customer, funded_account):
    """Alice's savings account holding 500.00."""
    return funded_account(customer, "500.00")


@pytest.fixture
def worker_app(app):
    """A second application on the test database for the race's threads."""
    with running_worker_app(app.config["SQLALCHEMY_DATABASE_URI"]) as workers:
        yield workers
