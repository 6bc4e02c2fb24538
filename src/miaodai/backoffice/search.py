"""Finding a customer (客户查询): by phone, ID number, name, loan number, contract number, or a card's BIN + last 4
(or its full number) — never by decrypting what is stored.

Each kind is an equality lookup on an indexed column:

* phone, ID number, name: the keyed HMAC blind index of the normalised value (``Vault.blind_index``; purposes
  ``phone``, ``id_number``, ``name``), computed from what the staff member typed and compared with
  ``borrowers.phone_bidx``, ``kyc_identities.id_number_bidx`` and ``kyc_identities.name_bidx``;
* a full card number: the card's keyed fingerprint (purpose ``card``, ``payment_methods.fingerprint``);
* BIN + last 4: the clear ``payment_methods.bin`` and ``last4`` (what PCI DSS lets us show; see
  ``payments.read_models``);
* loan and contract numbers: the unique ``loans.loan_no`` and ``loan_contracts.contract_no`` (not personal data).

Each domain owns its query (``*.read_models``); this module normalises the text, picks the lookup and masks the
hits (``core.masking``). A search is recorded in the audit log with its kind and the borrowers found, never the
text searched for.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from miaodai.backoffice.customer_errors import CustomerErrors
from miaodai.core.crypto import Vault
from miaodai.core.errors import DomainError
from miaodai.core.masking import mask_id_number, mask_name, mask_phone
from miaodai.core.ports import Platform
from miaodai.identity.models import (
    ID_NUMBER_INDEX,
    KYC_ID_NUMBER_FIELD,
    KYC_NAME_FIELD,
    PHONE_FIELD,
    PHONE_INDEX,
    BorrowerStatus,
    KycStatus,
)
from miaodai.identity.phone import InvalidPhoneNumber, parse_mainland_mobile
from miaodai.identity.read_models import BorrowerRow, LookupKind, borrower_rows, borrowers_by_index, name_index
from miaodai.identity.resident_id import normalize_id_number
from miaodai.identity.staff_service import StaffContext
from miaodai.loans import read_models as loan_reads
from miaodai.payments import read_models as payment_reads
from miaodai.payments.models import CARD_INDEX

MAX_HITS = 20  # more namesakes than this: narrow the search by another kind
MAX_QUERY_CHARS = 64


class SearchKind(StrEnum):
    PHONE = "phone"
    ID_NUMBER = "id_number"
    NAME = "name"
    LOAN = "loan"
    CONTRACT = "contract"
    CARD = "card"


# What each kind is called, and what a valid one looks like, for the refusal of a text that is not one.
_KIND_WORDS: dict[SearchKind, tuple[str, str, str, str]] = {
    SearchKind.PHONE: ("手机号", "phone number", "请输入 11 位大陆手机号，如 13800138001。",
                       "Type an 11-digit mainland mobile number, e.g. 13800138001."),
    SearchKind.ID_NUMBER: ("身份证号", "ID number", "请输入 18 位身份证号（末位可为 X）。",
                           "Type the 18-character resident ID number (the last may be X)."),
    SearchKind.NAME: ("姓名", "name", "请输入客户的完整姓名。", "Type the customer's full name."),
    SearchKind.LOAN: ("借款编号", "loan number", "借款编号形如 MD20261207A1B2C3D4。",
                      "A loan number looks like MD20261207A1B2C3D4."),
    SearchKind.CONTRACT: ("合同编号", "contract number", "合同编号形如 MD20261207A1B2C3D4。",
                          "A contract number looks like MD20261207A1B2C3D4."),
    SearchKind.CARD: ("银行卡信息", "card", "请输入卡号前 6 位和后 4 位（如 622202****1007），或完整卡号。",
                      "Type the card's first 6 and last 4 digits (e.g. 622202****1007), or the whole number."),
}

_LOAN_NO = re.compile(r"MD\d{8}[0-9A-F]{8}")
_ID_SHAPE = re.compile(r"\d{17}[\dX]")


@dataclass(frozen=True)
class MaskedIdentity:
    """A borrower's personal data as staff see it by default: masked."""

    phone: str
    name: str | None  # None before real-name verification
    id_number: str | None


@dataclass(frozen=True)
class CustomerHit:
    borrower_id: int
    status: BorrowerStatus
    kyc_status: KycStatus
    registered_at: datetime
    masked: MaskedIdentity


@dataclass(frozen=True)
class SearchResult:
    kind: SearchKind
    hits: list[CustomerHit]
    truncated: bool  # more than MAX_HITS matched: only the first (lowest ids) are shown


def masked_identity(vault: Vault, row: BorrowerRow) -> MaskedIdentity:
    """Decrypt the borrower's personal data only to mask it; the clear value is never returned."""
    return MaskedIdentity(
        phone=mask_phone(vault.decrypt(row.phone_enc, PHONE_FIELD)),
        name=mask_name(vault.decrypt(row.name_enc, KYC_NAME_FIELD)) if row.name_enc else None,
        id_number=mask_id_number(vault.decrypt(row.id_number_enc, KYC_ID_NUMBER_FIELD)) if row.id_number_enc else None,
    )


