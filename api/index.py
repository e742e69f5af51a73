"""Vercel's entry: the one function every request is rewritten to (see vercel.json).

Vercel's runtime loads this file by path; the project root (where ``wsgi.py``, ``config.py`` and
``bankapp`` live) is put on ``sys.path`` here so the import does not depend on how it is loaded.
"""
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from wsgi import app  # noqa: E402,F401  (the runtime serves the WSGI callable named ``app``)
