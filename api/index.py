"""Vercel's entry: the one function every request is rewritten to (see vercel.json)."""
from wsgi import app  # noqa: F401  (the runtime looks for a WSGI callable named ``app``)
