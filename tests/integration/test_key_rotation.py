"""`miaodai keys`: rotation re-encrypts every encrypted column online; old keys retire only when unused."""

from __future__ import annotations

import json

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from miaodai import keys
from miaodai.core.audit import AuditEntry
from miaodai.core.crypto import Keyring, Vault, load_keyring, save_keyring
from miaodai.core.db import Base
from miaodai.demo import DEMO_BORROWERS, seed_demo
from miaodai.identity import staff_service
from miaodai.identity.models import Borrower
from miaodai.payments.models import (
    CARD_NUMBER_FIELD,
    RESERVED_PHONE_FIELD,
    BindingStatus,
    CardBinding,
    PaymentMethod,
    PaymentMethodKind,
    PaymentMethodStatus,
)
from miaodai.sandbox.models import SandboxMessage
from tests.cli_support import run_cli


@pytest.fixture(autouse=True)
def fast_hasher(monkeypatch):
    monkeypatch.setattr(staff_service, "PASSWORD_HASHER", PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))


def stored_values(container):
    """Every encrypted value in the database, decrypted with the container's vault, per column."""
    values = {}
    with container.db.transaction() as session:
        for column in keys.ENCRYPTED_COLUMNS:
            rows = session.execute(select(column.sql_column)).scalars().all()
            values[column.label] = sorted(container.vault.decrypt(v, column.field) for v in rows)
    return values


def key_ids_in_use(container):
    with container.db.transaction() as session:
        return {
            Vault.key_id_of(v)
            for column in keys.ENCRYPTED_COLUMNS
            for v in session.execute(select(column.sql_column)).scalars()
        }


def add_sandbox_message(container):
    now = container.clock.now()
    with container.db.transaction() as session:
        session.add(SandboxMessage(
            phone_bidx=container.vault.blind_index("+8613800138001", "phone"), channel="sms",
            text_enc=container.vault.encrypt("【秒贷】验证码 123456，5 分钟内有效。", "sandbox.message"),
            provider_message_id="sbx-1", sent_at=now, visible_at=now,
        ))


def add_bound_card(container, borrower_id: int):
    """A bound card and the binding it came from (their number and reserved phone are encrypted)."""
    now, vault = container.clock.now(), container.vault
    number, phone = "6222021000000000018", "+8613800138001"
    common = dict(borrower_id=borrower_id, bank_code="ICBC", card_type="debit", brand="unionpay", bin="622202",
                  last4=number[-4:], number_enc=vault.encrypt(number, CARD_NUMBER_FIELD),
                  fingerprint=vault.blind_index(number, "card"),
                  reserved_phone_enc=vault.encrypt(phone, RESERVED_PHONE_FIELD), auto_debit=True)
    with container.db.transaction() as session:
        method = PaymentMethod(kind=PaymentMethodKind.BANK_CARD, status=PaymentMethodStatus.ACTIVE, token="pm_1",
                               is_default=True, bound_at=now, **common)
        session.add(method)
        session.flush()
        session.add(CardBinding(token="bind_1", status=BindingStatus.BOUND, provider_ref="sbxv_1", attempts=0,
                                created_at=now, expires_at=now, completed_at=now, payment_method_id=method.id,
                                **common))


def populated(container):
    report = seed_demo(container)
    add_sandbox_message(container)
    with container.db.transaction() as session:
        first_borrower = session.execute(select(Borrower.id).order_by(Borrower.id)).scalars().first()
    add_bound_card(container, first_borrower)
    return report


def test_every_encrypted_column_of_the_schema_is_registered():
    registered = {column.label for column in keys.ENCRYPTED_COLUMNS}
    in_schema = {
        f"{table.name}.{column.name}"
        for table in Base.metadata.tables.values()
        for column in table.columns
        if column.name.endswith("_enc")
    }
    assert in_schema == registered


