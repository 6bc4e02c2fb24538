"""A loan's contract: drafted from its exact terms, signed by the borrower and countersigned by the platform.

* **Draft** (at the drawdown request, and again when the borrower opens it on a later day, since the
  dates move): the contract package renders the terms; the document is stored encrypted (it names the
  borrower in full), with the SHA-256 of its plaintext.
* **Sign**: every signing is its own explicit, fresh confirmation. The borrower asks for a code *for this
  contract* (:func:`request_sign_code`, with the hash of the text they read): it is sent to their own phone
  and its keyed hash is bound to the contract's number and SHA-256, so it signs that text only — a code for
  another contract, a login or step-up code, a code used once already, all fail; no code at all is
  ``CONTRACT_SIGN_CODE_REQUIRED``, however recently the borrower logged in. A different hash means they read
  another version and must read again (``CONTRACT_CHANGED``). The code is consumed in the signing's own
  transaction; the platform signs the hash with its Ed25519 key; hash, signature, key id, time, device and
  *how the borrower confirmed* (``sms_code sent to 138****8001 at …, for contract hash …``) go into the audit
  chain in the same transaction, and the contract row points at that audit entry.
* **Verify** (``miaodai contract verify``): the stored text still hashes to the stored hash, the signature
  verifies under the named platform key, and the audit entry carries the same hash and signature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from miaodai.contracts.document import document_sha256, render_contract
from miaodai.contracts.errors import ContractErrors
from miaodai.contracts.signing import PlatformSigner
from miaodai.contracts.terms import ContractInstallment, ContractTerms
from miaodai.core.audit import AuditEntry
from miaodai.core.clock import business_date
from miaodai.core.errors import DomainError
from miaodai.core.formatting import yuan
from miaodai.core.masking import mask_id_number, mask_phone
from miaodai.core.ports import Platform
from miaodai.identity import login_service
from miaodai.identity.login_service import CodeSent, SigningCode
from miaodai.identity.models import KYC_ID_NUMBER_FIELD, KYC_NAME_FIELD, PHONE_FIELD, Borrower, KycIdentity, OtpChannel
from miaodai.identity.ports import IdentityPorts
from miaodai.identity.sessions import AuthContext
from miaodai.loans.models import CONTRACT_DOCUMENT_FIELD, Loan, LoanContract
from miaodai.loans.ports import LoanPorts
from miaodai.loans.schedule import Schedule

LENDER_NAME_ZH = "秒贷小额贷款有限公司（示例）"
LENDER_NAME_EN = "Miaodai Microcredit Co., Ltd. (demo)"


def draft(session: Session, ports: Platform, loan: Loan, schedule: Schedule, *, now: datetime) -> LoanContract:
    """Render the contract for ``loan`` priced as ``schedule`` and store it (replacing an unsigned draft)."""
    terms = _terms(session, ports, loan, schedule, signed_on=business_date(now))
    document = render_contract(terms)
    contract = session.execute(select(LoanContract).where(LoanContract.loan_id == loan.id)).scalar_one_or_none()
    if contract is None:
        contract = LoanContract(loan_id=loan.id, contract_no=loan.loan_no, created_at=now)
        session.add(contract)
    elif contract.signed_at is not None:
        raise DomainError(ContractErrors.ALREADY_SIGNED, params={
            "contract_no": contract.contract_no, "signed_at": contract.signed_at.isoformat()})
    contract.template_version = document.template_version
    contract.document_enc = ports.vault.encrypt(document.html, CONTRACT_DOCUMENT_FIELD)
    contract.sha256 = document.sha256
    contract.drafted_on = terms.signed_on
    session.flush()
    return contract


def _terms(session: Session, ports: Platform, loan: Loan, schedule: Schedule, *, signed_on: date) -> ContractTerms:
    identity = session.execute(
        select(KycIdentity).where(KycIdentity.borrower_id == loan.borrower_id)).scalar_one()
    borrower = session.get(Borrower, loan.borrower_id)
    assert borrower is not None  # the identity's foreign key
    vault = ports.vault
    return ContractTerms(
        contract_no=loan.loan_no, lender_name_zh=LENDER_NAME_ZH, lender_name_en=LENDER_NAME_EN,
        borrower_name=vault.decrypt(identity.name_enc, KYC_NAME_FIELD),
        borrower_id_number_masked=mask_id_number(vault.decrypt(identity.id_number_enc, KYC_ID_NUMBER_FIELD)),
        borrower_phone_masked=mask_phone(vault.decrypt(borrower.phone_enc, PHONE_FIELD)),
        principal_fen=loan.principal_fen, term_months=loan.term_months, term_days=loan.term_days,
        repayment_method=loan.method.value, annual_rate=loan.annual_rate, apr=schedule.apr,
        monthly_fee_rate=loan.monthly_fee_rate, total_interest_fen=schedule.total_interest_fen,
        total_fee_fen=schedule.total_fee_fen,
        total_cost_fen=schedule.total_interest_fen + schedule.total_fee_fen,
        penalty_annual_rate=loan.penalty_annual_rate, late_fee_fen=loan.late_fee_fen, grace_days=loan.grace_days,
        cost_cap_annual_rate=loan.cost_cap, day_count=schedule.terms.day_count.value,
        start_date=schedule.terms.start_date,
        installments=tuple(
            ContractInstallment(period=i.period, due_date=i.due_date, principal_fen=i.principal_fen,
                                interest_fen=i.interest_fen, fee_fen=i.fee_fen, total_fen=i.total_fen)
            for i in schedule.installments
        ),
        signed_on=signed_on,
    )


def contract_of(session: Session, loan_id: int) -> LoanContract:
    contract = session.execute(select(LoanContract).where(LoanContract.loan_id == loan_id)).scalar_one_or_none()
    if contract is None:
        raise DomainError(ContractErrors.NOT_FOUND, params={"contract_no": f"loan {loan_id}"})
    return contract


def document_of(ports: Platform, contract: LoanContract) -> str:
    """The stored text, refused if it no longer hashes to the stored hash (never serve an altered contract)."""
    html = ports.vault.decrypt(contract.document_enc, CONTRACT_DOCUMENT_FIELD)
    if document_sha256(html) != contract.sha256:
        raise DomainError(ContractErrors.HASH_MISMATCH, params={"contract_no": contract.contract_no})
    return html


def signable(session: Session, ports: Platform, loan: Loan, *, read_sha256: str, now: datetime) -> LoanContract:
    """The loan's contract if ``read_sha256`` is the text it has today and it is not signed yet; else the refusal."""
    contract = contract_of(session, loan.id)
    if contract.signed_at is not None:
        raise DomainError(ContractErrors.ALREADY_SIGNED, params={
            "contract_no": contract.contract_no, "signed_at": contract.signed_at.isoformat()})
    document_of(ports, contract)  # refuses a stored text that was altered
    if read_sha256 != contract.sha256 or contract.drafted_on != business_date(now):
        # They read another version, or the draft's dates are from an earlier day: open it again.
        raise DomainError(ContractErrors.CHANGED, params={"contract_no": contract.contract_no})
    return contract


