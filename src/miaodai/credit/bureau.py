"""The credit bureau (征信): a small Protocol, and a sandbox that answers like the real one.

A bureau report is what a lender reads from the PBoC Credit Reference Center (or a licensed
personal-credit bureau such as Baihang 百行征信) after the borrower authorised the query: how long
their credit file is, open accounts and balances, how much of their revolving limits they use, how
often other lenders queried them lately (多头借贷: several applications in a short time is the
strongest fraud and over-indebtedness signal), overdue history, and what is overdue now.

The sandbox derives a *deterministic* synthetic report from the ID number (the same person always
gets the same report, as with a real bureau on one day) and has documented test ID numbers for the
cases a decision must handle (docs/sandbox.md), all valid resident ID numbers born 1990-03-08:

    110101199003089011   thin file: no credit history at all
    11010119900308902X   heavy multi-borrowing: 9 inquiries in 3 months, 14 in 6
    110101199003089038   currently overdue (3,450.00 yuan, 45 days)
    110101199003089046   a written-off account in the history
    110101199003089054   on the bureau's fraud list
    110101199003089062   no answer: ProviderTimeout after the timeout
    110101199003089070   the bureau answers with an error (ProviderError "BUREAU_UNAVAILABLE")
    110101199003089089   a clean, long file (a good applicant)
    any other number     a synthetic report drawn from the number (mostly ordinary files)
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, replace
from typing import Protocol

from miaodai.core.providers import ProviderError, ProviderTimeout, SandboxParty

# Sandbox latency of a bureau query: real ones answer in 100-500 ms.
BUREAU_SANDBOX_LATENCY_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class BureauReport:
    """The parts of a bureau report a decision uses. Money in fen; ``file_age_months`` None = no file."""

    reference: str  # the bureau's report number, kept with the decision
    file_age_months: int | None
    open_accounts: int
    revolving_limit_fen: int  # credit-card and revolving-line limits
    revolving_balance_fen: int
    total_balance_fen: int  # everything outstanding (loans and revolving)
    monthly_repayment_fen: int  # scheduled monthly repayments on all open accounts
    internet_consumer_credit_fen: int  # outstanding internet consumer loans (counts toward the 200,000 cap)
    inquiries_1m: int  # loan/card approval queries by other lenders
    inquiries_3m: int
    inquiries_6m: int
    worst_overdue_days_24m: int  # the longest overdue in the last 24 months (0 = never late)
    months_since_last_overdue: int | None
    current_overdue_fen: int
    current_overdue_days: int
    written_off: bool  # an account written off / 呆账 in the history
    fraud_list_hit: bool

    @property
    def utilisation(self) -> float | None:
        if self.revolving_limit_fen <= 0:
            return None
        return self.revolving_balance_fen / self.revolving_limit_fen


class CreditBureau(Protocol):
    def report(self, id_number: str, name: str) -> BureauReport:
        """The borrower's report; raises ProviderTimeout (unknown) or ProviderError (the bureau's error)."""
        ...


THIN_FILE_ID = "110101199003089011"
MULTI_BORROWING_ID = "11010119900308902X"
CURRENT_OVERDUE_ID = "110101199003089038"
WRITTEN_OFF_ID = "110101199003089046"
FRAUD_LIST_ID = "110101199003089054"
BUREAU_TIMEOUT_ID = "110101199003089062"
BUREAU_ERROR_ID = "110101199003089070"
CLEAN_FILE_ID = "110101199003089089"


def synthetic_report(id_number: str, reference: str = "sbx-report") -> BureauReport:
    """A plausible report drawn deterministically from the ID number (pure; the sandbox's generator).

    One latent "credit quality" per person drives every field, so the fields move together as in
    real files: better files are older, use less of their limits, see fewer queries and fewer lates.
    """
    seed = int.from_bytes(hashlib.sha256(id_number.encode()).digest()[:8], "big")
    rng = random.Random(seed)  # noqa: S311 - synthetic test data, not a secret
    quality = rng.gauss(0.0, 1.0)
    if rng.random() < 0.08:  # about one in twelve applicants has no credit history
        return _thin(reference)
    file_age = max(1, int(rng.lognormvariate(3.6 + 0.25 * quality, 0.6)))  # months; median ~3 years
    open_accounts = max(1, int(rng.gauss(3.0 + 0.5 * quality, 1.6)))
    limit = int(rng.lognormvariate(10.2 + 0.35 * quality, 0.8)) * 100  # revolving limit, in fen
    utilisation = min(1.2, max(0.0, rng.betavariate(2, 3) - 0.12 * quality))
    revolving = int(limit * utilisation)
    loans = int(rng.lognormvariate(9.8, 1.0) * 100) if rng.random() < 0.55 else 0
    internet = int(loans * rng.uniform(0.2, 1.0))
    monthly = int((revolving * 0.1 + loans / 12) / 100) * 100
    pressure = max(0.0, 1.1 - 0.6 * quality)  # how actively this person is seeking credit
    inquiries_1m = _poisson(rng, 0.5 * pressure)
    inquiries_3m = inquiries_1m + _poisson(rng, 1.0 * pressure)
    inquiries_6m = inquiries_3m + _poisson(rng, 1.3 * pressure)
    late_odds = 1.0 / (1.0 + math.exp(1.4 + 1.3 * quality))
    worst = 0
    since: int | None = None
    if rng.random() < late_odds:
        worst = rng.choice((3, 7, 15, 30, 30, 45, 60, 90)) if quality < -0.8 else rng.choice((1, 3, 5, 10, 15, 30))
        since = rng.randint(1, min(24, file_age))
    return BureauReport(
        reference=reference, file_age_months=file_age, open_accounts=open_accounts,
        revolving_limit_fen=limit, revolving_balance_fen=revolving, total_balance_fen=revolving + loans,
        monthly_repayment_fen=monthly, internet_consumer_credit_fen=internet,
        inquiries_1m=inquiries_1m, inquiries_3m=inquiries_3m, inquiries_6m=inquiries_6m,
        worst_overdue_days_24m=worst, months_since_last_overdue=since,
        current_overdue_fen=0, current_overdue_days=0, written_off=False, fraud_list_hit=False,
    )


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: fine for the small means of inquiry counts.
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _thin(reference: str) -> BureauReport:
    return BureauReport(
        reference=reference, file_age_months=None, open_accounts=0, revolving_limit_fen=0,
        revolving_balance_fen=0, total_balance_fen=0, monthly_repayment_fen=0, internet_consumer_credit_fen=0,
        inquiries_1m=0, inquiries_3m=0, inquiries_6m=0, worst_overdue_days_24m=0,
        months_since_last_overdue=None, current_overdue_fen=0, current_overdue_days=0,
        written_off=False, fraud_list_hit=False,
    )


def _clean(reference: str) -> BureauReport:
    return BureauReport(
        reference=reference, file_age_months=96, open_accounts=3, revolving_limit_fen=8_000_000,
        revolving_balance_fen=800_000, total_balance_fen=800_000, monthly_repayment_fen=80_000,
        internet_consumer_credit_fen=0, inquiries_1m=0, inquiries_3m=0, inquiries_6m=1,
        worst_overdue_days_24m=0, months_since_last_overdue=None, current_overdue_fen=0, current_overdue_days=0,
        written_off=False, fraud_list_hit=False,
    )


def documented_report(id_number: str, reference: str) -> BureauReport | None:
    """The fixed report of a documented test ID number, or None for any other number."""
    ordinary = replace(_clean(reference), file_age_months=40, revolving_balance_fen=3_000_000,
                       total_balance_fen=3_000_000, monthly_repayment_fen=300_000)
    reports = {
        THIN_FILE_ID: _thin(reference),
        MULTI_BORROWING_ID: replace(ordinary, inquiries_1m=4, inquiries_3m=9, inquiries_6m=14,
                                    internet_consumer_credit_fen=6_000_000, total_balance_fen=9_000_000),
        CURRENT_OVERDUE_ID: replace(ordinary, current_overdue_fen=345_000, current_overdue_days=45,
                                    worst_overdue_days_24m=45, months_since_last_overdue=0),
        WRITTEN_OFF_ID: replace(ordinary, written_off=True, worst_overdue_days_24m=180, months_since_last_overdue=14),
        FRAUD_LIST_ID: replace(ordinary, fraud_list_hit=True),
        CLEAN_FILE_ID: _clean(reference),
    }
    return reports.get(id_number)


class SandboxBureau(SandboxParty):
    """Answers after a little latency with :func:`synthetic_report` or a documented test case."""

    def report(self, id_number: str, name: str) -> BureauReport:
        if id_number == BUREAU_TIMEOUT_ID:
            raise self._time_out("credit bureau")
        reference = self._answer_after_latency()
        if id_number == BUREAU_ERROR_ID:
            raise ProviderError("credit bureau", "BUREAU_UNAVAILABLE")
        return documented_report(id_number, reference) or synthetic_report(id_number, reference)


__all__ = [
    "BureauReport", "CreditBureau", "ProviderError", "ProviderTimeout", "SandboxBureau", "synthetic_report",
]
