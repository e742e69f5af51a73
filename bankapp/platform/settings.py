"""The app's settings: the configuration class chosen by the environment (``config.py``),
checked and normalised once at start; production refuses to start without what it needs."""
from __future__ import annotations

import sys

from flask import Flask

from bankapp.platform.i18n import check_currency
from bankapp.platform.logs import log_format
from bankapp.platform.ratelimit import shared_store_uri
from config import (
    ProductionConfig,
    config_from_environment,
    parse_daily_limit,
    parse_public_url,
    parse_timezone,
)

SEE_DOCS = "see docs/configuration.md"


def load_settings(app: Flask, config=None) -> None:
    """Fill ``app.config`` from ``config`` (a config class or a dict of overrides) or the
    environment; exit with the reason when a setting is missing or invalid."""
    config_class = config if isinstance(config, type) else config_from_environment()
    if config_class is ProductionConfig or issubclass(config_class, ProductionConfig):
        missing = ProductionConfig.missing_settings()
        if missing:
            sys.exit(
                "bankapp: refusing to start in production without "
                + " and ".join(missing)
                + f". Set them in the environment ({SEE_DOCS})."
            )
    app.config.from_object(config_class)
    try:
        if issubclass(config_class, ProductionConfig):
            app.config.update(config_class.environment_settings())
        if isinstance(config, dict):
            app.config.update(config)
        if app.config.get("PUBLIC_URL"):
            app.config["PUBLIC_URL"] = parse_public_url(app.config["PUBLIC_URL"])
        app.config["LOG_FORMAT"] = log_format(app.config)
        app.config["RATELIMIT_STORAGE_URI"] = shared_store_uri(
            app.config["RATELIMIT_STORAGE_URI"])
        app.config["BANK_TIMEZONE"] = parse_timezone(app.config.get("BANK_TIMEZONE"))
        app.config["DAILY_TRANSFER_LIMIT"] = parse_daily_limit(app.config["DAILY_TRANSFER_LIMIT"])
        if app.config["CUSTOMER_2FA"] not in ("optional", "required"):
            raise ValueError(f"CUSTOMER_2FA must be optional or required, not "
                             f"{app.config['CUSTOMER_2FA']!r}")
        if app.config["TOTP_DRIFT_STEPS"] not in (0, 1):
            raise ValueError(f"TOTP_DRIFT_STEPS must be 0 or 1, not "
                             f"{app.config['TOTP_DRIFT_STEPS']!r}")
        check_currency(app.config["BANK_CURRENCY"])
        check_phone_region(app.config.get("BANK_PHONE_REGION", ""))
    except ValueError as invalid:
        sys.exit(f"bankapp: refusing to start: {invalid} ({SEE_DOCS}).")
    if app.config.get("ENV_NAME") == "production":
        # Flask turns debug on from FLASK_DEBUG whatever the config class says; never here.
        app.config["DEBUG"] = False


def check_phone_region(region: str) -> str:
    """``BANK_PHONE_REGION`` checked: empty, or a region phonenumbers knows (KE, GB, US...)."""
    import phonenumbers  # only here: the one setting that needs it

    if region and region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"BANK_PHONE_REGION must be an ISO 3166 region such as KE or GB, "
                         f"not {region!r}")
    return region