def binding_of(contract: LoanContract) -> str:
    """What a signing code is bound to: this contract and the exact text (its SHA-256)."""
    return f"{contract.contract_no}:{contract.sha256}"


def request_sign_code(ports: IdentityPorts, auth: AuthContext, loan: Loan, *, read_sha256: str,
                      channel: OtpChannel, ip: str) -> tuple[LoanContract, CodeSent]:
    """Send the borrower a code that signs this contract as they read it (and nothing else)."""
    with ports.db.transaction() as session:
        contract = signable(session, ports, loan, read_sha256=read_sha256, now=ports.clock.now())
        session.expunge(contract)
    use_zh = f"签署借款合同 {contract.contract_no}（借款 {yuan(loan.principal_fen)} 元）"
    sent = login_service.request_signing_code(ports, auth, binding=binding_of(contract), use_zh=use_zh,
                                              channel=channel, ip=ip)
    return contract, sent


def confirm(session: Session, ports: IdentityPorts, auth: AuthContext, contract: LoanContract, *,
            code: str | None, now: datetime) -> SigningCode | DomainError:
    """Redeem the signing code for ``contract`` in the signing's transaction. No code is refused at once (a
    fresh login or step-up does not sign); a wrong, used, expired or other contract's code is returned as the
    refusal for the caller to raise after committing the guess it counted."""
    if not code:
        raise DomainError(ContractErrors.SIGN_CODE_REQUIRED, params={
            "contract_no": contract.contract_no, "loan_id": contract.loan_id})
    return login_service.redeem_signing_code(ports, session, auth, binding=binding_of(contract),
                                             code=code.strip(), now=now)


