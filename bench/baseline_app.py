"""The bare baseline for bench/load_bench.py: a transfer endpoint doing nothing but the two
conditional balance updates.

    DATABASE_URL=postgresql://… gunicorn --chdir bench baseline_app:app

Flask + SQLAlchemy Core, no ORM, no authentication, no idempotency, no ledger rows, no
audit: ``POST /api/v1/transfers`` with the same JSON body as bankapp's API (``from_account``,
``to_account``, ``amount`` as a string) runs, in one transaction, the two conditional UPDATEs
of ``bankapp.ledger`` in ascending account number (the seeded accounts' numbers follow their
ids) and answers 201 with the source's new balance, or 422 when a leg is refused. Served with
the same gunicorn settings and driven by the same wrk script as bankapp, it is the ceiling a
Flask + SQLAlchemy app reaches on this machine: bankapp's ratio to it is what the rest of its
work costs. Not part of bankapp; never deployed.
"""
from __future__ import annotations

import os
from decimal import Decimal

import sqlalchemy as sa
from flask import Flask, jsonify, request

LOWEST, HIGHEST = Decimal("0.00"), Decimal("9999999999.99")

engine = sa.create_engine(
    os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg2://", 1))
accounts = sa.table("accounts", sa.column("account_number"), sa.column("balance"),
                    sa.column("status"))
new_balance = accounts.c.balance + sa.bindparam("delta", type_=sa.Numeric(12, 2))
leg = (sa.update(accounts)
       .where(accounts.c.account_number == sa.bindparam("number"),
              accounts.c.status == "active",
              new_balance.between(LOWEST, HIGHEST))
       .values(balance=new_balance)
       .returning(accounts.c.balance))

app = Flask(__name__)


@app.post("/api/v1/transfers")
def transfer():
    body = request.get_json()
    amount = Decimal(body["amount"])
    legs = sorted([(body["from_account"], -amount), (body["to_account"], amount)])
    balances = {}
    with engine.connect() as connection:
        for number, delta in legs:
            balances[number] = connection.execute(
                leg, {"number": number, "delta": delta}).scalar_one_or_none()
            if balances[number] is None:
                connection.rollback()
                return jsonify(error="refused"), 422
        connection.commit()
    return jsonify(from_account=body["from_account"], amount=str(amount),
                   balance_after=str(balances[body["from_account"]])), 201
