"""Key management behind ``miaodai keys``: init, status, rotate (re-encrypt online) and retire.

:data:`ENCRYPTED_COLUMNS` is the one registry of encrypted columns; a test fails when
a model gains an ``*_enc`` column that is not listed here, because rotation would
silently leave it under the old key and ``retire`` would then refuse forever.

Rotation never stops the service: the new keyring (old keys kept) is written
atomically first, so every reader can decrypt both generations (``Vault.decrypt``
reloads the file on an unknown key id); then each column is re-encrypted in small
batches, each its own short transaction, and a row changed meanwhile is left alone
(its writer already used the new key).

The blind-index key is not rotated here: every ``*_bidx`` (phone, ID number, device,
IP) would have to be recomputed from decrypted values in one step with every lookup
switched at once, which is a migration of its own, not an online rotation.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Column, case, func, select, update

from miaodai.core.audit import AuditLog
from miaodai.core.crypto import FORMAT_VERSION, DecryptionError, Keyring, Vault, load_keyring, save_keyring
from miaodai.core.db import Base, Database
from miaodai.credit.models import SNAPSHOT_FIELD, CreditApplication
from miaodai.identity.models import (
    KYC_ID_NUMBER_FIELD,
    KYC_NAME_FIELD,
    PHONE_FIELD,
    STAFF_TOTP_FIELD,
    Borrower,
    KycIdentity,
    StaffSession,
    StaffUser,
)
from miaodai.loans.models import CONTRACT_DOCUMENT_FIELD, LoanContract
from miaodai.payments.models import CARD_NUMBER_FIELD, RESERVED_PHONE_FIELD, CardBinding, PaymentMethod
from miaodai.sandbox.models import MESSAGE_TEXT_FIELD, SandboxMessage


class KeyManagementError(RuntimeError):
    pass


@dataclass(frozen=True)
class EncryptedColumn:
    model: type[Base]
    column: str
    # Bound into each ciphertext as associated data; must match what the writers pass to Vault.
    field: str

    @property
    def label(self) -> str:
        return f"{self.model.__tablename__}.{self.column}"

    @property
    def sql_column(self) -> Column:
        return self.model.__table__.c[self.column]  # type: ignore[attr-defined]


ENCRYPTED_COLUMNS: tuple[EncryptedColumn, ...] = (
    EncryptedColumn(Borrower, "phone_enc", PHONE_FIELD),
    EncryptedColumn(KycIdentity, "name_enc", KYC_NAME_FIELD),
    EncryptedColumn(KycIdentity, "id_number_enc", KYC_ID_NUMBER_FIELD),
    EncryptedColumn(StaffUser, "totp_secret_enc", STAFF_TOTP_FIELD),
    # A first sign-in's TOTP secret while it is being enrolled (the same field: it moves to the account as is).
    EncryptedColumn(StaffSession, "setup_totp_secret_enc", STAFF_TOTP_FIELD),
    EncryptedColumn(SandboxMessage, "text_enc", MESSAGE_TEXT_FIELD),
    EncryptedColumn(LoanContract, "document_enc", CONTRACT_DOCUMENT_FIELD),
    EncryptedColumn(CreditApplication, "snapshot_enc", SNAPSHOT_FIELD),
    EncryptedColumn(PaymentMethod, "number_enc", CARD_NUMBER_FIELD),
    EncryptedColumn(PaymentMethod, "reserved_phone_enc", RESERVED_PHONE_FIELD),
    EncryptedColumn(CardBinding, "number_enc", CARD_NUMBER_FIELD),
    EncryptedColumn(CardBinding, "reserved_phone_enc", RESERVED_PHONE_FIELD),
)

UNKNOWN_KEY = "(not in keyring)"


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """One keyring change at a time: two rotations reading the same ring would each drop the other's key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise KeyManagementError(
                "another `miaodai keys` command is changing this keyring; retry after it"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def init_keyring(path: Path) -> tuple[bool, Keyring]:
    """Create the keyring file if it does not exist; returns (created, keyring)."""
    existed = path.exists()
    return (not existed, load_keyring(path, create=True))


def _prefix(key_id: str) -> str:
    return f"{FORMAT_VERSION}.{key_id}.%"


def key_usage(db: Database, key_ids: list[str]) -> dict[str, dict[str, int]]:
    """For each encrypted column, how many stored values use each key id (and how many no known key)."""
    usage: dict[str, dict[str, int]] = {}
    with db.transaction() as session:
        for column in ENCRYPTED_COLUMNS:
            c = column.sql_column
            counts = [func.coalesce(func.sum(case((c.like(_prefix(kid)), 1), else_=0)), 0) for kid in key_ids]
            row = session.execute(select(func.count(c), *counts)).one()
            per_key = {kid: int(n) for kid, n in zip(key_ids, row[1:], strict=True)}
            per_key[UNKNOWN_KEY] = int(row[0]) - sum(per_key.values())
            usage[column.label] = per_key
    return usage