def confirmation_record(confirmed: SigningCode, contract: LoanContract) -> dict[str, object]:
    """How the borrower confirmed, as the signing's audit record keeps it (and as the loan's view shows it)."""
    method = f"{confirmed.channel.value}_code"
    sent_at, at = confirmed.sent_at.isoformat(), confirmed.confirmed_at.isoformat()
    return {
        "method": method, "channel": confirmed.channel.value, "phone_masked": confirmed.phone_masked,
        "code_sent_at": sent_at, "confirmed_at": at, "otp_challenge_id": confirmed.challenge_id,
        "bound_to_sha256": contract.sha256,
        "statement": f"{method} sent to {confirmed.phone_masked} at {sent_at}, for contract {contract.contract_no} "
                     f"hash {contract.sha256}, entered at {at}",
    }


def sign(session: Session, ports: LoanPorts, loan: Loan, contract: LoanContract, confirmed: SigningCode, *,
         device_id: int | None, actor: str, now: datetime) -> LoanContract:
    """Countersign ``contract`` after the borrower confirmed it (:func:`confirm`) and record both."""
    signer = ports.signer
    contract.signature = signer.sign(contract.sha256)
    contract.key_id = signer.key_id
    contract.signed_at = now
    contract.signed_device_id = device_id
    entry = ports.audit.record(
        session, actor=actor, action="contract.sign", subject=f"loan:{loan.id}",
        details={**_audit_details(contract), "confirmation": confirmation_record(confirmed, contract)},
    )
    session.flush()
    contract.audit_entry_id = entry.id
    return contract


def _audit_details(contract: LoanContract) -> dict[str, object]:
    return {"contract_no": contract.contract_no, "sha256": contract.sha256, "signature": contract.signature,
            "key_id": contract.key_id, "template_version": contract.template_version,
            "device_id": contract.signed_device_id}


def signed_with(session: Session, contract: LoanContract) -> str | None:
    """The signing record's statement of how the borrower confirmed (None before signing, or for a contract
    signed before confirmations were recorded)."""
    entry = session.get(AuditEntry, contract.audit_entry_id) if contract.audit_entry_id else None
    if entry is None:
        return None
    confirmation = json.loads(entry.body).get("details", {}).get("confirmation")
    return confirmation.get("statement") if isinstance(confirmation, dict) else None


@dataclass(frozen=True)
class Verification:
    contract_no: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(session: Session, ports: Platform, contract: LoanContract, signer: PlatformSigner) -> Verification:
    """Check text ↔ hash, hash ↔ signature, and the signing record in the audit log."""
    problems: list[str] = []
    html = ports.vault.decrypt(contract.document_enc, CONTRACT_DOCUMENT_FIELD)
    if document_sha256(html) != contract.sha256:
        problems.append("the stored text does not hash to the stored SHA-256 (the document was altered)")
    if contract.signature is None or contract.key_id is None:
        problems.append("the contract is not signed")
        return Verification(contract.contract_no, problems)
    if contract.key_id not in signer.public_keys():
        problems.append(f"signed with key {contract.key_id}, which is not among the platform's public keys")
    elif not signer.verify(contract.sha256, contract.signature, contract.key_id):
        problems.append("the platform signature does not verify against the stored hash")
    entry = session.get(AuditEntry, contract.audit_entry_id) if contract.audit_entry_id else None
    if entry is None:
        problems.append("the signing record is missing from the audit log")
    else:
        recorded = json.loads(entry.body).get("details", {})
        confirmation = recorded.pop("confirmation", None)
        if entry.action != "contract.sign" or recorded != _audit_details(contract):
            problems.append(f"audit entry {entry.id} does not record this hash and signature")
        elif confirmation is not None and confirmation.get("bound_to_sha256") != contract.sha256:
            problems.append(f"audit entry {entry.id} records a confirmation for another text")
        elif entry.seq is None:
            problems.append(f"audit entry {entry.id} is not sealed into the chain yet (run `miaodai audit seal`)")
    return Verification(contract.contract_no, problems)
