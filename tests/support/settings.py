"""Settings a test gives the app: a production host's values, email really sent over SMTP."""
from __future__ import annotations

from bankapp.extensions import mail

PRODUCTION_SECRET = "a-production-secret-key-that-is-long-enough-0123456789"
PUBLIC_URL = "https://bank.example"
# A fixed Fernet key, so production tests can read what they stored.
FIELD_ENCRYPTION_KEY = "q1vOQm3Xh2mQmS0t3f3qk3B2cHk0c1J5dEx4b0ZkR1k="


def deliver_mail_to(app, host: str, port: int) -> None:
    """Make ``app`` really send its email over plain SMTP to ``host:port``."""
    app.config.update(MAIL_SERVER=host, MAIL_PORT=port, MAIL_USE_TLS=False,
                      MAIL_USE_SSL=False, MAIL_SUPPRESS_SEND=False)
    mail.init_app(app)  # Flask-Mail reads its settings when bound