def test_rotation_re_encrypts_everything_and_the_old_key_can_retire(container, settings):
    path = settings.keyring_file
    admin = populated(container).admin
    before = stored_values(container)
    old_key = container.vault.active_key_id
    # A server that loaded the keyring before the rotation and never restarts.
    other_server = Vault(load_keyring(path, create=False), path)

    report = keys.rotate(path, container.db, container.audit, batch_size=2)

    new_key = report.active_key_id
    assert new_key != old_key and load_keyring(path, create=False).active_key_id == new_key
    assert report.rewrapped == {
        "borrowers.phone_enc": 3, "kyc_identities.name_enc": 3, "kyc_identities.id_number_enc": 3,
        "staff_users.totp_secret_enc": 2, "staff_sessions.setup_totp_secret_enc": 0, "sandbox_messages.text_enc": 1,
        "loan_contracts.document_enc": 0,
        "credit_applications.snapshot_enc": 0, "payment_methods.number_enc": 3,
        "payment_methods.reserved_phone_enc": 3, "payment_card_bindings.number_enc": 1,
        "payment_card_bindings.reserved_phone_enc": 1,
    }
    assert report.unreadable == {}
    assert key_ids_in_use(container) == {new_key}
    assert stored_values(container) == before  # the container's vault reloads on the unknown key id
    with container.db.transaction() as session:
        phone_enc = session.execute(select(Borrower.phone_enc).order_by(Borrower.id)).scalars().first()
    assert other_server.decrypt(phone_enc, "borrower.phone") == DEMO_BORROWERS[0].phone

    keys.retire(path, container.db, container.audit, old_key)
    assert set(load_keyring(path, create=False).data_keys) == {new_key}
    assert stored_values(container) == before
    # The admin's TOTP secret still works after rotation and retirement.
    code = pyotp.TOTP(admin.totp_secret).at(container.clock.now())
    assert staff_service.login(container, username=admin.username, password=admin.password, totp_code=code)


def test_an_old_key_is_not_retired_while_values_use_it(container, settings):
    path = settings.keyring_file
    populated(container)
    old_key = container.vault.active_key_id
    with pytest.raises(keys.KeyManagementError, match="active key"):
        keys.retire(path, container.db, container.audit, old_key)
    # A rotation interrupted after writing the new keyring, before re-encrypting anything.
    save_keyring(path, load_keyring(path, create=False).with_new_active_key())
    with pytest.raises(keys.KeyManagementError, match="still encrypts 20 stored values"):
        keys.retire(path, container.db, container.audit, old_key)
    with pytest.raises(keys.KeyManagementError, match="not in the keyring"):
        keys.retire(path, container.db, container.audit, "knothere")

    resumed = keys.rewrap(Vault(load_keyring(path, create=False), path), container.db, container.audit)
    assert sum(resumed.rewrapped.values()) == 20
    keys.retire(path, container.db, container.audit, old_key)


def test_a_value_that_cannot_be_decrypted_is_reported_not_fatal(container, settings):
    populated(container)
    stranger = Vault(Keyring.generate())  # a key that was never in this keyring
    with container.db.transaction() as session:
        session.add(Borrower(phone_enc=stranger.encrypt("+8613800138009", "borrower.phone"), phone_bidx="x" * 64,
                             created_at=container.clock.now()))
        bad_id = session.execute(select(Borrower.id).where(Borrower.phone_bidx == "x" * 64)).scalar_one()
    report = keys.rotate(settings.keyring_file, container.db, container.audit)
    assert report.unreadable == {"borrowers.phone_enc": [bad_id]}
    assert report.rewrapped["kyc_identities.name_enc"] == 3


def test_rotation_and_retirement_are_audited(container, settings):
    populated(container)
    old_key = container.vault.active_key_id
    report = keys.rotate(settings.keyring_file, container.db, container.audit)
    keys.retire(settings.keyring_file, container.db, container.audit, old_key)
    with container.db.transaction() as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.subject)
            .where(AuditEntry.action.like("keys.%"))
            .order_by(AuditEntry.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("keys.rotated", f"key:{report.active_key_id}"),
        ("keys.reencrypted", f"key:{report.active_key_id}"),
        ("keys.retired", f"key:{old_key}"),
    ]


