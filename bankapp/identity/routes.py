"""Sign-up, email verification, login, logout, password reset and password change."""
from __future__ import annotations

import math
import time

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext, ngettext
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, logout_user
from werkzeug.exceptions import TooManyRequests

from bankapp.extensions import db, limiter
from bankapp.identity import devices, factors, passkeys, profile, services, stepup
from bankapp.identity.forms import (
    PASSWORD_HINT,
    ChangePasswordForm,
    EmailChangeForm,
    LoginForm,
    NewRecoveryCodesForm,
    NotMeForm,
    PasswordResetRequestForm,
    ProfileForm,
    ReauthenticateForm,
    RemoveTotpForm,
    ResendVerificationForm,
    SecondFactorForm,
    SetPasswordForm,
    SignupForm,
    TotpSetupForm,
)
from bankapp.identity.security import recently_authenticated
from bankapp.identity.web import ask_for_password_again, recent_login_required
from bankapp.platform.i18n import N_
from bankapp.platform.problems import simple_problem
from bankapp.platform.urls import is_safe_next

bp = Blueprint("auth", __name__, template_folder="templates")


CHECK_EMAIL = N_("Check your email: we sent you a link to confirm your address. "
               "Open it, then log in here.")
BAD_CREDENTIALS = N_("That email and password do not match an active account.")
PASSWORD_CHANGED = N_("Your password has been changed. You are still logged in here; every other "
                    "session that was open has ended.")
RESEND_ANSWER = N_("If an account with that address is waiting for confirmation, "
                 "we have sent it a new link.")


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


# From this many attempts left, a refused password says how many remain.
WARN_AT_ATTEMPTS_LEFT = 2


def _login_attempts_left() -> int | None:
    """Password tries this browser and address have left in the login limit's window (the
    lowest of the limits counted on this request), or None when nothing limits them."""
    if not limiter.enabled:
        return None
    return min((counted.remaining for counted in limiter.current_limits), default=None)


def _attempts_left_warning() -> str | None:
    left = _login_attempts_left()
    if left is None or left > WARN_AT_ATTEMPTS_LEFT:
        return None
    return ngettext("%(num)d attempt left: then signing in is paused for a while. Forgot your "
                    "password? Reset it instead.",
                    "%(num)d attempts left: then signing in is paused for a while. Forgot your "
                    "password? Reset it instead.", left)


def _login_paused(breached) -> Response:
    """The answer once the login limit is spent: the login page, saying when to try again."""
    return _paused_login_page(max(1, math.ceil(breached.reset_at - time.time())))


def _paused_login_page(seconds: int) -> Response:
    form = LoginForm()
    form.form_errors.append(ngettext(
        "Too many sign-in attempts: signing in is paused. Try again in %(num)d second, or "
        "reset your password.",
        "Too many sign-in attempts: signing in is paused. Try again in %(num)d seconds, or "
        "reset your password.", seconds))
    page = render_template("auth/login.html", form=form, resend_form=None,
                           next_url=request.args.get("next") if is_safe_next(
                               request.args.get("next")) else None, paused=True)
    return make_response(page, 429, {"Retry-After": str(seconds)})


def _email_limit() -> str:
    return current_app.config.get("EMAIL_SEND_RATE_LIMIT", "3 per minute")


def _signup_limit() -> str:
    # Each sign-up sends an email (possibly to an existing owner): bound the mail one IP causes.
    return current_app.config.get("SIGNUP_RATE_LIMIT", "10 per hour")


def _current_user_key() -> str:
    # Guesses at the current password are counted per account, whatever the IP.
    if current_user.is_authenticated:
        return f"user:{current_user.id}"
    return "ip:" + (get_remote_address() or "")


def _submitted_email() -> str:
    # Prefixed so an address can never share a counter with an IP address; the same key and
    # scope as the token endpoint's, so the form and the API count attempts together.
    return services.login_rate_key(request.form.get("email"))


