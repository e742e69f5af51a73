"""bankapp: a self-hostable banking suite. ``create_app`` builds the Flask application.

The factory is a list of small steps; what each step installs lives in the package it names
(docs/architecture.md draws the modules and the rules between them).
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask_babel import gettext

from bankapp.extensions import csrf, db, limiter, login_manager, mail, migrate
from bankapp.platform import (database, health, i18n, logs, metrics, pooling, replica, web,
                              wellknown)
from bankapp.platform.errors import register_errorhandlers
from bankapp.platform.i18n import N_
from bankapp.platform.settings import load_settings

# The release: CHANGELOG.md has a section per version with its upgrade notes; backups record it.
__version__ = "1.0.0"

# Stylesheet and icon live in ``public/static``: on Vercel the CDN serves ``public/`` ahead of the
# function (with a year-long cache header from vercel.json); every other host serves them through
# Flask's own ``/static`` route from the same folder.
STATIC_FOLDER = Path(__file__).resolve().parent.parent / "public" / "static"

# The navigation bar: (endpoint, label, roles). Labels are translated where base.html shows them.
NAVIGATION = [
    ("accounts.dashboard", N_("Dashboard"), ("customer",)),
    ("accounts.transfer", N_("Transfer"), ("customer",)),
    ("payments.payee_list", N_("Payees"), ("customer",)),
    ("payments.scheduled_list", N_("Scheduled"), ("customer",)),
    ("payments.notifications", N_("Alerts"), ("customer",)),
    ("loans.loan_list", N_("Loans"), ("customer",)),
    ("accounts.limits", N_("Limits"), ("customer",)),
    ("reports.index", N_("Reports"), ("customer", "teller", "admin")),
    ("teller.desk", N_("Teller desk"), ("teller", "admin")),
    ("teller.loan_queue", N_("Loans"), ("teller", "admin")),
    ("admin.users", N_("Users"), ("admin",)),
    ("admin.audit", N_("Audit trail"), ("admin",)),
    ("admin.mail", N_("Mail"), ("admin",)),
    ("admin.jobs", N_("Jobs"), ("admin",)),
    ("admin.interest_rates", N_("Interest rates"), ("admin",)),
    ("auth.profile_page", N_("Profile"), ("customer", "teller", "admin")),
    ("auth.change_password", N_("Change password"), ("customer", "teller", "admin")),
    ("auth.security", N_("Security"), ("customer", "teller", "admin")),
]


def create_app(config=None) -> Flask:
    """Build the application; ``config`` is a config class or a dict of overrides."""
    app = web.BankApp(__name__, instance_relative_config=True, static_folder=str(STATIC_FOLDER))
    load_settings(app, config)
    logs.configure_logging(app)
    database.configure_database(app)
    web.trust_proxy(app)
    register_extensions(app)
    database.register_teardown(app)
    register_blueprints(app)
    register_errorhandlers(app)
    app.after_request(replica.mark_write)  # read-your-writes with a replica
    register_domain_rules(app)
    web.register_template_helpers(app, NAVIGATION)
    # Last: the request log's clock starts before every other hook (bankapp.platform.logs).
    logs.init_app(app)
    health.init_app(app)
    return app


def register_extensions(app: Flask) -> None:
    # Imported here for the same reason as the blueprints (register_blueprints).
    from bankapp.notifications import outbox

    db.init_app(app)
    if pooling.wants_idle_ping(app.config["SQLALCHEMY_ENGINE_OPTIONS"]):
        with app.app_context():
            pooling.ping_idle_connections(db.engine)
    replica.init_app(app)
    migrate.init_app(app, db, directory=str(database.MIGRATIONS_DIR))
    csrf.init_app(app)
    mail.init_app(app)
    i18n.init_app(app)
    outbox.init_app(app)  # a request's mail goes after its answer, or to the worker
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = N_("Please log in to see that page.")
    login_manager.localize_callback = gettext  # flashed in the request's language
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    web.secure_headers(app)


def register_blueprints(app: Flask) -> None:
    # Imported here, not at the top: importing any part of bankapp (a model, the ledger, a
    # metric) must not load every view, form and command with it.
    from bankapp.api import routes as api
    from bankapp.backoffice.admin import routes as admin
    from bankapp.backoffice.teller import routes as teller
    from bankapp.banking import routes as banking
    from bankapp.identity import routes as identity
    from bankapp.jobs import routes as jobs
    from bankapp.lending import routes as lending
    from bankapp.payments import routes as payments
    from bankapp.reports import routes as reports

    app.url_map.converters["account_number"] = web.AccountNumberConverter
    # The API and the cron jobs are CSRF-exempt: bearer tokens, no cookies.
    for blueprint in (identity.bp, banking.bp, payments.bp, lending.bp, reports.bp,
                      reports.loan_bp, teller.bp, admin.bp, api.bp, wellknown.bp, jobs.bp):
        app.register_blueprint(blueprint)


def register_domain_rules(app: Flask) -> None:
    """What the domain modules install on every request, and the ``flask`` commands."""
    # Imported here for the same reason as the blueprints (register_blueprints).
    from bankapp import cli, schedule
    from bankapp.audit import events
    from bankapp.identity.web import register_session_rules
    from bankapp.models import EntryType

    register_session_rules(app)
    events.init_app(app)  # refusals (403, CSRF, 429...) become security events
    cli.register(app)
    schedule.init_app(app)  # each job's last success and lateness on /metrics
    metrics.start_posting_counters(
        value for name, value in vars(EntryType).items() if name.isupper())