# What a kind's text looks like, the same in both languages (the refusal's example).
_EXAMPLES = {SearchKind.PHONE: "13800138001", SearchKind.ID_NUMBER: "110101199003070054", SearchKind.NAME: "王小明",
             SearchKind.LOAN: "MD20261207A1B2C3D4", SearchKind.CONTRACT: "MD20261207A1B2C3D4",
             SearchKind.CARD: "622202****1007"}


def _refuse(kind: SearchKind) -> DomainError:
    zh, en, hint_zh, hint_en = _KIND_WORDS[kind]
    return DomainError(CustomerErrors.QUERY_INVALID, params={
        "kind": kind.value, "example": _EXAMPLES[kind], "kind_zh": zh, "kind_en": en, "hint_zh": hint_zh,
        "hint_en": hint_en})


@dataclass(frozen=True)
class _Lookup:
    """What to look up, once the typed text is normalised: a blind index, a number, or a card's digits."""

    kind: SearchKind
    value: str
    last4: str = ""


def _card_lookup(text: str) -> _Lookup:
    """``622202****1007``, ``622202 1007``, ``6222021007``: the first 6 to 10 digits and the last 4 (10 to 14
    digits in all); 15 to 19 digits: a whole card number, looked up by its fingerprint."""
    if "*" in text:
        head, _, tail = text.strip("*").partition("*")
        head, tail = re.sub(r"[\s-]", "", head), re.sub(r"[\s*-]", "", tail)
        if re.fullmatch(r"\d{6,10}", head) and re.fullmatch(r"\d{4}", tail):
            return _Lookup(SearchKind.CARD, head, tail)
        raise _refuse(SearchKind.CARD)
    digits = re.sub(r"[\s-]", "", text)
    if not digits.isascii() or not digits.isdigit():
        raise _refuse(SearchKind.CARD)
    if 10 <= len(digits) <= 14:
        return _Lookup(SearchKind.CARD, digits[:-4], digits[-4:])
    if 15 <= len(digits) <= 19:
        return _Lookup(SearchKind.CARD, digits)  # the whole number
    raise _refuse(SearchKind.CARD)


def _lookup(kind: SearchKind, q: str) -> _Lookup:
    text = unicodedata.normalize("NFKC", q).strip()
    if not text or len(text) > MAX_QUERY_CHARS:
        raise _refuse(kind)
    if kind is SearchKind.PHONE:
        try:
            return _Lookup(kind, parse_mainland_mobile(text))
        except InvalidPhoneNumber:
            raise _refuse(kind) from None
    if kind is SearchKind.ID_NUMBER:
        number = normalize_id_number(text)
        if not _ID_SHAPE.fullmatch(number):
            raise _refuse(kind)
        return _Lookup(kind, number)
    if kind is SearchKind.NAME:
        return _Lookup(kind, text)
    if kind in (SearchKind.LOAN, SearchKind.CONTRACT):
        number = re.sub(r"\s", "", text).upper()
        if not _LOAN_NO.fullmatch(number):
            raise _refuse(kind)
        return _Lookup(kind, number)
    return _card_lookup(text)


def search(ports: Platform, staff: StaffContext, q: str, kind: SearchKind) -> SearchResult:
    """The customers matching ``q`` read as ``kind``, masked, lowest ids first (at most :data:`MAX_HITS`).
    Text that cannot be one of ``kind`` is refused (``CUSTOMER_QUERY_INVALID``); one that could but matches
    nobody finds nobody."""
    lookup = _lookup(kind, q)
    vault = ports.vault
    with ports.db.transaction() as session:
        ids: list[int]
        if kind is SearchKind.PHONE:
            ids = borrowers_by_index(session, LookupKind.PHONE, vault.blind_index(lookup.value, PHONE_INDEX),
                                     limit=MAX_HITS + 1)
        elif kind is SearchKind.ID_NUMBER:
            ids = borrowers_by_index(session, LookupKind.ID_NUMBER, vault.blind_index(lookup.value, ID_NUMBER_INDEX),
                                     limit=MAX_HITS + 1)
        elif kind is SearchKind.NAME:
            ids = borrowers_by_index(session, LookupKind.NAME, name_index(vault, lookup.value), limit=MAX_HITS + 1)
        elif kind is SearchKind.LOAN:
            found = loan_reads.borrower_of_loan_no(session, lookup.value)
            ids = [found] if found is not None else []
        elif kind is SearchKind.CONTRACT:
            found = loan_reads.borrower_of_contract_no(session, lookup.value)
            ids = [found] if found is not None else []
        elif lookup.last4:
            ids = payment_reads.borrowers_by_card(session, lookup.value, lookup.last4, limit=MAX_HITS + 1)
        else:
            ids = payment_reads.borrowers_by_fingerprint(session, vault.blind_index(lookup.value, CARD_INDEX),
                                                         limit=MAX_HITS + 1)
        rows = borrower_rows(session, ids[:MAX_HITS])
        ports.audit.record(session, actor=staff.actor, action="customer.searched", subject=staff.actor,
                           details={"kind": kind.value, "borrower_ids": [r.borrower_id for r in rows]})
    hits = [CustomerHit(r.borrower_id, r.status, r.kyc_status, r.created_at, masked_identity(vault, r)) for r in rows]
    return SearchResult(kind, hits, truncated=len(ids) > MAX_HITS)
