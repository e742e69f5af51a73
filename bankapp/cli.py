"""``flask`` commands for deployers: users, demo data, ledger reconciliation, health checks."""
from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Attach the bankapp commands to ``app.cli``."""
