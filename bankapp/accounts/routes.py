"""Customer views: dashboard, accounts, deposits, withdrawals and transfers."""
from flask import render_template
from flask_login import current_user, login_required

from bankapp.accounts import bp


@bp.route("/dashboard/")
@login_required
def dashboard():
    """The customer's accounts, balances and latest activity."""
    return render_template("accounts/dashboard.html", accounts=current_user.accounts)
