"""``flask`` commands for users and keys: create users, set roles, verify emails, reset second
factors, rotate the field encryption key.
"""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from bankapp.extensions import db
from bankapp.identity.factors import reencrypt_secrets, reset_second_factors
from bankapp.identity.security import hash_password
from bankapp.identity.validators import (
    InvalidInput,
    normalize_email,
    normalize_phone,
    password_problems,
)
from bankapp.models import Role, User
from bankapp.notifications.outbox import deliver_committed, reencrypt_bodies
from bankapp.platform.crypto import FieldKeyError


def _validated(normalize, value: str, what: str) -> str:
    """Run one of the sign-up form's rules; its message becomes the command's error."""
    try:
        return normalize(value)
    except InvalidInput as error:
        raise click.ClickException(f"invalid {what} {value!r}: {error}") from None


def _user_by_email(email: str) -> User:
    user = db.session.scalar(db.select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"no user with email {email!r}")
    return user


@click.command("create-user")
@with_appcontext
@click.option("--email", required=True, help="Login email (stored lower-cased).")
@click.option("--role", type=click.Choice(Role.ALL), default=Role.CUSTOMER, show_default=True)
@click.option("--password", help="For scripts; prompted for (hidden) when omitted.")
@click.option("--first-name", default=None)
@click.option("--last-name", default=None)
@click.option("--phone", default=None, help="International form, e.g. +442071838750.")
def create_user(email, role, password, first_name, last_name, phone):
    """Create a verified, active user (staff accounts are made this way)."""
    email = _validated(normalize_email, email, "email")
    if db.session.scalar(db.select(User.id).where(User.email == email)) is not None:
        raise click.ClickException(f"a user with email {email} already exists")
    phone = _validated(normalize_phone, phone, "phone number") if phone else None
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    problems = password_problems(password, email, (first_name, last_name))
    if problems:
        raise click.ClickException(f"weak password: {' '.join(problems)}")
    user = User(email=email, password_hash=hash_password(password), role=role,
                is_verified=True, is_active=True, first_name=first_name, last_name=last_name,
                phone_number=phone)
    db.session.add(user)
    db.session.commit()
    click.echo(f"Created {role} {email} (verified, active).")


@click.command("set-role")
@with_appcontext
@click.argument("email")
@click.argument("role")
def set_role(email, role):
    """Change a user's role (customer, teller or admin)."""
    if role not in Role.ALL:
        raise click.ClickException(f"unknown role {role!r}; use one of {', '.join(Role.ALL)}")
    user = _user_by_email(email)
    previous = user.role
    user.role = role
    # A new role must not ride on sessions granted under the old one.
    user.rotate_session_token()
    db.session.commit()
    click.echo(f"{user.email}: role {previous} -> {role}.")


@click.command("verify-user")
@with_appcontext
@click.argument("email")
def verify_user(email):
    """Mark a user's email as verified (when the verification email never arrived)."""
    user = _user_by_email(email)
    if user.is_verified:
        click.echo(f"{user.email} is already verified.")
        return
    user.is_verified = True
    db.session.commit()
    click.echo(f"{user.email} is now verified and can log in.")


@click.command("reset-2fa")
@with_appcontext
@click.argument("email")
def reset_2fa(email):
    """Remove a user's second factors (after checking who they are); ends their sessions."""
    user = _user_by_email(email)
    if not user.mfa_enabled:
        click.echo(f"{user.email} has no second factor; nothing to reset.")
        return

    reset_second_factors(user)
    report = deliver_committed()
    click.echo(f"Second factors of {user.email} removed; every session and API token ended. "
               + ("The owner was emailed." if report and report.sent else
                  "The email to the owner is queued (`flask deliver-mail` retries it)."))


@click.command("rotate-field-key")
@with_appcontext
def rotate_field_key():
    """Re-encrypt stored secrets under the first key of FIELD_ENCRYPTION_KEY."""
    try:
        count = reencrypt_bodies() + reencrypt_secrets()  # the latter commits both
    except FieldKeyError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{count} stored secret(s) re-encrypted with the first FIELD_ENCRYPTION_KEY; the "
               "other keys can now be removed from the setting.")
