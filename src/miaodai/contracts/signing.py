"""The platform's Ed25519 contract-signing key: sign a document hash, verify it, rotate the key.

What is signed: exactly the 64 ASCII bytes of the document's lowercase hex SHA-256 digest (as
:func:`miaodai.contracts.document.document_sha256` returns it) — no prefix, no newline. The signature is the
64-byte Ed25519 signature in standard base64 with padding. Anyone holding the public key can check a
contract without this code::

    printf %s "$SHA256_HEX" > digest.txt
    base64 -d signature.b64 > signature.bin
    openssl pkeyutl -verify -pubin -inkey public.pem -rawin -in digest.txt -sigfile signature.bin

Key files: the private key is a PKCS8 PEM (mode 0600) at ``settings.contract_signing_key_file``,
created on first use in development and test, and refused when missing elsewhere (like the keyring). The
key id is the first 16 hex characters of SHA-256 over the 32 raw public-key bytes; store it with every
signature. :func:`rotate` moves the current public key into ``<key file>.retired.json`` ({key id: public
PEM}) before writing a new private key, so contracts signed under any earlier key still verify.
Running servers keep signing with the key they loaded until restarted; those signatures verify too.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

if TYPE_CHECKING:
    from miaodai.core.settings import Settings

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class SigningKeyError(RuntimeError):
    pass


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """First 16 hex characters of SHA-256 over the raw 32-byte public key."""
    return hashlib.sha256(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def retired_keys_path(key_file: Path) -> Path:
    return key_file.with_name(key_file.name + ".retired.json")


class PlatformSigner:
    """Signs contract hashes with the platform key; knows every public key a stored signature may name."""

    def __init__(self, private_key: Ed25519PrivateKey, key_file: Path | None = None) -> None:
        self._private_key = private_key
        self._key_file = key_file
        self.key_id = key_id_of(private_key.public_key())

    @classmethod
    def load(cls, key_file: Path, *, create: bool) -> PlatformSigner:
        if not key_file.exists():
            if not create:
                raise SigningKeyError(
                    f"contract signing key {key_file} does not exist; generate one with "
                    f"`openssl genpkey -algorithm ed25519 -out {key_file} && chmod 600 {key_file}`, "
                    "or point MIAODAI_CONTRACT_SIGNING_KEY_FILE at the existing key"
                )
            _create_key_file(key_file)
        return cls(_read_private_key(key_file), key_file)

    @classmethod
    def from_settings(cls, settings: Settings) -> PlatformSigner:
        return cls.load(settings.contract_signing_key_file, create=settings.is_development)

    def sign(self, sha256_hex: str) -> str:
        """Base64 Ed25519 signature over the ASCII bytes of ``sha256_hex`` (64 lowercase hex characters)."""
        if not isinstance(sha256_hex, str) or not _SHA256_HEX.fullmatch(sha256_hex):
            raise ValueError("sign takes a document's SHA-256 as 64 lowercase hex characters")
        return base64.b64encode(self._private_key.sign(sha256_hex.encode("ascii"))).decode("ascii")

    def public_key_pem(self) -> str:
        return _public_pem(self._private_key.public_key())

    def public_keys(self) -> dict[str, str]:
        """{key id: public PEM} of this key, the key now in the key file and every retired key."""
        keys: dict[str, str] = {}
        if self._key_file is not None:
            keys.update(_read_retired(self._key_file))
            if self._key_file.exists():  # another process may have rotated since this one loaded
                on_disk = _read_private_key(self._key_file).public_key()
                keys[key_id_of(on_disk)] = _public_pem(on_disk)
        keys[self.key_id] = self.public_key_pem()
        return keys

    def verify(self, sha256_hex: str, signature_b64: str, key_id: str) -> bool:
        """Whether ``signature_b64`` is a valid signature of ``sha256_hex`` by the key ``key_id``."""
        public_key_pem = self.public_keys().get(key_id)
        return public_key_pem is not None and verify_signature(public_key_pem, sha256_hex, signature_b64)


def verify_signature(public_key_pem: str, sha256_hex: str, signature_b64: str) -> bool:
    """True only for a valid Ed25519 signature over the ASCII hex digest; False for anything else, never raises."""
    if not all(isinstance(v, str) for v in (public_key_pem, sha256_hex, signature_b64)):
        return False
    if not _SHA256_HEX.fullmatch(sha256_hex):
        return False
    try:
        public_key = load_pem_public_key(public_key_pem.encode("ascii"))
        signature = base64.b64decode(signature_b64, validate=True)
    except (ValueError, TypeError, UnsupportedAlgorithm):  # binascii.Error and bad PEM are ValueErrors
        return False
    if not isinstance(public_key, Ed25519PublicKey):
        return False
    try:
        public_key.verify(signature, sha256_hex.encode("ascii"))
    except InvalidSignature:
        return False
    return True


def rotate(key_file: Path) -> tuple[str, PlatformSigner]:
    """Retire the current key (its public half kept for verification) and write a new one.

    Returns the retired key's id and the signer of the new key. The retired list is written first,
    so no moment exists at which a signed contract's key is unknown.
    """
    with _exclusive(key_file):
        current = PlatformSigner.load(key_file, create=False)
        retired = _read_retired(key_file)
        retired[current.key_id] = current.public_key_pem()
        _write_atomic(retired_keys_path(key_file), json.dumps(retired, indent=2, sort_keys=True) + "\n", 0o644)
        new_key = Ed25519PrivateKey.generate()
        _write_atomic(key_file, _private_pem(new_key), 0o600)
    return current.key_id, PlatformSigner(new_key, key_file)


def _public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def _private_pem(private_key: Ed25519PrivateKey) -> str:
    return private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode("ascii")


def _read_private_key(key_file: Path) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(key_file.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(f"contract signing key {key_file} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"contract signing key {key_file} is not an Ed25519 key")
    return key


def _read_retired(key_file: Path) -> dict[str, str]:
    path = retired_keys_path(key_file)
    if not path.exists():
        return {}
    try:
        keys = json.loads(path.read_text())
    except ValueError as exc:
        raise SigningKeyError(f"retired signing keys {path} are not valid JSON: {exc}") from None
    if not isinstance(keys, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in keys.items()):
        raise SigningKeyError(f"retired signing keys {path} must map key ids to public PEMs")
    return keys


def _create_key_file(key_file: Path) -> None:
    """Write a new key unless one appears meanwhile: two workers starting together end up with the same key."""
    key_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = key_file.with_name(f"{key_file.name}.{secrets.token_hex(4)}.tmp")
    _write_file(tmp, _private_pem(Ed25519PrivateKey.generate()), 0o600)
    try:
        os.link(tmp, key_file)  # atomic, and fails when the key file already exists
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _write_atomic(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
    _write_file(tmp, text, mode)
    os.replace(tmp, path)


def _write_file(path: Path, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    os.fchmod(fd, mode)  # whatever the umask
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


@contextmanager
def _exclusive(key_file: Path) -> Iterator[None]:
    """One rotation at a time: two at once would each retire the same key and lose the other's."""
    key_file.parent.mkdir(parents=True, exist_ok=True)
    with open(key_file.with_name(key_file.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
