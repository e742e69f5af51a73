"""Known vs unknown address: medians of the password-reset and sign-up answers.

An in-process app (production's argon2id cost, a fresh SQLite file or ``--database-url``)
answers N resets for an address that has an account and N for one that has none, then N
sign-ups with a taken address and N with new ones, interleaved so that drift hits both sides
alike. Mail is left to the worker (``MAIL_AFTER_RESPONSE=0``, as in production off Vercel),
the rate limits are off. Prints the medians and their difference.

    .venv/bin/python bench/address_timing.py [-n 30] [--database-url postgresql://…]
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bankapp import create_app  # noqa: E402
from bankapp.extensions import db  # noqa: E402
from config import DevelopmentConfig  # noqa: E402

PASSWORD = "correct horse battery staple 42"
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def timed_post(client, url: str, data: dict) -> float:
    token = _CSRF.search(client.get(url).get_data(as_text=True)).group(1)
    started = time.perf_counter()
    response = client.post(url, data={**data, "csrf_token": token})
    elapsed = time.perf_counter() - started
    assert response.status_code == 302, response.status_code
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/timing.db"

    class BenchConfig(DevelopmentConfig):
        SQLALCHEMY_DATABASE_URI = url
        RATELIMIT_ENABLED = False
        MAIL_AFTER_RESPONSE = False
        MAIL_SERVER = ""

    app = create_app(BenchConfig)
    with app.app_context():
        db.create_all()
        from bankapp.identity.services import register_customer
        from datetime import date

        register_customer("known@example.com", PASSWORD, "+442071838750", date(1990, 1, 1))
    client = app.test_client()
    samples = {"reset known": [], "reset unknown": [], "sign-up taken": [], "sign-up new": []}
    signup = {"password1": PASSWORD, "password2": PASSWORD, "phone_number": "+442071838750",
              "date_of_birth": "1990-01-01"}
    for n in range(args.n + 3):  # the first three warm up
        pairs = [("reset known", "/accounts/password_reset/", {"email": "known@example.com"}),
                 ("reset unknown", "/accounts/password_reset/",
                  {"email": f"nobody{n}@example.com"}),
                 ("sign-up taken", "/accounts/signup/", {**signup,
                                                         "email": "known@example.com"}),
                 ("sign-up new", "/accounts/signup/", {**signup,
                                                       "email": f"new{n}@example.com"})]
        for name, path, data in (pairs if n % 2 else pairs[1::-1] + pairs[:1:-1]):
            elapsed = timed_post(client, path, data)
            if n >= 3:
                samples[name].append(elapsed)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name, value in medians.items():
        print(f"{name:14} median {value:7.2f} ms over {len(samples[name])}")
    print(f"reset:   known - unknown = {medians['reset known'] - medians['reset unknown']:+.2f} ms")
    print(f"sign-up: taken - new     = {medians['sign-up taken'] - medians['sign-up new']:+.2f} ms")


if __name__ == "__main__":
    main()
