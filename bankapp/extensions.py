"""Flask extensions, created unbound; ``create_app`` binds them to an app."""
import hashlib

import flask_talisman
import itsdangerous
from flask import current_app, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase
from werkzeug.datastructures import Headers


# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Talisman(flask_talisman.Talisman):
    """Flask-Talisman with the headers that are the same on every answer worked out once.

    Talisman rebuilds every header (the Content-Security-Policy string among them) for each
    response from its options and the view's own. Here no view has options of its own
    (``@talisman(...)``) and no policy takes a nonce, so all but HSTS (which depends on the
    request's scheme) come out the same each time: they are built on the first answer after
    ``init_app`` and set from that list afterwards, in Talisman's order. A view with options
    of its own, or a nonce, gets Talisman's own work.
    """

    _fixed: tuple[list, list] | None = None

    def init_app(self, app, **kwargs):
        super().init_app(app, **kwargs)
        self._fixed = None

    def _varies(self) -> bool:
        view = current_app.view_functions.get(request.endpoint)
        return bool(self.content_security_policy_nonce_in
                    or hasattr(view, "talisman_view_options"))

    def _fixed_headers(self) -> tuple[list, list]:
        """(the headers before HSTS, those after it), as Talisman sets them."""
        if self._fixed is None:
            options = self._get_local_options()
            before, after = Headers(), Headers()
            self._set_feature_policy_headers(before, options)
            self._set_permissions_policy_headers(before, options)
            self._set_document_policy_headers(before, options)
            self._set_frame_options_headers(before, options)
            self._set_content_security_policy_headers(before, options)
            self._set_referrer_policy_headers(after)
            self._fixed = (list(before.items()), list(after.items()))
        return self._fixed

    def _set_response_headers(self, response):
        if self._varies():
            return super()._set_response_headers(response)
        before, after = self._fixed_headers()
        headers = response.headers
        for name, value in before:
            headers[name] = value
        self._set_hsts_headers(headers)
        for name, value in after:
            headers[name] = value
        return response

    def _make_nonce(self):
        if self._varies():
            super()._make_nonce()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# ``app.extensions[REPLICA]``: the read replica's engine and state (``bankapp.platform.replica``);
# ``Session.info[READ_FROM_REPLICA]``: set while ``replica.read()`` runs.
REPLICA = "bankapp.replica"
READ_FROM_REPLICA = "bankapp.read_from_replica"


class RoutingSession(Session):
    """Flask-SQLAlchemy's session that sends the queries made inside ``replica.read()`` to the
    replica (a flush always writes to the primary). Defined here, not in the replica module,
    because ``db`` is built with it."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        if bind is None and self.info.get(READ_FROM_REPLICA) and not self._flushing:
            return current_app.extensions[REPLICA]["engine"]
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


db = SQLAlchemy(model_class=Base, session_options={"class_": RoutingSession})
migrate = Migrate(render_as_batch=True)
login_manager = LoginManager()
csrf = CSRFProtect()
# CSRF tokens signed with HMAC-SHA-256, not itsdangerous' default HMAC-SHA-1 (ASVS 5.0
# V11.4.1). Flask-WTF 1.3 builds its serializer with no digest option (pallets-eco/flask-wtf
# #699), so this sets itsdangerous' own documented default, ``Signer.default_digest_method``.
# Every other signer here names its digest already (the session cookie in platform/web.py,
# emailed links in identity/security.py), so only the CSRF tokens change: those open in a
# browser at deploy time are refused once (the form answers 400 and a reload gets a new one).
itsdangerous.Signer.default_digest_method = staticmethod(hashlib.sha256)
limiter = Limiter(key_func=get_remote_address)
talisman = Talisman()
mail = Mail()
babel = Babel()
