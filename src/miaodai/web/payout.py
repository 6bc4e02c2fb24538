"""Following the payout 放款进度 in the app: each attempt step by step with its times, what a delay means,
and after a failed payout what to do — pay it to another card (or the default) and retry, or cancel the loan.

The timeline is the API's own ``GET /v1/loans/{id}/payouts`` view (``payments.views.payout_views``: the same
events, status texts and masked card), read in the page's language. Retrying is ``POST …/payout-retry``'s
service (step-up, an idempotency key made with the form): it pays the default card, so a card chosen on
the form is made the default first, as the API's guide tells its clients to. Cancelling is ``POST …/cancel``'s.

While the bank has the money in hand the page marks its timeline ``data-poll``: app.js fetches the page
again every few seconds and swaps the timeline in, so the borrower sees the result arrive; without
JavaScript a reload shows the same.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from miaodai.core.errors import DomainError
from miaodai.core.fields import RowId, RowIdForm
from miaodai.identity.sessions import AuthContext
from miaodai.loans import loan_service
from miaodai.loans.errors import LoanErrors
from miaodai.loans.states import LoanStatus
from miaodai.payments import methods
from miaodai.payments.errors import PaymentErrors
from miaodai.payments.views import PayoutView, payout_views
from miaodai.web import page_words
from miaodai.web.core import PREFIX, WebBorrower, WebContainer, csrf_protect, now, redirect, render
from miaodai.web.draw import Key, new_key
from miaodai.web.methods import default_method, my_methods
from miaodai.web.stepup import WebStepUp

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)

# A payout still at the bank after this long is shown as delayed (the sandbox pays in 2 s, banks in minutes).
DELAYED_AFTER = timedelta(minutes=5)
POLL_SECONDS = 3
PAID = (LoanStatus.ACTIVE, LoanStatus.OVERDUE, LoanStatus.PAID_OFF, LoanStatus.WRITTEN_OFF)


def _(message: str) -> str:
    """Marks an English message id for the catalogs (extracted like the templates' ``_``)."""
    return message


# The app's words on this page where the catalog's speak to API clients (more for any page: web/page_words.py).
PAGE_WORDS = page_words.register(__name__, {
    LoanErrors.ILLEGAL_TRANSITION.code: (None, _("Where the loan's money is now is shown below.")),
    PaymentErrors.METHOD_NOT_FOUND.code: (None, _("Choose one of your cards or wallets below.")),
})

# The headline while the money moves, naming where it goes (the attempt's account_kind).
MOVING_TITLES = {"bank_card": _("The bank is paying it out"), "alipay": _("Paying it into your Alipay account"),
                 "wechat_pay": _("Paying it into your WeChat Pay balance")}


def stage(status: LoanStatus, latest: PayoutView | None) -> str:
    """Where the loan's money is, in the page's words: ``unsigned`` (not signed yet), ``moving`` (at the
    bank), ``paid``, ``failed`` (the last attempt failed and the loan waits for the borrower), ``cancelled``."""
    if status in PAID:
        return "paid"
    if status is LoanStatus.CANCELLED:
        return "cancelled"
    if status is LoanStatus.REQUESTED:
        return "unsigned"
    if status is LoanStatus.SIGNED and latest is not None and latest.status == "failed":
        return "failed"
    return "moving"


def _sent_at(latest: PayoutView) -> datetime | None:
    """When the attempt went to the bank (or was created, if it has not gone yet)."""
    return next((e.at for e in latest.events if e.event == "sent"), latest.events[0].at if latest.events else None)


def _cancelled(container: WebContainer, auth: AuthContext, loan_id: int) -> bool:
    try:
        with container.db.transaction() as session:
            return loan_service.owned_loan(session, auth.borrower_id, loan_id).status is LoanStatus.CANCELLED
    except DomainError:
        return False


def _payout_page(request: Request, container: WebContainer, auth: AuthContext, loan_id: int, *,
                 error: DomainError | None = None) -> HTMLResponse:
    try:
        with container.db.transaction() as session:
            loan = loan_service.owned_loan(session, auth.borrower_id, loan_id)
        attempts = payout_views(container, auth.borrower_id, loan_id)
    except DomainError as missing:
        return render(request, "draw_missing.html", signed_in=auth, error=missing)
    latest = attempts[-1] if attempts else None
    where = stage(loan.status, latest)
    sent = _sent_at(latest) if latest is not None else None
    delayed = where == "moving" and sent is not None and now(request) - sent >= DELAYED_AFTER
    views = my_methods(container, auth)
    failed_card = latest.card.id if latest is not None and latest.card is not None else None
    # Offer another card than the one that failed, the default among them first.
    others = [m for m in views if m.id != failed_card]
    suggested = default_method(others) or default_method(views)
    return render(request, "payout.html", signed_in=auth, error=error, loan=loan, attempts=attempts, stage=where,
                  delayed=delayed, moving_title=MOVING_TITLES[latest.account_kind if latest else "bank_card"],
                  methods=views, failed_card=failed_card,
                  suggested=suggested.id if suggested else None,
                  request_key=new_key("retry"), poll=POLL_SECONDS if where == "moving" else None)


@router.get("/loans/{loan_id}/payout", response_class=HTMLResponse)
def payout_page(request: Request, loan_id: RowId, container: WebContainer, auth: WebBorrower) -> HTMLResponse:
    return _payout_page(request, container, auth, loan_id)


@router.post("/loans/{loan_id}/payout/retry", response_class=HTMLResponse)
def retry(request: Request, loan_id: RowId, container: WebContainer, auth: WebStepUp,
          method_id: RowIdForm, request_key: Key) -> Response:
    """Pay the loan out again, to the card chosen (made the default: payouts go to the default)."""
    try:
        current = default_method(my_methods(container, auth))
        if current is None or current.id != method_id:
            methods.set_default(container, auth, method_id)
        loan_service.retry_payout(container, auth, loan_id, request_key=request_key)
    except DomainError as error:
        return _payout_page(request, container, auth, loan_id, error=error)
    loan_service.send_payout(container, loan_id)
    return redirect(request, f"{PREFIX}/loans/{loan_id}/payout")


@router.post("/loans/{loan_id}/cancel", response_class=HTMLResponse)
def cancel(request: Request, loan_id: RowId, container: WebContainer, auth: WebBorrower) -> Response:
    """Withdraw the drawdown before any money has left; the credit returns to the line. A cancel form sent
    twice shows the cancelled loan, not an error about cancelling it again."""
    try:
        loan_service.cancel(container, auth, loan_id)
    except DomainError as error:
        if not _cancelled(container, auth, loan_id):
            return _payout_page(request, container, auth, loan_id, error=error)
    return redirect(request, f"{PREFIX}/loans/{loan_id}/payout")
