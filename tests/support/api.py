"""Helpers for the API tests: bearer headers, JSON requests, problem assertions."""
from __future__ import annotations

import json
import uuid

import sqlalchemy as sa

from bankapp.api.tokens import issue_access_token
from bankapp.extensions import db
from bankapp.models import Account, JournalEntry

PROBLEM_JSON = "application/problem+json"


def bearer(user) -> dict:
    return {"Authorization": f"Bearer {issue_access_token(user)}"}


def new_key() -> str:
    return str(uuid.uuid4())


def send(client, method: str, url: str, user=None, body=None, *, raw: str | None = None,
         key: str | None = None, headers: dict | None = None):
    """One API request as a program would send it: JSON body, bearer token, optional key."""
    all_headers = dict(bearer(user)) if user is not None else {}
    if key is not None:
        all_headers["Idempotency-Key"] = key
    all_headers.update(headers or {})
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    return client.open(url, method=method, data=data, headers=all_headers,
                       content_type="application/json" if data is not None else None)


def assert_problem(response, status: int) -> dict:
    """The response is an RFC 9457 problem with ``status``; return its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == PROBLEM_JSON
    body = response.get_json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= body.keys()
    return body


def balance(account: Account):
    return db.session.scalar(sa.select(Account.balance).where(Account.id == account.id))


def entry_count() -> int:
    return db.session.scalar(sa.select(sa.func.count(JournalEntry.id)))
