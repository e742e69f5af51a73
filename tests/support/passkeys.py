"""A software WebAuthn authenticator, so passkey tests go through py_webauthn's real checks.

It does what a platform authenticator does, byte for byte (WebAuthn L2 §6.1, §6.5): an EC P-256
key pair, a "none" attestation whose authenticatorData carries the RP id hash, the flags
UP|UV|AT, the sign count and the attested credential data (AAGUID, credential id, COSE key);
assertions sign authenticatorData ‖ SHA-256(clientDataJSON). Tests tamper with the challenge,
origin, RP id or count through keyword arguments.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from support.users import TEST_PASSWORD
from support.web import csrf_token

UP, UV, AT = 0x01, 0x04, 0x40
ORIGIN = "http://localhost"  # Flask's test client calls the app at http://localhost/


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_bytes(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftAuthenticator:
    """One resident passkey. ``counting=False`` behaves like a synced passkey (count always 0)."""

    def __init__(self, counting: bool = True):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.counting = counting
        self.sign_count = 0
        self.user_handle: bytes | None = None
        self.rp_id: str | None = None

    @property
    def id(self) -> str:
        return b64url(self.credential_id)

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        # kty EC2, alg ES256, crv P-256, x, y (RFC 9053)
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})

    def _authenticator_data(self, rp_id: str, flags: int, count: int,
                            attested: bool = False) -> bytes:
        data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + count.to_bytes(4, "big")
        if attested:
            data += (bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id
                     + self._cose_key())
        return data

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin,
                           "crossOrigin": False}).encode()

    def create(self, options: dict, *, origin: str = ORIGIN, rp_id: str | None = None,
               challenge: str | None = None, flags: int = UP | UV | AT) -> dict:
        """The browser's answer to ``navigator.credentials.create(options)``, as JSON."""
        self.rp_id = rp_id or options["rp"]["id"]
        self.user_handle = b64url_bytes(options["user"]["id"])
        client_data = self._client_data("webauthn.create", challenge or options["challenge"],
                                        origin)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData":
                                   self._authenticator_data(self.rp_id, flags, self.sign_count,
                                                            attested=True)})
        return {"id": self.id, "rawId": self.id, "type": "public-key",
                "response": {"clientDataJSON": b64url(client_data),
                             "attestationObject": b64url(attestation),
                             "transports": ["internal"]},
                "authenticatorAttachment": "platform", "clientExtensionResults": {}}

    def get(self, options: dict, *, origin: str = ORIGIN, rp_id: str | None = None,
            challenge: str | None = None, count: int | None = None, flags: int = UP | UV,
            user_handle: bytes | None = None) -> dict:
        """The browser's answer to ``navigator.credentials.get(options)``, as JSON."""
        if count is None:
            if self.counting:
                self.sign_count += 1
            count = self.sign_count
        authenticator_data = self._authenticator_data(rp_id or options.get("rpId") or self.rp_id,
                                                      flags, count)
        client_data = self._client_data("webauthn.get", challenge or options["challenge"], origin)
        signature = self.key.sign(authenticator_data + hashlib.sha256(client_data).digest(),
                                  ec.ECDSA(hashes.SHA256()))
        handle = user_handle if user_handle is not None else self.user_handle
        return {"id": self.id, "rawId": self.id, "type": "public-key",
                "response": {"clientDataJSON": b64url(client_data),
                             "authenticatorData": b64url(authenticator_data),
                             "signature": b64url(signature),
                             "userHandle": b64url(handle) if handle is not None else None},
                "authenticatorAttachment": "platform", "clientExtensionResults": {}}


# ---------------------------------------------------------------- the security page's side

SECURITY = "/accounts/security/"
REGISTER_OPTIONS, REGISTER = "/accounts/passkeys/options/", "/accounts/passkeys/"


def post_json(client, url: str, body=None, token: str | None = None, raw: str | None = None):
    """POST like passkeys.js: a JSON body and the CSRF token in X-CSRFToken."""
    headers = {"X-CSRFToken": token} if token else {}
    data = raw if raw is not None else json.dumps(body if body is not None else {})
    return client.post(url, data=data, headers=headers, content_type="application/json")


def page_token(client, url: str = SECURITY) -> str:
    return csrf_token(client, url)


def add_passkey(client, authenticator: SoftAuthenticator | None = None, name="Work laptop",
                **tamper) -> tuple[SoftAuthenticator, object]:
    """Add a passkey from the security page of a logged-in client; (authenticator, answer)."""
    authenticator = authenticator or SoftAuthenticator()
    token = page_token(client)
    options = post_json(client, REGISTER_OPTIONS, {"name": name},
                        token)
    assert options.status_code == 200, options.get_json()
    credential = authenticator.create(options.get_json(), **tamper)
    return authenticator, post_json(client, REGISTER, {"credential": credential}, token)
