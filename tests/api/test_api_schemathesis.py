"""Property-based contract test: the API against its own OpenAPI document (schemathesis).

For every operation in /api/v1/openapi.json, schemathesis generates requests from the
document (valid and invalid ones) and sends them to the WSGI app with a seeded customer's
token (a teller's for the staff-only search). Every response must be documented for its
operation (status code, content type, headers, body schema) and none may be a 5xx.
Bounded: a few examples per operation, derandomized so CI runs are repeatable.
"""
import os
from decimal import Decimal

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bankapp import create_app, ledger
from bankapp.api.tokens import issue_access_token
from bankapp.extensions import db
from bankapp.models import Account, Role
from config import TestingConfig

# Deeper local runs: SCHEMATHESIS_MAX_EXAMPLES=500 pytest tests/api/test_api_schemathesis.py
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


@pytest.fixture
def seeded_tokens(app, make_user):
    """A customer, a payee and a teller, with the accounts the document's examples name."""
    customer = make_user(email="fuzz@example.com")
    teller = make_user(email="teller@example.com", role=Role.TELLER)
    account = Account(account_number="ACC-000000001", account_type="CHECKING",
                      owner_id=customer.id, balance=Decimal("0.00"))
    payee = Account(account_number="ACC-000000002", account_type="SAVINGS",
                    owner_id=make_user(email="payee@example.com").id, balance=Decimal("0.00"))
    db.session.add_all([account, payee])
    db.session.commit()
    ledger.deposit(account, Decimal("1000.00"), "Seed", customer)
    return {"customer": issue_access_token(customer), "teller": issue_access_token(teller)}


def _served_document() -> dict:
    """The document exactly as the app serves it at /api/v1/openapi.json (no database)."""
    response = create_app(TestingConfig).test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()


# Loaded at import (schemathesis' lazy fixture loader does not work with pytest 9); each
# request is then sent to the test's own WSGI app, on its fresh database.
schema = schemathesis.openapi.from_dict(_served_document())


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case, app, seeded_tokens):
    role = "teller" if case.operation.path == "/api/v1/customers" else "customer"
    case.call_and_validate(headers={"Authorization": f"Bearer {seeded_tokens[role]}"},
                           checks=CHECKS, app=app)
