"""Encryption of secrets at rest (AES-256-GCM), with keys from POSTRAG_SECRET_KEY.

A key is derived from the configured secret with HKDF-SHA256; its id (a hash of the derived key)
is stored beside every value, so old values stay readable while POSTRAG_OLD_SECRET_KEYS lists
their secret, and `postrag keys rotate` can re-encrypt them under the current one. Each value is
bound to where it belongs (associated data such as "connector:<owner>:<provider>:access"), so a
ciphertext copied to another row or field does not decrypt.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.settings import Settings, SettingsError

MIN_SECRET_CHARS = 32
NONCE_BYTES = 12
_INFO = b"postrag secrets v1"
_MAC_INFO = b"postrag signatures v1"  # a key of its own: never the encryption key twice


class SecretError(RuntimeError):
    """A value cannot be decrypted: its key is unknown, or it was tampered with."""


def generate_secret() -> str:
    """A fresh random secret for POSTRAG_SECRET_KEY (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def weakness(secret: str | None) -> str | None:
    """Why `secret` is not good enough as POSTRAG_SECRET_KEY, or None."""
    if not secret:
        return "POSTRAG_SECRET_KEY is not set"
    if len(secret) < MIN_SECRET_CHARS:
        return f"POSTRAG_SECRET_KEY is shorter than {MIN_SECRET_CHARS} characters"
    if len(set(secret)) < 12:
        return "POSTRAG_SECRET_KEY repeats too few characters to be random"
    return None


@dataclass(frozen=True)
class Key:
    id: str
    aead: AESGCM


def _hkdf(secret: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret.encode())


def derive(secret: str) -> Key:
    raw = _hkdf(secret, _INFO)
    return Key(hashlib.sha256(raw).hexdigest()[:16], AESGCM(raw))


class Keyring:
    """The current key (encrypts) and the old ones (only decrypt)."""

    def __init__(self, current: str, old: tuple[str, ...] = ()):
        self.current = derive(current)
        self._mac_key = _hkdf(current, _MAC_INFO)
        self._keys = {k.id: k for k in (derive(s) for s in old)}
        self._keys[self.current.id] = self.current

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        problem = weakness(settings.secret_key)
        if problem:
            raise SettingsError(f"{problem}; `postrag keys generate` makes one")
        assert settings.secret_key is not None
        return cls(settings.secret_key, settings.old_secret_keys)

    def sign(self, purpose: str, message: bytes) -> bytes:
        """An HMAC-SHA256 of `message` for `purpose`, under the current secret only (what is
        signed lives minutes, not across a key rotation)."""
        return hmac.new(self._mac_key, purpose.encode() + b"\0" + message, hashlib.sha256).digest()

    def knows(self, key_id: str) -> bool:
        return key_id in self._keys

    def encrypt(self, value: str, where: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self.current.aead.encrypt(nonce, value.encode(), where.encode())

    def decrypt(self, blob: bytes, key_id: str, where: str) -> str:
        key = self._keys.get(key_id)
        if key is None:
            raise SecretError(f"no key {key_id} (set it in POSTRAG_OLD_SECRET_KEYS)")
        try:
            plain = key.aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], where.encode())
        except InvalidTag:
            raise SecretError(f"a value encrypted with key {key_id} does not decrypt") from None
        return plain.decode()
