"""Field encryption (AES-256-GCM, tagged with a key id) and keyed HMAC blind indexes.

A stored value looks like ``v1.<key id>.<base64url(nonce || ciphertext+tag)>``. The
field name (e.g. ``borrower.phone``) is bound in as associated data, so a ciphertext
copied into another column does not decrypt. Lookups go through
:meth:`Vault.blind_index`, an HMAC-SHA256 under a key kept apart from the data keys.

The keyring is a JSON file (mode 0600) holding every data key still in use, which
one is active, and the blind-index key. ``miaodai keys rotate`` adds a key, makes it
active and re-encrypts stored values in small transactions; readers keep working
because old keys stay in the ring until no value uses them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_VERSION = "v1"
NONCE_BYTES = 12
# How often a writer looks at the keyring file's mtime, so that after `keys rotate` every
# running server starts encrypting under the new active key within seconds, unrestarted.
KEYRING_RECHECK_SECONDS = 5.0


class KeyringError(RuntimeError):
    pass


class DecryptionError(RuntimeError):
    pass


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Keyring:
    data_keys: dict[str, bytes]
    active_key_id: str
    index_key: bytes

    def __post_init__(self) -> None:
        if self.active_key_id not in self.data_keys:
            raise KeyringError(f"active key {self.active_key_id!r} is not in the keyring")
        for kid, key in self.data_keys.items():
            if len(key) != 32:
                raise KeyringError(f"data key {kid!r} is not 256 bits")
            if "." in kid:
                raise KeyringError(f"key id {kid!r} must not contain '.'")
        if len(self.index_key) < 32:
            raise KeyringError("blind-index key must be at least 256 bits")

    @classmethod
    def generate(cls) -> Keyring:
        kid = new_key_id()
        return cls({kid: AESGCM.generate_key(bit_length=256)}, kid, secrets.token_bytes(32))

    def with_new_active_key(self) -> Keyring:
        kid = new_key_id()
        while kid in self.data_keys:
            kid = new_key_id()
        keys = dict(self.data_keys)
        keys[kid] = AESGCM.generate_key(bit_length=256)
        return Keyring(keys, kid, self.index_key)

    def without_key(self, kid: str) -> Keyring:
        if kid == self.active_key_id:
            raise KeyringError("cannot retire the active key")
        keys = {k: v for k, v in self.data_keys.items() if k != kid}
        return Keyring(keys, self.active_key_id, self.index_key)

    def to_json(self) -> str:
        return json.dumps(
            {
                "active_key_id": self.active_key_id,
                "data_keys": {kid: _b64e(key) for kid, key in self.data_keys.items()},
                "index_key": _b64e(self.index_key),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> Keyring:
        try:
            raw = json.loads(text)
            return cls(
                {kid: _b64d(key) for kid, key in raw["data_keys"].items()},
                raw["active_key_id"],
                _b64d(raw["index_key"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise KeyringError(f"keyring is not valid: {exc}") from exc


def new_key_id() -> str:
    return "k" + secrets.token_hex(4)


def load_keyring(path: Path, *, create: bool) -> Keyring:
    if path.exists():
        return Keyring.from_json(path.read_text())
    if not create:
        raise KeyringError(f"keyring file {path} does not exist; run `miaodai keys init`")
    keyring = Keyring.generate()
    save_keyring(path, keyring)
    return keyring


def save_keyring(path: Path, keyring: Keyring) -> None:
    """Write atomically with owner-only permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(keyring.to_json())
    os.replace(tmp, path)


class Vault:
    """Encrypts and decrypts personal-data fields and computes blind indexes.

    When given the keyring's path, it re-reads the file when it meets a key id it
    does not know, so running servers pick up a rotation without a restart.
    """

    def __init__(self, keyring: Keyring, path: Path | None = None) -> None:
        self._keyring = keyring
        self._path = path
        self._lock = threading.Lock()
        self._signature = self._file_signature()
        self._checked_at = time.monotonic()

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    @property
    def active_key_id(self) -> str:
        return self._keyring.active_key_id

    def reload(self) -> None:
        if self._path is not None and self._path.exists():
            with self._lock:
                self._signature = self._file_signature()
                self._keyring = Keyring.from_json(self._path.read_text())

    def _file_signature(self) -> tuple[int, int] | None:
        # The inode changes on every atomic replace, even within one mtime tick.
        try:
            stat = self._path.stat() if self._path is not None else None
        except OSError:
            return None
        return (stat.st_ino, stat.st_mtime_ns) if stat is not None else None

    def _reload_if_rotated(self) -> None:
        now = time.monotonic()
        if self._path is None or now - self._checked_at < KEYRING_RECHECK_SECONDS:
            return
        self._checked_at = now
        if self._file_signature() != self._signature:
            self.reload()

    def encrypt(self, plaintext: str, field: str) -> str:
        self._reload_if_rotated()
        keyring = self._keyring
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(keyring.data_keys[keyring.active_key_id]).encrypt(
            nonce, plaintext.encode(), field.encode()
        )
        return f"{FORMAT_VERSION}.{keyring.active_key_id}.{_b64e(nonce + sealed)}"

    def decrypt(self, token: str, field: str) -> str:
        version, kid, body = self._split(token)
        key = self._keyring.data_keys.get(kid)
        if key is None:
            self.reload()
            key = self._keyring.data_keys.get(kid)
        if key is None:
            raise DecryptionError(f"unknown key id {kid!r}")
        raw = _b64d(body)
        try:
            return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], field.encode()).decode()
        except InvalidTag:
            raise DecryptionError(f"value for {field} failed authentication") from None

    @staticmethod
    def key_id_of(token: str) -> str:
        return Vault._split(token)[1]

    @staticmethod
    def _split(token: str) -> tuple[str, str, str]:
        parts = token.split(".", 2)
        if len(parts) != 3 or parts[0] != FORMAT_VERSION:
            raise DecryptionError("not an encrypted value")
        return parts[0], parts[1], parts[2]

    def blind_index(self, value: str, purpose: str) -> str:
        """Deterministic keyed hash for equality lookups; ``purpose`` separates domains."""
        mac = hmac.new(self._keyring.index_key, f"{purpose}\x00{value}".encode(), hashlib.sha256)
        return mac.hexdigest()
