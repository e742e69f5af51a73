"""The customer's banking pages: dashboard, opening accounts, transfers, cash, limits.

Blueprint ``accounts``."""
