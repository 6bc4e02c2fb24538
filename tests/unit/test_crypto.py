"""Field encryption and blind indexes."""

from __future__ import annotations

import pytest

from miaodai.core.crypto import DecryptionError, Keyring, KeyringError, Vault, load_keyring, save_keyring


def test_round_trip_and_key_id_tag():
    vault = Vault(Keyring.generate())
    token = vault.encrypt("13812345678", "borrower.phone")
    assert token.startswith(f"v1.{vault.active_key_id}.")
    assert "13812345678" not in token
    assert vault.decrypt(token, "borrower.phone") == "13812345678"


def test_same_value_encrypts_differently_each_time():
    vault = Vault(Keyring.generate())
    assert vault.encrypt("张三", "kyc.name") != vault.encrypt("张三", "kyc.name")


def test_ciphertext_moved_to_another_field_does_not_decrypt():
    vault = Vault(Keyring.generate())
    token = vault.encrypt("110101199003071234", "kyc.id_number")
    with pytest.raises(DecryptionError):
        vault.decrypt(token, "kyc.name")


def test_tampered_ciphertext_is_refused():
    vault = Vault(Keyring.generate())
    token = vault.encrypt("secret", "f")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(DecryptionError):
        vault.decrypt(flipped, "f")


def test_blind_index_is_deterministic_keyed_and_purpose_separated():
    keyring = Keyring.generate()
    vault = Vault(keyring)
    assert vault.blind_index("13812345678", "phone") == vault.blind_index("13812345678", "phone")
    assert vault.blind_index("13812345678", "phone") != vault.blind_index("13812345678", "device")
    assert Vault(Keyring.generate()).blind_index("13812345678", "phone") != vault.blind_index("13812345678", "phone")


def test_rotated_keyring_still_reads_old_values(tmp_path):
    path = tmp_path / "keyring.json"
    old = load_keyring(path, create=True)
    reader = Vault(old, path)
    token_old = reader.encrypt("x", "f")
    rotated = old.with_new_active_key()
    save_keyring(path, rotated)
    writer = Vault(rotated, path)
    token_new = writer.encrypt("y", "f")
    assert writer.decrypt(token_old, "f") == "x"
    # A server still holding the old ring reloads the file when it meets the new key id.
    assert reader.decrypt(token_new, "f") == "y"
    assert (path.stat().st_mode & 0o777) == 0o600


def test_keyring_refuses_bad_material():
    with pytest.raises(KeyringError):
        Keyring({"k1": b"short"}, "k1", b"x" * 32)
    with pytest.raises(KeyringError):
        Keyring({"k1": b"x" * 32}, "k2", b"x" * 32)
    with pytest.raises(KeyringError):
        load_keyring(__import__("pathlib").Path("/nonexistent/keyring.json"), create=False)
