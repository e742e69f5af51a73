"""Demo data for a fresh development database: one user per role, with known passwords.

``flask seed-demo`` calls ``seed_demo_users``; accounts and history for the demo customer are
added with ``bankapp.ledger`` (the only code that moves money), never written here directly.
"""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import click
from flask import current_app
from flask.cli import with_appcontext

from bankapp import ledger
from bankapp.extensions import db
from bankapp.identity.factors import enrol_totp_without_code
from bankapp.identity.security import hash_password
from bankapp.models import AccountType, Role, User

# Printed by ``flask seed-demo`` and listed in the README: demo databases are not secret.
DEMO_USERS = (
    {"email": "customer@example.com", "password": "demo-customer-password", "role": Role.CUSTOMER,
     "first_name": "Casey", "last_name": "Customer", "phone_number": "+442071838750",
     "date_of_birth": date(1990, 5, 17)},
    {"email": "teller@example.com", "password": "demo-teller-password", "role": Role.TELLER,
     "first_name": "Terry", "last_name": "Teller", "phone_number": "+442071838751",
     "date_of_birth": date(1985, 2, 3)},
    {"email": "admin@example.com", "password": "demo-admin-password", "role": Role.ADMIN,
     "first_name": "Ada", "last_name": "Admin", "phone_number": "+442071838752",
     "date_of_birth": date(1980, 11, 29)},
)


class DemoRefused(Exception):
    """Demo data cannot be written here (production, or the demo users already exist)."""


def seed_demo_users() -> dict[str, User]:
    """Create the verified demo customer, teller and admin; return them keyed by role."""
    if current_app.config.get("ENV_NAME") == "production":
        raise DemoRefused(
            "seed-demo refuses to run in production: demo users have published passwords."
        )
    emails = [spec["email"] for spec in DEMO_USERS]
    existing = db.session.scalars(db.select(User.email).where(User.email.in_(emails))).all()
    if existing:
        raise DemoRefused(f"demo users already exist: {', '.join(sorted(existing))}")
    users = {}
    for spec in DEMO_USERS:
        fields = {k: v for k, v in spec.items() if k != "password"}
        user = User(password_hash=hash_password(spec["password"]), is_verified=True,
                    is_active=True, **fields)
        db.session.add(user)
        users[spec["role"]] = user
    db.session.commit()
    return users


def seed_demo_history(customer: User, months: int = 4, seed: int = 7) -> list:
    """Give ``customer`` a checking and a savings account with ``months`` of everyday history.

    Everything is posted through ``bankapp.ledger`` (back-dated, in time order), so the book
    stays balanced and ``flask reconcile`` is clean.
    """

    rng = random.Random(seed)
    checking = ledger.open_account(customer, AccountType.CHECKING)
    savings = ledger.open_account(customer, AccountType.SAVINGS)
    now = datetime.now(timezone.utc)
    day = now - timedelta(days=30 * months)
    ledger.deposit(checking, Decimal("2500.00"), "Opening deposit", customer, posted_at=day)
    shops = ["Groceries", "Pharmacy", "Coffee", "Bookshop", "Fuel", "Restaurant", "Cinema"]
    while True:
        day += timedelta(days=1, hours=rng.randint(0, 3), minutes=rng.randint(0, 59))
        if day >= now - timedelta(hours=1):
            break
        if day.day == 1:
            ledger.deposit(checking, Decimal("3150.00"), "Salary", customer, posted_at=day)
            ledger.transfer(checking, savings.account_number, Decimal("400.00"),
                            "Monthly saving", customer, posted_at=day + timedelta(minutes=5))
            ledger.withdraw(checking, Decimal("1200.00"), "Rent", customer,
                            posted_at=day + timedelta(minutes=10))
        elif rng.random() < 0.45:
            amount = Decimal(rng.randint(300, 9000)) / 100
            try:
                ledger.withdraw(checking, amount, rng.choice(shops), customer, posted_at=day)
            except ledger.InsufficientFunds:
                pass  # a real customer's card would be declined too
    return [checking, savings]


@click.command("seed-demo")
@with_appcontext
@click.option("--if-empty", is_flag=True, help="Do nothing when the database has any user.")
def seed_demo(if_empty):
    """Create demo users (a customer, a teller, an admin); refuses in production."""
    if current_app.config.get("ENV_NAME") == "production":
        raise click.ClickException(
            "seed-demo refuses to run in production: demo users have published passwords. "
            "Create real staff with `flask create-user --role admin`."
        )
    if if_empty and db.session.scalar(db.select(User.id).limit(1)) is not None:
        click.echo("The database already has users; no demo data added.")
        return
    try:
        users = seed_demo_users()
    except DemoRefused as error:
        raise click.ClickException(str(error)) from None
    accounts = seed_demo_history(users[Role.CUSTOMER])
    click.echo("Demo users (for development only):")
    passwords = {spec["email"]: spec["password"] for spec in DEMO_USERS}
    for role, user in users.items():
        line = f"  {role:<9} {user.email:<22} password: {passwords[user.email]}"
        if role in Role.STAFF:
            # Staff must have a second factor: add this key to an authenticator app.
            line += f"  authenticator key: {enrol_totp_without_code(user)}"
        click.echo(line)
    click.echo("Staff sign in with a code from an authenticator app holding that key (or: "
               ".venv/bin/python -c \"import pyotp; print(pyotp.TOTP('KEY').now())\").")
    numbers = ", ".join(account.account_number for account in accounts)
    click.echo(f"The demo customer has accounts {numbers} with a few months of history.")