@bp.route("/accounts/signup/", methods=["GET", "POST"])
@limiter.limit(_signup_limit, methods=["POST"])
def signup():
    """Create a customer account and send the email confirmation link."""
    form = SignupForm()
    if form.validate_on_submit():
        services.register_customer(
            email=form.email.data,
            password=form.password1.data,
            phone_number=form.phone_number.data,
            date_of_birth=form.date_of_birth.data,
            first_name=form.first_name.data or None,
            last_name=form.last_name.data or None,
        )
        flash(gettext(CHECK_EMAIL), "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/signup.html", form=form, password_hint=PASSWORD_HINT)


@bp.route("/accounts/verify/<token>/")
def verify_email(token: str):
    """Confirm an email address from the link we sent."""
    user = services.verify_email(token)
    if user is None:
        return render_template("auth/verify_invalid.html", form=ResendVerificationForm()), 400
    flash(gettext("Your email address is confirmed. You can log in now."), "success")
    return redirect(url_for("auth.login"))


@bp.route("/accounts/verify/resend/", methods=["GET", "POST"])
@limiter.limit(_email_limit, methods=["POST"])
def resend_verification():
    """Send a new confirmation link; the answer never says whether the address is known."""
    form = ResendVerificationForm()
    if form.validate_on_submit():
        services.resend_verification(form.email.data)
        flash(gettext(RESEND_ANSWER), "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/resend.html", form=form)


@bp.route("/accounts/login/", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=get_remote_address,
               on_breach=_login_paused)
@limiter.shared_limit(_login_limit, scope="login-email", methods=["POST"],
                      key_func=_submitted_email, on_breach=_login_paused)
def login():
    """Log in with email and password."""
    next_url = request.args.get("next")
    if not is_safe_next(next_url):
        next_url = None
    form = LoginForm()
    resend_form = None
    if form.validate_on_submit():
        try:
            user = services.authenticate(form.email.data, form.password.data)
        except services.LoginThrottled:
            # The account's own count (kept without Redis too): paused for at most its window.
            raise TooManyRequests(response=_paused_login_page(services.login_window_seconds()))
        except services.LoginRefused as refusal:
            if refusal.unverified:
                resend_form = ResendVerificationForm(formdata=None, email=form.email.data)
                form.form_errors.append(gettext("Please confirm your email address first: open "
                                                "the link we emailed you, or ask for a new "
                                                "one below."))
            else:
                form.form_errors.append(gettext(BAD_CREDENTIALS))
                if warning := _attempts_left_warning():
                    form.form_errors.append(warning)
        else:
            if user.mfa_enabled:
                services.begin_second_factor(user, next_url)
                return redirect(url_for("auth.login_second_factor"))
            services.log_in(user)
            flash(gettext("You are logged in."), "success")
            return redirect(next_url or url_for("accounts.dashboard"))
    return render_template("auth/login.html", form=form, resend_form=resend_form,
                           next_url=next_url)


