"""Where a borrower stands on the way to money: verified, consents in force, a credit line — read with the
services the API's own views use (``GET /v1/kyc``, ``GET /v1/consents``, ``GET /v1/credit-lines``,
``GET /v1/credit/applications``), so the start page and the credit page say the same as the API.

The order is the product's: verify → consents → apply → draw. The carrier check itself needs three
consents first (the service refuses without them); the verification page asks for those in place, so the
journey still starts with verifying.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from miaodai.container import Container
from miaodai.core.clock import business_date
from miaodai.credit import service as credit_service
from miaodai.credit.models import ApplicationStatus, CreditApplication
from miaodai.identity import consent_service, kyc_service
from miaodai.identity.consent_service import Standing
from miaodai.identity.kyc_service import KycOverview
from miaodai.identity.models import ConsentKind, KycStatus
from miaodai.identity.sessions import AuthContext
from miaodai.loans import line_service
from miaodai.loans.models import CreditLine
from miaodai.loans.overdue import Standing as RepaymentStanding
from miaodai.loans.states import LineStatus
from miaodai.payments import methods
from miaodai.web.core import PREFIX


def _(message: str) -> str:
    """Marks an English message id for the catalogs (extracted like the templates' ``_``)."""
    return message


# Each step as the start page and the "next" buttons name it.
STEP_TITLES = {"verify": _("Verify your identity"), "consents": _("Agree to the consents"),
               "credit": _("Apply for a credit line"), "draw": _("Draw money")}
# The order the consents page lists them in: what verification needs, then what applying adds.
CONSENT_ORDER = (ConsentKind.PRIVACY_POLICY, ConsentKind.USER_AGREEMENT, ConsentKind.CARRIER_DATA,
                 ConsentKind.CREDIT_BUREAU_QUERY)


@dataclass(frozen=True)
class Step:
    key: str  # verify | consents | credit | draw
    state: str  # done | current | todo
    href: str


@dataclass(frozen=True)
class Progress:
    kyc: KycOverview
    consents: dict[ConsentKind, Standing]
    line: CreditLine | None  # the borrower's line that is not closed (one at a time)
    application: CreditApplication | None  # the latest application
    has_payout_method: bool  # a bound card or wallet the money can be paid out to
    today: date
    # Where the borrower stands with their repayments (loans.overdue): what is past due, whether the
    # credit policy freezes the line for it — the same standing the drawdown refuses on.
    standing: RepaymentStanding | None = None

    @property
    def line_frozen_for_overdue(self) -> bool:
        return (self.line is not None and self.line.status is LineStatus.ACTIVE and self.standing is not None
                and self.standing.line_frozen)

    @property
    def line_status(self) -> str:
        """The line's state as the borrower may use it now: ``frozen`` while overdue, when the policy says so."""
        if self.line is None:
            return ""
        return LineStatus.FROZEN.value if self.line_frozen_for_overdue else self.line.status.value

    @property
    def repay_href(self) -> str | None:
        """Where to repay what is past due (the loan late the longest), while anything is."""
        first = self.standing.first if self.standing is not None else None
        return f"{PREFIX}/loans/{first.loan_id}/repay?what=due" if first is not None else None

    @property
    def penalty_free_until(self) -> date | None:
        """While everything past due is still within grace: the last day it can be paid without penalty."""
        if self.standing is None or not self.standing.past_due or self.standing.overdue:
            return None
        return min(self.today + timedelta(days=loan.grace_days - loan.days_past_due) for loan in self.standing.loans)

    @property
    def verified(self) -> bool:
        return self.kyc.status is KycStatus.VERIFIED

    @property
    def missing_for_credit(self) -> list[Standing]:
        """The consents an application needs (``credit.service.APPLICATION_CONSENTS``) that are not in force."""
        return [self.consents[kind] for kind in credit_service.APPLICATION_CONSENTS
                if kind in self.consents and not self.consents[kind].in_force]

    @property
    def in_review(self) -> bool:
        return self.application is not None and self.application.status is ApplicationStatus.IN_REVIEW

    @property
    def declined_until(self) -> date | None:
        """The date a declined borrower may apply again, while it is still ahead."""
        app = self.application
        if app is None or app.status is not ApplicationStatus.DECLINED or app.reapply_on is None:
            return None
        return app.reapply_on if app.reapply_on > self.today else None

    @property
    def setup_done(self) -> bool:
        """Verified, every consent an application needs in force, a line held: the checklist has nothing left to
        ask before drawing, and the start page becomes the line and the bills."""
        return self.verified and not self.missing_for_credit and self.line is not None

    def steps(self) -> list[Step]:
        """The journey's cards: the first step not done is ``current`` (the page's one primary action)."""
        done = {"verify": self.verified, "consents": not self.missing_for_credit, "credit": self.line is not None,
                "draw": False}
        hrefs = {"verify": f"{PREFIX}/verify", "consents": f"{PREFIX}/consents", "credit": f"{PREFIX}/credit",
                 "draw": f"{PREFIX}/loans/new"}
        steps, current_found = [], False
        for key in ("verify", "consents", "credit", "draw"):
            state = "done" if done[key] else ("todo" if current_found else "current")
            current_found = current_found or state == "current"
            steps.append(Step(key, state, hrefs[key]))
        return steps

    @property
    def next_step(self) -> Step | None:
        return next((step for step in self.steps() if step.state == "current"), None)


def progress(container: Container, auth: AuthContext) -> Progress:
    kyc = kyc_service.overview(container, auth.borrower_id)
    consents = consent_service.overview(container, auth.borrower_id).standings
    held = line_service.borrower_lines_standing(container, auth.borrower_id)
    lines = [line for line in held.lines if line.status is not LineStatus.CLOSED]
    applications = credit_service.borrower_applications(container, auth.borrower_id)
    return Progress(kyc=kyc, consents=consents, line=lines[-1] if lines else None,
                    application=applications[0] if applications else None,
                    has_payout_method=bool(methods.borrower_methods(container, auth.borrower_id)),
                    today=business_date(container.clock.now()), standing=held.standing)
