"""What other domains read of the identity domain's tables, as SQL they compose into their own statements.

A credit decision reads the applicant on one row (one round trip): the borrower's verification status and
encrypted phone, the verified identity, and the device the request came from. Identity owns these columns and
the joins that find them; the reader adds its own columns to the same SELECT.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.selectable import Select

from miaodai.identity.models import Borrower, Device, KycIdentity

# The identity and the device under one-letter aliases: the credit application's row must stay within psycopg's
# query cache (tests/unit/test_hot_statements.py), and every byte of its text counts.
_K = aliased(KycIdentity, name="k")
_D = aliased(Device, name="d")

# Columns: kyc_status, phone_enc, phone_bidx, name_enc, id_number_enc, id_number_bidx, birth_date, device_bidx.
APPLICANT_COLUMNS = (
    Borrower.kyc_status, Borrower.phone_enc, Borrower.phone_bidx, _K.name_enc, _K.id_number_enc,
    _K.id_number_bidx, _K.birth_date, _D.device_key_bidx.label("device_bidx"),
)
# The same values as expressions, for conditions on the applicant's row (block lists, the device's applicants).
ID_NUMBER_BIDX = _K.id_number_bidx
PHONE_BIDX = Borrower.phone_bidx
DEVICE_BIDX = _D.device_key_bidx


def applicant_row(*columns: Any) -> Select[Any]:
    """One row of the borrower (bind parameter ``borrower_id``) with an identity on file, with the device the
    request came from (``device_id``; NULL columns when it is unknown): :data:`APPLICANT_COLUMNS` followed by
    ``columns``. No row: no identity on file."""
    return (
        select(*APPLICANT_COLUMNS, *columns)
        .join(_K, _K.borrower_id == Borrower.id)
        .outerjoin(_D, _D.id == bindparam("device_id"))
        .where(Borrower.id == bindparam("borrower_id"))
    )


def borrower_locked(*columns: Any) -> Select[Any]:
    """``columns`` (the id when none) on the borrower's row (bind parameter ``borrower_id``), locking it until
    the transaction ends: what serializes one borrower's decisions. The row is only locked, never changed here."""
    row = select(*(columns or (Borrower.id,))).where(Borrower.id == bindparam("borrower_id"))
    return row.with_for_update(of=Borrower)
