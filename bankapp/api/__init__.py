"""The JSON API for programs: bearer tokens, accounts, transactions and idempotent postings.

Everything lives under ``/api/v1/`` (the documentation at ``/api/docs``). The API takes no
cookies, only ``Authorization: Bearer <token>``, so it is exempt from CSRF protection.
"""
