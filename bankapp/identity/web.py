"""The rules every page request passes, and the page decorators built on them: session
time-outs, second-factor enrolment, no caching of signed-in pages, recent sign-in for
sensitive actions. Web only: the token API has rules of its own (``bankapp.api.tokens``)."""
from __future__ import annotations

from functools import wraps

from flask import Flask, flash, redirect, request, url_for
from flask_babel import gettext
from flask_login import current_user

from bankapp.identity.factors import enrolment_required
from bankapp.identity.security import enforce_session_timeouts, recently_authenticated
from bankapp.platform.i18n import N_
from bankapp.platform.problems import simple_problem
from bankapp.platform.web import is_token_api_request


def register_session_rules(app: Flask) -> None:
    """Install the rules on ``app``: before each request, then on each answer."""
    app.before_request(enforce_session_timeouts)
    app.before_request(enforce_enrolment)
    app.after_request(no_store_when_logged_in)
    app.after_request(clear_site_data_on_logout)


# Pages a user who must enrol may still open (others send them to the set-up page).
# A passkey counts as a first factor too: its registration endpoints stay open.
ENROLMENT_ENDPOINTS = {"auth.totp_setup", "auth.security", "auth.logout", "static",
                       "auth.passkey_register_options", "auth.passkey_register",
                       "auth.end_session", "auth.end_other_sessions", "auth.reauthenticate"}


def enforce_enrolment():
    """Before each request: a logged-in user who must have a second factor sets one up first.

    Staff cannot reach the teller desk or the admin pages, and (CUSTOMER_2FA=required)
    customers no money page, until it is done. The API is guarded where tokens are issued.
    """
    # The API first: it has no session, so no user to load for it.
    if ((request.endpoint or "").startswith("api.") or request.endpoint in ENROLMENT_ENDPOINTS
            or not current_user.is_authenticated or current_user.mfa_enabled
            or not enrolment_required(current_user)):
        return None
    flash(gettext("Set up two-step sign-in first: your role needs it to use the bank."), "warning")
    return redirect(url_for("auth.totp_setup"))


def no_store_when_logged_in(response):
    """Pages with account data must not be kept by the browser or any shared cache.
    (The token API has no login to load: its blueprint says no-store on every answer.)"""
    if (request.endpoint != "static" and not is_token_api_request()
            and current_user.is_authenticated):
        response.headers["Cache-Control"] = "no-store"
    return response


def clear_site_data_on_logout(response):
    """After logout the browser drops what it kept of this site's pages and storage (the
    session cookie itself is already emptied by the logout)."""
    if request.endpoint == "auth.logout" and request.method == "POST":
        response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


CONFIRM_PASSWORD_FIRST = N_("Confirm your password first: this change needs a recent sign-in.")


def recent_login_required(view):
    """Send a browser whose last proof is older than ``REAUTH_SECONDS`` to confirm its
    password first (then it comes back to the security page and clicks again). The security
    page's changes (sessions, second factors, passkeys) all ask this one question, so the
    page has one password box, not one per form."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not recently_authenticated():
            if request.is_json:
                return simple_problem(403, gettext(CONFIRM_PASSWORD_FIRST))
            return ask_for_password_again(gettext(CONFIRM_PASSWORD_FIRST),
                                          url_for("auth.security"))
        return view(*args, **kwargs)

    return wrapped


def ask_for_password_again(why: str, then: str):
    """Send the browser to confirm its password, saying ``why``; back to ``then`` after."""
    flash(why, "info")
    return redirect(url_for("auth.reauthenticate", next=then))
