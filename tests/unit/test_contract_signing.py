"""The platform's Ed25519 contract-signing key: signatures over the hex digest, key files, rotation."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_public_key,
)

from miaodai.contracts.signing import PlatformSigner, SigningKeyError, retired_keys_path, rotate, verify_signature
from miaodai.core.settings import Environment, Settings

DIGEST = hashlib.sha256(b"<html>contract MD-1</html>").hexdigest()
OTHER_DIGEST = hashlib.sha256(b"<html>contract MD-2</html>").hexdigest()


@pytest.fixture
def signer(tmp_path) -> PlatformSigner:
    return PlatformSigner.load(tmp_path / "signing.pem", create=True)


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1:]


def test_sign_and_verify_round_trip(signer):
    signature = signer.sign(DIGEST)
    assert len(base64.b64decode(signature)) == 64
    assert verify_signature(signer.public_key_pem(), DIGEST, signature)
    assert signer.verify(DIGEST, signature, signer.key_id)


def test_what_is_signed_is_exactly_the_ascii_hex_digest(signer):
    signature = base64.b64decode(signer.sign(DIGEST))
    public_key = load_pem_public_key(signer.public_key_pem().encode())
    assert isinstance(public_key, Ed25519PublicKey)
    public_key.verify(signature, DIGEST.encode("ascii"))  # raises if anything else was signed


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_openssl_verifies_a_signature_as_the_docs_describe(signer, tmp_path):
    (tmp_path / "public.pem").write_text(signer.public_key_pem())
    (tmp_path / "digest.txt").write_text(DIGEST)
    (tmp_path / "signature.bin").write_bytes(base64.b64decode(signer.sign(DIGEST)))
    result = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "public.pem", "-rawin", "-in", "digest.txt",
         "-sigfile", "signature.bin"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_tampered_hash_or_signature_does_not_verify(signer):
    signature = signer.sign(DIGEST)
    pem = signer.public_key_pem()
    assert not verify_signature(pem, OTHER_DIGEST, signature)
    assert not verify_signature(pem, _flip(DIGEST, 10).lower(), signature)
    assert not verify_signature(pem, DIGEST, _flip(signature, 5))
    assert not verify_signature(pem, DIGEST.upper(), signature)  # the signed bytes are lowercase hex
    assert not verify_signature(pem, DIGEST, signature[:-4])
    assert not verify_signature(pem, DIGEST, "not base64!")
    assert not verify_signature(pem, DIGEST, "")
    assert not verify_signature("not a key", DIGEST, signature)
    assert not verify_signature(pem, DIGEST, None)  # type: ignore[arg-type]


def test_a_signature_by_another_key_does_not_verify(signer, tmp_path):
    other = PlatformSigner.load(tmp_path / "other.pem", create=True)
    assert other.key_id != signer.key_id
    assert not verify_signature(signer.public_key_pem(), DIGEST, other.sign(DIGEST))
    assert not signer.verify(DIGEST, other.sign(DIGEST), other.key_id)  # an unknown key id


def test_an_ec_public_key_is_not_accepted(signer):
    ec_pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    ).decode()
    assert not verify_signature(ec_pem, DIGEST, signer.sign(DIGEST))


def test_only_a_hex_sha256_is_signed(signer):
    for bad in ("", "abc", DIGEST.upper(), DIGEST + "\n", "z" * 64):
        with pytest.raises(ValueError, match="64 lowercase hex"):
            signer.sign(bad)


def test_key_id_is_the_start_of_the_raw_public_key_hash(signer):
    public_key = load_pem_public_key(signer.public_key_pem().encode())
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert signer.key_id == hashlib.sha256(raw).hexdigest()[:16]


def test_development_creates_the_key_file_owner_only_and_reuses_it(tmp_path):
    key_file = tmp_path / "var" / "contract-signing-key.pem"
    settings = Settings(_env_file=None, env=Environment.DEVELOPMENT, contract_signing_key_file=key_file)
    first = PlatformSigner.from_settings(settings)
    assert (key_file.stat().st_mode & 0o777) == 0o600
    assert key_file.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS8
    assert PlatformSigner.from_settings(settings).key_id == first.key_id
    assert [p.name for p in key_file.parent.iterdir()] == [key_file.name]  # no temporary file left


def _production(key_file) -> Settings:
    return Settings(
        _env_file=None, env=Environment.PRODUCTION, sandbox=False, session_pepper=secrets.token_hex(32),
        contract_signing_key_file=key_file,
    )


def test_production_refuses_a_missing_key_and_does_not_create_one(tmp_path):
    key_file = tmp_path / "contract-signing-key.pem"
    with pytest.raises(SigningKeyError, match="does not exist; generate one with `openssl genpkey"):
        PlatformSigner.from_settings(_production(key_file))
    assert not key_file.exists()


def test_production_loads_an_existing_key(tmp_path, signer):
    key_file = tmp_path / "signing.pem"
    assert PlatformSigner.from_settings(_production(key_file)).key_id == signer.key_id


def test_a_key_file_that_is_not_ed25519_is_refused(tmp_path):
    key_file = tmp_path / "ec.pem"
    key_file.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    with pytest.raises(SigningKeyError, match="not an Ed25519 key"):
        PlatformSigner.load(key_file, create=False)
    (tmp_path / "junk.pem").write_text("junk")
    with pytest.raises(SigningKeyError, match="not an unencrypted PEM private key"):
        PlatformSigner.load(tmp_path / "junk.pem", create=False)


def test_rotation_keeps_contracts_signed_under_every_earlier_key_verifiable(tmp_path):
    key_file = tmp_path / "signing.pem"
    first = PlatformSigner.load(key_file, create=True)
    signed_first = first.sign(DIGEST)

    retired_id, second = rotate(key_file)
    assert retired_id == first.key_id != second.key_id
    assert (key_file.stat().st_mode & 0o777) == 0o600
    assert json.loads(retired_keys_path(key_file).read_text()) == {first.key_id: first.public_key_pem()}
    signed_second = second.sign(OTHER_DIGEST)

    _, third = rotate(key_file)
    reloaded = PlatformSigner.load(key_file, create=False)
    assert reloaded.key_id == third.key_id
    assert set(reloaded.public_keys()) == {first.key_id, second.key_id, third.key_id}
    assert reloaded.verify(DIGEST, signed_first, first.key_id)
    assert reloaded.verify(OTHER_DIGEST, signed_second, second.key_id)
    assert not reloaded.verify(DIGEST, signed_first, second.key_id)  # the key id recorded must match
    # A server that loaded the first key before the rotations still signs with it, and knows the new keys.
    assert first.verify(OTHER_DIGEST, signed_second, second.key_id)
    assert reloaded.verify(OTHER_DIGEST, first.sign(OTHER_DIGEST), first.key_id)


def test_rotation_needs_an_existing_key(tmp_path):
    with pytest.raises(SigningKeyError, match="does not exist"):
        rotate(tmp_path / "missing.pem")
