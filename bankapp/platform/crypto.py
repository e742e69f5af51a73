"""Secrets stored in the database (TOTP seeds), encrypted with Fernet (AES-128-CBC + HMAC-SHA-256).

The key comes from ``FIELD_ENCRYPTION_KEY``: one or more Fernet keys separated by commas, the
first one encrypting and all of them decrypting, so a key is rotated by putting the new one
first, running ``flask rotate-field-key`` (re-encrypts every stored secret) and then dropping
the old one. Outside production, without the setting, a key is derived from ``SECRET_KEY``
so ``make run`` needs nothing; production refuses to start without it.
"""
from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


class FieldKeyError(Exception):
    """A stored secret cannot be decrypted with any configured key."""


def _development_key(secret_key: str) -> bytes:
    digest = hashlib.sha256(b"bankapp.field-encryption:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def parse_field_keys(setting: str) -> list[bytes]:
    """The Fernet keys in ``FIELD_ENCRYPTION_KEY``; ValueError naming the problem."""
    keys = [part.strip().encode() for part in (setting or "").split(",") if part.strip()]
    if not keys:
        raise ValueError("FIELD_ENCRYPTION_KEY is empty")
    for key in keys:
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ValueError("FIELD_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64 "
                             "bytes each, comma-separated); make one with `python -c "
                             "'from cryptography.fernet import Fernet; "
                             "print(Fernet.generate_key().decode())'`") from None
    return keys


def _fernet() -> MultiFernet:
    setting = current_app.config.get("FIELD_ENCRYPTION_KEY")
    keys = parse_field_keys(setting) if setting else [
        _development_key(current_app.config["SECRET_KEY"])]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt_field(plaintext: str) -> str:
    """``plaintext`` encrypted with the current key, as ASCII text for a String column."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt_field(ciphertext: str) -> str:
    """The plaintext of a value made by ``encrypt_field`` with any configured key."""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise FieldKeyError("a stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY "
                            "(was the key changed without keeping the old one?)") from None


def reencrypt_field(ciphertext: str) -> str:
    """The same plaintext under the current (first) key."""
    try:
        return _fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise FieldKeyError("a stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY") \
            from None
