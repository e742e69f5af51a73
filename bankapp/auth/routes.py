"""Sign-up, email verification, login, logout and password reset (placeholder views)."""
from flask import redirect, render_template, url_for
from flask_login import current_user

from bankapp.auth import bp
from bankapp.security import end_session


@bp.route("/accounts/login/", methods=["GET", "POST"])
def login():
    """Log in (placeholder until the auth views land)."""
    return render_template("auth/placeholder.html")


@bp.route("/accounts/signup/", methods=["GET", "POST"])
def signup():
    """Sign up (placeholder until the auth views land)."""
    return render_template("auth/placeholder.html")


@bp.route("/accounts/logout/", methods=["POST"])
def logout():
    """End the session everywhere its token is used."""
    end_session(current_user)
    return redirect(url_for("auth.login"))