def totals_by_key(usage: dict[str, dict[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for per_key in usage.values():
        for kid, n in per_key.items():
            totals[kid] = totals.get(kid, 0) + n
    return totals


@dataclass
class RewrapReport:
    active_key_id: str
    rewrapped: dict[str, int] = field(default_factory=dict)
    # Ids of rows whose value could not be decrypted (corrupt or under a key no longer in the ring).
    unreadable: dict[str, list[int]] = field(default_factory=dict)


Progress = Callable[[str, int], None]
PROGRESS_EVERY = 10_000  # rows between progress reports of one column


def rotate(
    path: Path, db: Database, audit: AuditLog, *, batch_size: int = 200, progress: Progress | None = None
) -> RewrapReport:
    """Add a new data key, make it active (atomic file replace), then re-encrypt every stored value."""
    with _exclusive(path):
        keyring = load_keyring(path, create=False)
        rotated = keyring.with_new_active_key()
        save_keyring(path, rotated)
        with db.transaction() as session:
            audit.record(session, actor="system:keys", action="keys.rotated", subject=f"key:{rotated.active_key_id}",
                         details={"previous_active": keyring.active_key_id})
        return rewrap(Vault(rotated, path), db, audit, batch_size=batch_size, progress=progress)


def rewrap(
    vault: Vault, db: Database, audit: AuditLog, *, batch_size: int = 200, progress: Progress | None = None
) -> RewrapReport:
    """Re-encrypt every value not yet under the active key (also resumes an interrupted rotation)."""
    report = RewrapReport(vault.active_key_id)
    for column in ENCRYPTED_COLUMNS:
        done, unreadable = _rewrap_column(vault, db, column, batch_size, progress)
        report.rewrapped[column.label] = done
        if unreadable:
            report.unreadable[column.label] = unreadable
    with db.transaction() as session:
        audit.record(session, actor="system:keys", action="keys.reencrypted", subject=f"key:{vault.active_key_id}",
                     details={"reencrypted": report.rewrapped, "unreadable": report.unreadable})
    return report


def _rewrap_column(
    vault: Vault, db: Database, column: EncryptedColumn, batch_size: int, progress: Progress | None
) -> tuple[int, list[int]]:
    table = column.model.__table__  # type: ignore[attr-defined]
    pk, c = table.c.id, column.sql_column
    pending = select(pk, c).where(c.is_not(None), c.not_like(_prefix(vault.active_key_id))).order_by(pk)
    last_id, done, unreadable = 0, 0, []
    while True:
        with db.transaction() as session:  # one short transaction per batch keeps writers moving
            rows = session.execute(pending.where(pk > last_id).limit(batch_size)).all()
            for row_id, stored in rows:
                try:
                    plaintext = vault.decrypt(stored, column.field)
                except DecryptionError:
                    unreadable.append(row_id)
                    continue
                # Guarded by the old value: a row a writer changed meanwhile is already under the new key.
                result = session.execute(
                    update(table).where(pk == row_id, c == stored).values({c: vault.encrypt(plaintext, column.field)})
                )
                done += result.rowcount or 0
        if len(rows) < batch_size:
            if progress is not None:
                progress(column.label, done)
            return done, unreadable
        if progress is not None and done % PROGRESS_EVERY < batch_size:
            progress(column.label, done)
        last_id = rows[-1][0]


def retire(path: Path, db: Database, audit: AuditLog, key_id: str) -> Keyring:
    """Remove a data key from the ring, only if it is not active and no stored value uses it."""
    with _exclusive(path):
        keyring = load_keyring(path, create=False)
        if key_id not in keyring.data_keys:
            known = ", ".join(sorted(keyring.data_keys))
            raise KeyManagementError(f"key {key_id} is not in the keyring (known: {known})")
        if key_id == keyring.active_key_id:
            raise KeyManagementError(f"key {key_id} is the active key; rotate first")
        usage = key_usage(db, [key_id])
        in_use = {label: per_key[key_id] for label, per_key in usage.items() if per_key[key_id]}
        if in_use:
            where = ", ".join(f"{label}: {n}" for label, n in in_use.items())
            raise KeyManagementError(
                f"key {key_id} still encrypts {sum(in_use.values())} stored values ({where}); "
                "run `miaodai keys rotate --resume` first"
            )
        retired = keyring.without_key(key_id)
        save_keyring(path, retired)
        with db.transaction() as session:
            audit.record(session, actor="system:keys", action="keys.retired", subject=f"key:{key_id}")
        return retired
