"""The re-scoring batch (``miaodai credit rescore``): existing lines re-evaluated with fresh data.

For each active line: a fresh bureau report (under the borrower's bureau-query consent; without it the
line is left alone and counted), our own book, and the declared data of the borrower's latest
application go through the active ruleset and champion model, like a new application. Then:

* a decline-level finding (current overdue, written-off, fraud list, consent withdrawn...) or a grade
  whose policy is ``decline`` **freezes** the line (no new drawdowns; loans already drawn run on);
* otherwise the line moves to the new offer: **raised** when the offer is at least ``RAISE_MIN``
  above the limit and the borrower has no lateness with us, **lowered** when below — never under
  what is drawn (the limit cannot fall below principal outstanding on the line);
* the borrower gets an SMS with the change and its reason; each change is one audited transaction.
Bureau timeouts leave the line unchanged (unknown is never a reason to cut someone's credit).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import structlog
from sqlalchemy import select, update

from miaodai.core.clock import business_date
from miaodai.core.money import Money
from miaodai.credit.features import ApplicationInput, Education, LoanPurpose, Occupation, build_features
from miaodai.credit.models import SNAPSHOT_FIELD, CreditApplication
from miaodai.credit.ports import CreditPorts
from miaodai.credit.rules import BureauStatus, Facts, Outcome
from miaodai.credit.service import (
    APPLICATION_CONSENTS,
    book_signals,
    decide,
    fetch_outside,
    internal_history,
)
from miaodai.identity.consent_service import standings
from miaodai.identity.models import (
    KYC_ID_NUMBER_FIELD,
    KYC_NAME_FIELD,
    PHONE_FIELD,
    Borrower,
    ConsentKind,
    KycIdentity,
    OtpChannel,
)
from miaodai.identity.ports import IdentityPorts
from miaodai.identity.resident_id import age_on
from miaodai.loans.models import CreditLine, LoanProduct
from miaodai.loans.states import LineStatus

log = structlog.get_logger(__name__)

RAISE_MIN = 0.10  # a raise smaller than 10 % of the limit is not worth a message


@dataclass
class RescoreReport:
    business_date: date
    counts: Counter = field(default_factory=Counter)
    changes: list[dict] = field(default_factory=list)


def rescore(ports: CreditPorts, *, limit: int | None = None) -> RescoreReport:
    now = ports.clock.now()
    today = business_date(now)
    report = RescoreReport(today)
    with ports.db.transaction() as session:
        query = select(CreditLine.id).where(CreditLine.status == LineStatus.ACTIVE).order_by(CreditLine.id)
        line_ids = list(session.execute(query.limit(limit) if limit else query).scalars())
    for line_id in line_ids:
        outcome = _rescore_line(ports, line_id, today=today)
        report.counts[outcome["action"]] += 1
        if outcome["action"] in ("raised", "lowered", "frozen"):
            report.changes.append(outcome)
    return report


def _rescore_line(ports: CreditPorts, line_id: int, *, today: date) -> dict:
    now = ports.clock.now()
    vault = ports.vault
    with ports.db.transaction() as session:
        line = session.get(CreditLine, line_id)
        borrower = session.get(Borrower, line.borrower_id)
        identity = session.execute(select(KycIdentity).where(KycIdentity.borrower_id == line.borrower_id)).scalar_one()
        latest = session.execute(
            select(CreditApplication).where(CreditApplication.borrower_id == line.borrower_id)
            .order_by(CreditApplication.id.desc())).scalars().first()
        standing = standings(session, line.borrower_id, now=now)
        missing = tuple(k.value for k in APPLICATION_CONSENTS if k in standing and not standing[k].in_force)
        carrier = ConsentKind.CARRIER_DATA in standing and standing[ConsentKind.CARRIER_DATA].in_force
        product = session.get(LoanProduct, line.product_id).spec()
        policy = ports.credit_policy.active(session)
        book = book_signals(session, borrower_id=line.borrower_id, id_number_bidx=identity.id_number_bidx,
                            phone_bidx=borrower.phone_bidx, device_bidx=None, since=today)
        internal = internal_history(session, line.borrower_id, today=today, book=book)
        declared = None
        if latest is not None:
            declared = json.loads(vault.decrypt(latest.snapshot_enc, SNAPSHOT_FIELD))["application"]
        name = vault.decrypt(identity.name_enc, KYC_NAME_FIELD)
        id_number = vault.decrypt(identity.id_number_enc, KYC_ID_NUMBER_FIELD)
        phone = vault.decrypt(borrower.phone_enc, PHONE_FIELD)
        used = line.limit_fen - line.available_fen
        old_limit = line.limit_fen
    base = {"line_id": line_id, "borrower_id": line.borrower_id, "old_limit_fen": old_limit}
    if declared is None:  # a staff-granted line with no application on file: nothing to re-score against
        return {**base, "action": "skipped_no_application"}
    if ConsentKind.CREDIT_BUREAU_QUERY.value in missing:
        return {**base, "action": "skipped_no_bureau_consent"}
    outside = fetch_outside(ports, id_number, name, phone, carrier=carrier)
    if outside.bureau_status is not BureauStatus.OK:
        return {**base, "action": "unchanged_bureau_unavailable"}
    application = ApplicationInput(declared["monthly_income_fen"], Occupation(declared["occupation"]),
                                   Education(declared["education"]), LoanPurpose(declared["loan_purpose"]))
    features = build_features(application=application, age=age_on(identity.birth_date, today), report=outside.report,
                              phone_tenure_months=outside.phone_tenure_months, internal=internal)
    report = outside.report
    facts = Facts(
        identity_verified=True, missing_consents=missing, blocked_on=book.blocked_on, bureau_status=BureauStatus.OK,
        bureau_current_overdue_fen=report.current_overdue_fen, bureau_written_off=report.written_off,
        bureau_fraud_list_hit=report.fraud_list_hit,
        # This line's own limit is what is being re-decided: count the rest of the borrower's credit.
        internet_consumer_credit_fen=report.internet_consumer_credit_fen + internal.existing_limit_fen - old_limit,
        monthly_repayment_fen=report.monthly_repayment_fen + internal.monthly_repayment_fen,
        active_lines=0, application_date=today,
    )
    verdict = decide(policy, features, facts, product=product, monthly_income_fen=application.monthly_income_fen)
    declines = [f for f in verdict.findings if f.outcome is Outcome.DECLINE]
    grade_declines = policy.ruleset.grades[verdict.grade].outcome is Outcome.DECLINE
    if declines or grade_declines:
        action, new_limit = "frozen", old_limit
        codes = [f.code for f in declines] or ["CREDIT_SCORE_TOO_LOW"]
    else:
        offered = verdict.limit_fen or 0
        codes = [f"grade {verdict.grade}"]
        if offered >= old_limit * (1 + RAISE_MIN) and internal.max_overdue_days == 0:
            action, new_limit = "raised", offered
        elif offered < old_limit:
            action, new_limit = "lowered", max(offered, used)
            if new_limit == old_limit:
                action = "unchanged"
        else:
            action, new_limit = "unchanged", old_limit
    if action == "unchanged":
        return {**base, "action": action}
    with ports.db.transaction() as session:
        values = ({"status": LineStatus.FROZEN} if action == "frozen"
                  else {"limit_fen": new_limit, "available_fen": new_limit - used, "risk_grade": verdict.grade})
        changed = session.execute(
            update(CreditLine).where(CreditLine.id == line_id, CreditLine.status == LineStatus.ACTIVE,
                                     CreditLine.limit_fen == old_limit, CreditLine.available_fen == old_limit - used)
            .values(**values, version=CreditLine.version + 1, updated_at=now)
            .execution_options(synchronize_session=False)).rowcount
        if changed != 1:  # a drawdown or repayment moved the line meanwhile: next run decides
            return {**base, "action": "unchanged_line_moved"}
        ports.audit.record(session, actor="system:rescore", action=f"credit.line.{action}",
                               subject=f"credit_line:{line_id}",
                               details={"old_limit_fen": old_limit, "new_limit_fen": new_limit, "grade": verdict.grade,
                                        "score": verdict.score, "codes": codes, "ruleset": policy.ruleset.version,
                                        "model": policy.champion.model_id})
    _notify(ports, phone, action, old_limit, new_limit)
    return {**base, "action": action, "new_limit_fen": new_limit, "grade": verdict.grade, "codes": codes}


def _notify(ports: IdentityPorts, phone: str, action: str, old_limit: int, new_limit: int) -> None:
    old, new = Money(old_limit).to_yuan(), Money(new_limit).to_yuan()
    text = {
        "raised": f"【秒贷】根据您的良好信用表现，您的额度已由 {old} 元提高至 {new} 元。"
                  f"Your credit line was raised from {old} to {new} yuan.",
        "lowered": f"【秒贷】根据最新的信用评估，您的额度已由 {old} 元调整为 {new} 元，可登录查看原因。"
                   f"After a new credit review your line changed from {old} to {new} yuan.",
        "frozen": "【秒贷】根据最新的信用评估，您的额度暂停使用，已借款项照常还款，可登录查看原因。"
                  "After a new credit review your line is paused; existing loans continue as agreed.",
    }[action]
    delivery = ports.sms.send(phone, text, OtpChannel.SMS)
    if not delivery.accepted:
        log.warning("rescore_sms_failed", action=action, reason=delivery.failure_reason)
