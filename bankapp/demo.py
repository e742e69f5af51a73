"""Demo data for a fresh development database: one user per role, with known passwords.

``flask seed-demo`` calls ``seed_demo_users``; accounts and history for the demo customer are
added with ``bankapp.ledger`` (the only code that moves money), never written here directly.
"""
from __future__ import annotations

from datetime import date

from flask import current_app

from bankapp.extensions import db
from bankapp.models import Role, User
from bankapp.security import hash_password

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