@bp.route("/accounts/logout/", methods=["POST"])
def logout():
    """End the session everywhere its token is used."""
    services.log_out(current_user)
    flash(gettext("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/accounts/password_reset/", methods=["GET", "POST"])
@limiter.limit(_email_limit, methods=["POST"])
def password_reset():
    """Ask for a password reset link."""
    form = PasswordResetRequestForm()
    if form.validate_on_submit():
        services.request_password_reset(form.email.data)
        return redirect(url_for("auth.password_reset_done"))
    return render_template("auth/password_reset_form.html", form=form)


@bp.route("/accounts/password_reset/done/")
def password_reset_done():
    """Tell the visitor to look in their mailbox (whether or not the address is known)."""
    return render_template("auth/password_reset_done.html")


@bp.route("/accounts/reset/<token>/", methods=["GET", "POST"])
def password_reset_confirm(token: str):
    """Choose a new password from a reset link."""
    user = services.user_for_reset_token(token)
    if user is None:
        return render_template("auth/password_reset_confirm.html", form=None), 400
    form = SetPasswordForm(account=user)
    if form.validate_on_submit():
        services.reset_password(user, form.new_password1.data)
        return redirect(url_for("auth.password_reset_complete"))
    return render_template("auth/password_reset_confirm.html", form=form,
                           password_hint=PASSWORD_HINT)


@bp.route("/accounts/reset/done/")
def password_reset_complete():
    """Confirm that the password has changed."""
    return render_template("auth/password_reset_complete.html")


@bp.route("/accounts/password/", methods=["GET", "POST"])
@login_required
@limiter.limit(_login_limit, methods=["POST"], key_func=_current_user_key)
def change_password():
    """Change the password of the logged-in user, who must give the current one."""
    form = ChangePasswordForm(account=current_user)
    if form.validate_on_submit():
        try:
            services.change_password(current_user._get_current_object(),
                                     form.current_password.data, form.new_password1.data)
        except services.PasswordChangeRefused as refusal:
            form[refusal.field].errors.append(refusal.message)
        else:
            flash(gettext(PASSWORD_CHANGED), "success")
            return redirect(url_for("auth.change_password"))
    return render_template("auth/password_change.html", form=form,
                           password_hint=PASSWORD_HINT)


PROFILE_SAVED = N_("Your details are saved.")
CHECK_NEW_MAILBOX = N_("Check the mailbox of your new address: we sent it a link to confirm the "
                     "change. Until then your email address stays as it is.")


@bp.route("/accounts/profile/", methods=["GET", "POST"])
@login_required
def profile_page():
    """Name and phone of the logged-in user (any role), and a way to change the email."""
    form = ProfileForm(obj=current_user)
    if not form.is_submitted():
        form.locale.data = current_user.locale or ""
    if form.validate_on_submit():
        try:
            profile.update_profile(current_user._get_current_object(), form.first_name.data,
                                   form.last_name.data, form.phone_number.data, form.locale.data,
                                   recent_sign_in=recently_authenticated())
        except profile.RecentSignInNeeded:
            return ask_for_password_again(
                gettext("Confirm your password first: changing your phone number needs a "
                        "recent sign-in."), url_for("auth.profile_page"))
        flash(gettext(PROFILE_SAVED), "success")
        return redirect(url_for("auth.profile_page"))
    return render_template("auth/profile.html", form=form)


@bp.route("/accounts/profile/email/", methods=["GET", "POST"])
@login_required
@limiter.limit(_login_limit, methods=["POST"], key_func=_current_user_key)
def change_email():
    """Ask to move the account to another address; the answer never says if it is taken."""
    form = EmailChangeForm()
    if form.validate_on_submit():
        try:
            profile.request_email_change(current_user._get_current_object(),
                                                form.current_password.data, form.new_email.data,
                                                code=form.code.data)
        except profile.ProfileRefused as refusal:
            form[refusal.field].errors.append(refusal.message)
        else:
            flash(gettext(CHECK_NEW_MAILBOX), "info")
            return redirect(url_for("auth.profile_page"))
    return render_template("auth/email_change.html", form=form)


@bp.route("/accounts/profile/email/confirm/<token>/")
def confirm_email_change(token: str):
    """Confirm the new address from the link sent to it."""
    try:
        change = profile.confirm_email_change(token)
    except profile.EmailTaken:
        return render_template("auth/email_change_invalid.html", link="confirm",
                               taken=True), 409
    if change is None:
        return render_template("auth/email_change_invalid.html", link="confirm"), 400
    flash(gettext("Your email address is now %(email)s.", email=change.new_email), "success")
    return redirect(url_for("auth.profile_page" if current_user.is_authenticated
                            else "auth.login"))


@bp.route("/accounts/profile/email/not-me/<token>/", methods=["GET", "POST"])
def email_change_not_me(token: str):
    """"This was not me": GET shows one button (mail scanners fetch links); POST acts."""
    form = NotMeForm()
    if form.validate_on_submit():
        change = profile.cancel_email_change(token)
        if change is not None:
            if current_user.is_authenticated and current_user.id == change.user_id:
                logout_user()
                session.clear()
            return render_template("auth/email_change_cancelled.html", change=change)
    elif profile.change_for_not_me_token(token) is not None:
        return render_template("auth/email_change_not_me.html", form=form)
    return render_template("auth/email_change_invalid.html", link="not_me"), 400


# ---------------------------------------------------------------- second factors

LOGIN_AGAIN = N_("Please log in again: the second step must follow the password within five "
                 "minutes.")


@bp.route("/accounts/login/2fa/", methods=["GET", "POST"])
def login_second_factor():
    """The login's second step: a TOTP code, a recovery code or a passkey."""
    user = services.pending_second_factor()
    if user is None:
        flash(gettext(LOGIN_AGAIN), "info")
        return redirect(url_for("auth.login"))
    form = SecondFactorForm()
    status = 200
    if form.validate_on_submit():
        try:
            kind = factors.verify_second_factor(user, form.code.data)
        except factors.SecondFactorRefused as refusal:
            form.code.errors.append(refusal.message)
            status = 429 if refusal.locked else 200
        else:
            next_url = services.finish_second_factor(user, kind)
            if kind == "recovery":
                flash(gettext("You used a recovery code; %(left)s are left. Make new ones on the "
                              "security page if you are running out.",
                              left=factors.recovery_codes_left(user)), "warning")
            return redirect(next_url if is_safe_next(next_url) else url_for("accounts.dashboard"))
    has_totp = factors.has_totp(user)
    # A recovery code has letters: its box opens the full keyboard, the app's code the keypad.
    by_recovery_code = not has_totp or request.args.get("with") == "recovery"
    form.code.label.text = (gettext("Recovery code") if by_recovery_code
                            else gettext("6-digit code from the app"))
    return render_template("auth/login_2fa.html", form=form, has_totp=has_totp,
                           by_recovery_code=by_recovery_code,
                           pending_passkeys=factors.passkey_count(user)), status


@bp.route("/accounts/2fa/totp/setup/", methods=["GET", "POST"])
@login_required
def totp_setup():
    """Set up an authenticator app: QR code and secret, then a code proves it works."""
    user = current_user._get_current_object()
    if factors.has_totp(user):
        flash(gettext("Your authenticator app is already set up."), "info")
        return redirect(url_for("auth.security"))
    form = TotpSetupForm()
    if form.validate_on_submit():
        try:
            codes = factors.confirm_totp_enrolment(user, form.code.data)
        except factors.SecondFactorRefused as refusal:
            form.code.errors.append(refusal.message)
        else:
            return render_template("auth/recovery_codes.html", codes=codes, first_time=True)
    secret = factors.pending_totp_secret(user) if request.method == "POST" else None
    if secret is None:
        secret = factors.start_totp_enrolment(user)
    return render_template("auth/totp_setup.html", form=form, secret=secret,
                           qr_code=factors.qr_code_data_uri(user, secret))


@bp.route("/accounts/security/")
@login_required
def security():
    """Second factors, recovery codes, open sessions and recent sign-ins of the user."""
    user = current_user._get_current_object()
    this_session = devices.current_session_row(user)
    return render_template("auth/security.html", user=user,
                           codes_left=factors.recovery_codes_left(user),
                           enrolment_required=factors.enrolment_required(user),
                           has_totp=factors.has_totp(user),
                           passkeys=passkeys.passkeys_of(user),
                           passkey_last_factor=passkeys.is_last_factor(user),
                           remove_form=RemoveTotpForm(prefix="remove"),
                           codes_form=NewRecoveryCodesForm(prefix="codes"),
                           recent=recently_authenticated(), reauth_form=ReauthenticateForm(),
                           sessions=devices.active_sessions(user),
                           this_session_id=this_session.id if this_session else None,
                           sign_ins=devices.sign_in_history(user))


@bp.route("/accounts/reauthenticate/", methods=["GET", "POST"])
@login_required
@limiter.limit(_login_limit, methods=["POST"], key_func=_current_user_key)
def reauthenticate():
    """Confirm the password again before a sensitive change; then back where it was asked."""
    next_url = request.args.get("next")
    form = ReauthenticateForm()
    if form.validate_on_submit():
        if services.reauthenticate(current_user._get_current_object(), form.password.data):
            return redirect(next_url if is_safe_next(next_url) else url_for("auth.security"))
        form.password.errors.append(gettext(services.WRONG_CURRENT_PASSWORD))
    return render_template("auth/reauthenticate.html", form=form, next_url=next_url)


@bp.route("/accounts/sessions/<int:session_id>/end/", methods=["POST"])
@login_required
@recent_login_required
def end_session(session_id: int):
    """End one of the user's sessions: that browser is signed out at its next request."""
    try:
        this_browser = services.end_user_session(current_user._get_current_object(), session_id)
    except devices.SessionNotFound:
        abort(404)
    if this_browser:
        flash(gettext("You are logged out."), "info")
        return redirect(url_for("auth.login"))
    flash(gettext("That session has ended: the browser is signed out at its next request."),
          "success")
    return redirect(url_for("auth.security"))


@bp.route("/accounts/sessions/end-others/", methods=["POST"])
@login_required
@recent_login_required
def end_other_sessions():
    """End every session of the user except this browser's."""
    ended = services.end_other_sessions(current_user._get_current_object())
    flash(gettext("Every other session has ended (%(count)s).", count=ended) if ended
          else gettext("There was no other session to end."), "success")
    return redirect(url_for("auth.security"))


@bp.route("/accounts/2fa/totp/remove/", methods=["POST"])
@login_required
@recent_login_required
@limiter.limit(_login_limit, key_func=_current_user_key)
def totp_remove():
    """Remove the authenticator app (a recent sign-in and a current code)."""
    user = current_user._get_current_object()
    form = RemoveTotpForm(prefix="remove")
    if form.validate_on_submit():
        try:
            factors.remove_totp(user, form.code.data)
        except factors.SecondFactorRefused as refusal:
            flash(refusal.message, "error")
        else:
            flash(gettext("The authenticator app is removed."), "success")
    else:
        flash(gettext("Enter a current code to remove the app."), "error")
    return redirect(url_for("auth.security"))


@bp.route("/accounts/2fa/recovery-codes/", methods=["POST"])
@login_required
@recent_login_required
def recovery_codes():
    """Replace the recovery codes (after a recent sign-in); the new ones are shown once."""
    user = current_user._get_current_object()
    if not NewRecoveryCodesForm(prefix="codes").validate_on_submit():
        abort(400)
    try:
        codes = factors.regenerate_recovery_codes(user)
    except factors.SecondFactorRefused as refusal:
        flash(refusal.message, "error")
        return redirect(url_for("auth.security"))
    return render_template("auth/recovery_codes.html", codes=codes, first_time=False)


# ---------------------------------------------------------------- passkeys
# JSON endpoints for public/static/js/passkeys.js; CSRF-protected like every POST (the script
# sends the token in the X-CSRFToken header). Errors are RFC 9457 problem details with a
# ``detail`` the script shows to the user.

NEEDS_JSON = N_("Passkeys need JavaScript: send the request as a JSON object.")


def _problem(message: str, status: int = 400):
    return simple_problem(status, message)


def _json_body() -> dict | None:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


def _options(options_json: str):
    return current_app.response_class(options_json, mimetype="application/json",
                                      headers={"Cache-Control": "no-store"})


@bp.route("/accounts/passkeys/options/", methods=["POST"])
@login_required
@recent_login_required
def passkey_register_options():
    """Options to create a passkey, once it is named (after a recent sign-in)."""
    body = _json_body()
    if body is None:
        return _problem(gettext(NEEDS_JSON))
    try:
        return _options(passkeys.registration_options(current_user._get_current_object(),
                                                      body.get("name")))
    except passkeys.PasskeyRefused as refusal:
        return _problem(refusal.message)


@bp.route("/accounts/passkeys/", methods=["POST"])
@login_required
def passkey_register():
    """Store the passkey the browser created for the options above."""
    body = _json_body()
    if body is None:
        return _problem(gettext(NEEDS_JSON))
    try:
        passkey = passkeys.register(current_user._get_current_object(), body.get("credential"))
    except passkeys.PasskeyRefused as refusal:
        return _problem(refusal.message)
    flash(gettext("The passkey “%(name)s” is added: you can sign in with it.", name=passkey.name),
          "success")
    return jsonify(redirect=url_for("auth.security")), 201


@bp.route("/accounts/passkeys/<int:passkey_id>/remove/", methods=["POST"])
@login_required
@recent_login_required
def passkey_remove(passkey_id: int):
    """Remove one of the user's passkeys (the last factor: the passkey itself confirms)."""
    user = current_user._get_current_object()
    passkey = db.first_or_404(passkeys.owned_passkey(user, passkey_id))
    name = passkey.name
    try:
        passkeys.remove(user, passkey, passkeys.parse_json(request.form.get("assertion")))
    except passkeys.PasskeyRefused as refusal:
        flash(refusal.message, "error")
    else:
        flash(gettext("The passkey “%(name)s” is removed.", name=name), "success")
    return redirect(url_for("auth.security"))


@bp.route("/accounts/passkeys/confirm/options/", methods=["POST"])
@login_required
def passkey_confirm_options():
    """Options for confirming a change with one of the user's passkeys."""
    try:
        return _options(passkeys.user_options(current_user._get_current_object(),
                                              passkeys.CONFIRM))
    except passkeys.PasskeyRefused as refusal:
        return _problem(refusal.message)


@bp.route("/accounts/passkeys/step-up/options/", methods=["POST"])
@login_required
def passkey_step_up_options():
    """Options for approving the transfer on a confirmation page (its ``approval``) by passkey."""
    body = _json_body()
    if body is None:
        return _problem(gettext(NEEDS_JSON))
    try:
        return _options(stepup.passkey_options(current_user._get_current_object(),
                                               body.get("approval")))
    except passkeys.PasskeyRefused as refusal:
        return _problem(refusal.message)


@bp.route("/accounts/login/passkey/options/", methods=["POST"])
@limiter.limit(_login_limit, key_func=get_remote_address)
def passkey_sign_in_options():
    """Options for signing in with a passkey the browser finds (no email asked)."""
    try:
        return _options(passkeys.sign_in_options())
    except passkeys.PasskeyRefused as refusal:
        return _problem(refusal.message)


@bp.route("/accounts/login/passkey/", methods=["POST"])
@limiter.limit(_login_limit, key_func=get_remote_address)
def passkey_sign_in():
    """Sign in with a passkey: it proves both factors (device, and its PIN or biometrics)."""
    body = _json_body()
    if body is None:
        return _problem(gettext(NEEDS_JSON))
    try:
        user = passkeys.sign_in(body.get("credential"))
    except passkeys.PasskeyRefused as refusal:
        return _problem(refusal.message)
    services.log_in(user, second_factor="passkey")
    flash(gettext("You are logged in."), "success")
    next_url = body.get("next") if isinstance(body.get("next"), str) else None
    return jsonify(redirect=next_url if is_safe_next(next_url) else url_for("accounts.dashboard"))


@bp.route("/accounts/login/2fa/passkey/options/", methods=["POST"])
def passkey_second_factor_options():
    """Options for the login's second step by one of this user's passkeys."""
    user = services.pending_second_factor()
    if user is None:
        return _problem(gettext(LOGIN_AGAIN))
    try:
        return _options(passkeys.user_options(user, passkeys.SECOND_FACTOR))
    except passkeys.PasskeyRefused as refusal:
        return _problem(refusal.message)


@bp.route("/accounts/login/2fa/passkey/", methods=["POST"])
@limiter.limit(_login_limit, key_func=get_remote_address)
def passkey_second_factor():
    """The login's second step by passkey, after the password."""
    user, body = services.pending_second_factor(), _json_body()
    if user is None:
        return _problem(gettext(LOGIN_AGAIN))
    if body is None:
        return _problem(gettext(NEEDS_JSON))
    try:
        passkeys.authenticate(body.get("credential"), passkeys.SECOND_FACTOR, user)
    except passkeys.PasskeyRefused as refusal:
        return _problem(refusal.message)
    next_url = services.finish_second_factor(user, "passkey")
    return jsonify(redirect=next_url if is_safe_next(next_url) else url_for("accounts.dashboard"))