def test_a_running_writer_picks_up_the_new_active_key_without_a_restart(settings, monkeypatch):
    from miaodai.core import crypto

    path = settings.keyring_file
    writer = Vault(load_keyring(path, create=True), path)
    rotated = load_keyring(path, create=False).with_new_active_key()
    save_keyring(path, rotated)
    monkeypatch.setattr(crypto, "KEYRING_RECHECK_SECONDS", 0.0)
    assert Vault.key_id_of(writer.encrypt("x", "f")) == rotated.active_key_id


def test_keys_commands(container, settings):
    populated(container)
    old_key = container.vault.active_key_id
    assert "already exists" in run_cli(settings, "keys", "init").output
    status = run_cli(settings, "keys", "status")
    assert status.exit_code == 0 and old_key in status.output and "borrowers.phone_enc" in status.output

    refused = run_cli(settings, "keys", "retire", old_key)
    assert refused.exit_code == 1 and "active key" in refused.output

    rotated = run_cli(settings, "keys", "rotate", "--batch-size", "2")
    assert rotated.exit_code == 0, rotated.output
    new_key = json.loads(settings.keyring_file.read_text())["active_key_id"]
    assert f"active key {new_key}; re-encrypted 20 values" in rotated.output

    retired = run_cli(settings, "keys", "retire", old_key)
    assert retired.exit_code == 0, retired.output
    assert run_cli(settings, "keys", "rotate", "--resume").exit_code == 0
    assert key_ids_in_use(container) == {new_key}


def test_keys_init_creates_a_private_keyring(settings, tmp_path):
    fresh = settings.model_copy(update={"keyring_file": tmp_path / "ops" / "keyring.json"})
    result = run_cli(fresh, "keys", "init")
    assert result.exit_code == 0 and "created keyring" in result.output
    assert (fresh.keyring_file.stat().st_mode & 0o777) == 0o600
    assert run_cli(fresh, "keys", "init").output.count("already exists") == 1


def test_keys_status_without_a_keyring_says_how_to_create_one(settings, tmp_path):
    missing = settings.model_copy(update={"keyring_file": tmp_path / "none.json"})
    result = run_cli(missing, "keys", "status")
    assert result.exit_code == 1 and "keys init" in result.output



def test_rotation_while_the_service_keeps_writing(container, settings):
    import threading

    populated(container)
    stop = threading.Event()
    written: list[str] = []

    def keep_writing():
        # A server process: its vault still has the old key active until it notices the new file.
        n = 0
        while not stop.is_set() or n < 20:
            n += 1
            text = f"验证码 {n:06d}"
            now = container.clock.now()
            with container.db.transaction() as session:
                session.add(SandboxMessage(
                    phone_bidx="p" * 64, channel="sms", text_enc=container.vault.encrypt(text, "sandbox.message"),
                    provider_message_id=f"live-{n}", sent_at=now, visible_at=now,
                ))
            written.append(text)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        report = keys.rotate(settings.keyring_file, container.db, container.audit, batch_size=3)
    finally:
        stop.set()
        writer.join()
    assert report.unreadable == {}
    fresh = Vault(load_keyring(settings.keyring_file, create=False))
    resumed = keys.rewrap(fresh, container.db, container.audit, batch_size=3)
    assert resumed.unreadable == {}
    assert key_ids_in_use(container) == {report.active_key_id}
    with container.db.transaction() as session:
        texts = session.execute(
            select(SandboxMessage.text_enc).where(SandboxMessage.provider_message_id.like("live-%"))
        ).scalars().all()
    assert sorted(fresh.decrypt(t, "sandbox.message") for t in texts) == sorted(written)


def test_only_one_keys_command_changes_the_keyring_at_a_time(container, settings):
    populated(container)
    with keys._exclusive(settings.keyring_file):
        with pytest.raises(keys.KeyManagementError, match="another `miaodai keys` command"):
            keys.rotate(settings.keyring_file, container.db, container.audit)
        result = run_cli(settings, "keys", "rotate")
        assert result.exit_code == 1 and "another" in result.output
