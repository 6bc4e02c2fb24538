"""My loans 我的借款 in the app: each loan and its repayment plan, repaying (what is due, a payoff, or a
partial early repayment) from a card or wallet through the payment channel, following the debit, and the
statement.

Every figure comes from what the API answers, by calling the API's own functions: the loan and its
installments as ``GET /v1/loans/{id}`` shows them (:func:`loans.views.loan_view`), the payoff and
prepayment quotes, the statement, and each debit with its steps as ``GET /v1/loans/{id}/repayments`` tells
it. Repaying calls :func:`payments.collections.request_repayment` like ``POST /v1/loans/{id}/repayments``,
with every check and refusal there.

Repaying is idempotent as in the API: the confirm page carries a random key made when it was rendered, so
a confirm tapped twice (or a form sent again on reload) makes one debit and shows it twice. Repaying goes
through a review page first — for a partial early repayment it shows the recomputed plan before the
confirm button; for a payoff, today's quote, which the confirm sends back so a quote that moved since
(interest accrues daily) is refused rather than silently changed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import TypeAdapter, ValidationError

from miaodai.container import Container
from miaodai.core.errors import DomainError
from miaodai.core.fields import RowId
from miaodai.credit.views import line_purposes
from miaodai.identity.sessions import AuthContext
from miaodai.loans import loan_service, views
from miaodai.loans.errors import LoanErrors
from miaodai.loans.models import Loan
from miaodai.loans.repayment_math import PrepaymentMode
from miaodai.loans.repayment_service import Purpose
from miaodai.loans.states import ON_BOOK, LoanStatus
from miaodai.loans.views import Fen, InstallmentLine, LoanView, PrepaymentBody
from miaodai.payments import collections, methods, settlement
from miaodai.payments.errors import PaymentErrors
from miaodai.payments.views import CollectionView, MethodView, loan_collection_views, method_view
from miaodai.web import i18n, page_words
from miaodai.web.core import PREFIX, WebBorrower, WebContainer, csrf_protect, locale_of, redirect, render
from miaodai.web.public import parse_yuan
from miaodai.web.purposes import LOAN_PURPOSES

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)

LOANS = f"{PREFIX}/loans"
# A payout not finished yet (or failed and waiting for another card): its own page follows it.
PAYOUT_PAGE_STATUSES = (LoanStatus.SIGNED, LoanStatus.DISBURSING)
IN_FLIGHT = ("created", "processing")  # a debit still at the bank
REFRESH_SECONDS = 3  # the progress page reloads itself (app.js) while the bank has the debit
UNPAID = ("pending", "due", "overdue")
DUE_NOW = ("due", "overdue")


def _(message: str) -> str:
    """Marks an English message id for the catalogs (extracted like the templates' ``_``)."""
    return message


# The app's words on these pages where the catalog's speak to API clients (more for any page: web/page_words.py).
# code → (message id or None, what-to-do id or None)
PAGE_WORDS = page_words.register(__name__, {
    PaymentErrors.REPAYMENT_AMOUNT_REQUIRED.code: (
        _("Enter how much to repay, in yuan."),
        _("To repay the whole loan choose “Pay off the whole loan today”: the amount is filled in for you.")),
    PaymentErrors.REPAYMENT_MORE_THAN_OWED.code: (
        None, _("Choose “Pay off the whole loan today” instead: we never take more than is owed.")),
    PaymentErrors.PAYOFF_AMOUNT_CHANGED.code: (
        None, _("Review the new amount below and confirm it.")),
    PaymentErrors.METHOD_NOT_FOUND.code: (
        None, _("Choose one of your cards or wallets below.")),
    LoanErrors.LOAN_NOT_FOUND.code: (
        None, _("Choose one of your loans below.")),
    LoanErrors.NOT_REPAYABLE.code: (  # the catalog names the state by its code (requested, paid_off…)
        _("There is nothing to repay on this loan now."), _("Its state is shown below.")),
    LoanErrors.TERMS_INVALID.code: (
        _("Enter the amount in yuan: more than 0, at most two decimals."), _("For example 1000 or 1,000.50.")),
})


# -- reading a loan ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoanCard:
    """A loan as the pages show it: the API's view and what the borrower asks first — what is due now,
    what comes next, how late, what penalty, and what we hold for them."""

    loan: LoanView
    days_past_due: int
    held_fen: int
    due_now_fen: int
    penalty_fen: int
    next: InstallmentLine | None

    @property
    def on_book(self) -> bool:
        return LoanStatus(self.loan.status) in ON_BOOK

    @property
    def payout_page(self) -> bool:
        return LoanStatus(self.loan.status) in PAYOUT_PAGE_STATUSES

    @property
    def contract_page(self) -> bool:
        """Drawn, not signed yet: the contract page (web/draw.py) is where it goes on."""
        return LoanStatus(self.loan.status) is LoanStatus.REQUESTED

    @property
    def next_owed_fen(self) -> int:
        return owed(self.next) if self.next else 0

    @property
    def suggested_fen(self) -> int:
        """What "repay what is due" starts from: what is due now, else the next installment less what we hold
        for it (money paid before a due date is held and applied on that date)."""
        return self.due_now_fen or max(self.next_owed_fen - self.held_fen, 0)


def owed(line: InstallmentLine) -> int:
    return line.total_fen - line.paid_fen


def loan_card(container: Container, loan: Loan) -> LoanCard:
    view = views.loan_view(container, loan)
    unpaid = [i for i in view.installments if i.status in UNPAID]
    return LoanCard(
        loan=view, days_past_due=loan.days_past_due, held_fen=loan.overpayment_fen,
        due_now_fen=sum(owed(i) for i in unpaid if i.status in DUE_NOW),
        penalty_fen=sum(i.penalty_fen for i in unpaid if i.status == "overdue"),
        next=unpaid[0] if unpaid else None)


def _own_loan(container: Container, auth: AuthContext, loan_id: int) -> Loan:
    with container.db.transaction() as session:
        return loan_service.owned_loan(session, auth.borrower_id, loan_id)


def _debits(container: Container, auth: AuthContext, loan_id: int) -> list[CollectionView]:
    """The loan's debits and refunds, newest first, as ``GET /v1/loans/{id}/repayments`` shows them."""
    return loan_collection_views(container, auth.borrower_id, loan_id)


def _methods(container: Container, auth: AuthContext) -> list[MethodView]:
    return [method_view(m) for m in methods.borrower_methods(container, auth.borrower_id)]


def _list_page(request: Request, container: Container, auth: AuthContext,
               error: DomainError | None = None) -> HTMLResponse:
    cards = [loan_card(container, loan) for loan in loan_service.borrower_loans(container, auth.borrower_id)]
    purposes = {line: LOAN_PURPOSES[purpose] for line, purpose in line_purposes(container, auth.borrower_id).items()}
    return render(request, "loans.html", signed_in=auth, cards=cards, purposes=purposes, error=error)


@router.get("/loans", response_class=HTMLResponse)
def my_loans(request: Request, container: WebContainer, auth: WebBorrower) -> HTMLResponse:
    return _list_page(request, container, auth)


@router.get("/loans/{loan_id:int}", response_class=HTMLResponse)
def one_loan(request: Request, loan_id: RowId, container: WebContainer, auth: WebBorrower) -> HTMLResponse:
    try:
        loan = _own_loan(container, auth, loan_id)
    except DomainError as error:
        return _list_page(request, container, auth, error)
    debits = _debits(container, auth, loan_id)
    return render(request, "loan.html", signed_in=auth, card=loan_card(container, loan), debits=debits[:5],
                  in_flight=_in_flight(debits))


def _in_flight(debits: list[CollectionView]) -> CollectionView | None:
    return next((d for d in debits if d.purpose != settlement.REFUND and d.status in IN_FLIGHT), None)


@router.get("/loans/{loan_id:int}/statement", response_class=HTMLResponse)
def statement(request: Request, loan_id: RowId, container: WebContainer, auth: WebBorrower) -> HTMLResponse:
    try:
        loan = _own_loan(container, auth, loan_id)
        lines = views.statement_view(container, auth.borrower_id, loan_id)
    except DomainError as error:
        return _list_page(request, container, auth, error)
    return render(request, "loan_statement.html", signed_in=auth, loan=loan, lines=lines,
                  zh=locale_of(request) == "zh_CN")


# -- repaying ---------------------------------------------------------------------------------------------


def amount_in_fen(text: str) -> int:
    """Typed yuan as fen, within the bounds the API's ``amount_fen`` accepts (more than 0)."""
    fen = parse_yuan(text, "amount")
    try:
        return FEN.validate_python(fen)
    except ValidationError:
        raise DomainError(LoanErrors.TERMS_INVALID, params={
            "field": "amount", "_reason_en": "is out of range", "_reason_zh": "超出范围"}) from None


FEN = TypeAdapter(Fen)


@dataclass(frozen=True)
class RepayForm:
    """What the borrower chose, as the form sends it (text), so a refused choice is shown again as typed."""

    what: str = Purpose.DUE.value
    amount: str | None = None  # None: not given (the page suggests what is due)
    mode: str = PrepaymentMode.SHORTER_TERM.value
    method: str | None = None  # None: not given (the page picks the default card or wallet)

    def purpose(self) -> Purpose:
        return Purpose(self.what) if self.what in Purpose.__members__.values() else Purpose.DUE

    def prepayment_mode(self) -> PrepaymentMode:
        return PrepaymentMode(self.mode) if self.mode in PrepaymentMode.__members__.values() \
            else PrepaymentMode.SHORTER_TERM

    def amount_fen(self) -> int | None:
        """None for a payoff (its amount is the quote) and for an empty field (the service asks for it)."""
        if self.purpose() is Purpose.PAYOFF or not (self.amount or "").strip():
            return None
        return amount_in_fen(self.amount or "")

    def method_id(self) -> int | None:
        return int(self.method) if self.method and self.method.isdigit() else None


def _default_method(choices: list[MethodView]) -> str:
    """The default card or wallet if repayments can be taken from it, else the first that allows it."""
    usable = [m for m in choices if m.auto_debit]
    chosen = next((m for m in usable if m.is_default), usable[0] if usable else None)
    return str(chosen.id) if chosen else ""


def _repay_page(request: Request, container: Container, auth: AuthContext, loan: Loan, form: RepayForm,
                error: DomainError | None = None) -> HTMLResponse:
    card = loan_card(container, loan)
    choices = _methods(container, auth)
    if form.amount is None:
        form = replace(form, amount=i18n.yuan_plain(card.suggested_fen) if card.suggested_fen else "")
    if form.method is None:
        form = replace(form, method=_default_method(choices))
    payoff = views.payoff_view(container, auth.borrower_id, loan.id) if card.on_book else None
    return render(request, "loan_repay.html", signed_in=auth, card=card, form=form, choices=choices, payoff=payoff,
                  modes=list(PrepaymentMode), in_flight=_in_flight(_debits(container, auth, loan.id)),
                  error=error)


def _form(what: str, amount: str | None, mode: str, method: str | None) -> RepayForm:
    return RepayForm(what=what if what in Purpose.__members__.values() else Purpose.DUE.value, amount=amount,
                     mode=mode or PrepaymentMode.SHORTER_TERM.value, method=method or None)


@router.get("/loans/{loan_id:int}/repay", response_class=HTMLResponse)
def repay_page(request: Request, loan_id: RowId, container: WebContainer, auth: WebBorrower, what: str = "",
               amount: str | None = None, mode: str = "", method: str = "") -> HTMLResponse:
    """Choose what to repay and from where; ``what`` (and the rest, coming back from the review) prefill it."""
    try:
        loan = _own_loan(container, auth, loan_id)
        views.repayable(loan)
    except DomainError as error:
        return _list_page(request, container, auth, error)
    return _repay_page(request, container, auth, loan, _form(what, amount, mode, method))


@router.get("/loans/{loan_id:int}/repay/review", response_class=HTMLResponse)
def review(request: Request, loan_id: RowId, container: WebContainer, auth: WebBorrower, what: str = "due",
           amount: str = "", mode: str = "", method: str = "") -> HTMLResponse:
    """What will be taken, from where, and (a partial early repayment) the plan after it — then confirm."""
    form = _form(what, amount, mode, method)
    try:
        loan = _own_loan(container, auth, loan_id)
        views.repayable(loan)
    except DomainError as error:
        return _list_page(request, container, auth, error)
    try:
        purpose, amount_fen = form.purpose(), form.amount_fen()
        chosen = _chosen_method(_methods(container, auth), form.method_id())
        payoff = views.payoff_view(container, auth.borrower_id, loan_id)
        plan = None
        if purpose is Purpose.PAYOFF:
            amount_fen = payoff.total_fen
        elif amount_fen is None:
            raise DomainError(PaymentErrors.REPAYMENT_AMOUNT_REQUIRED)
        elif purpose is Purpose.PREPAYMENT:
            plan = views.prepayment_view(container, auth.borrower_id, loan_id,
                                         PrepaymentBody(amount_fen=amount_fen, mode=form.prepayment_mode()))
    except DomainError as error:
        return _repay_page(request, container, auth, loan, form, error)
    back = {"what": purpose.value, "mode": form.mode, "method": chosen.id}
    back |= {"amount": form.amount} if form.amount else {}
    return render(request, "loan_review.html", signed_in=auth, card=loan_card(container, loan), form=form,
                  purpose=purpose.value, amount_fen=amount_fen, method=chosen, payoff=payoff, plan=plan,
                  key=f"web-{secrets.token_urlsafe(18)}", change_url=f"{LOANS}/{loan_id}/repay?{urlencode(back)}")


def _chosen_method(choices: list[MethodView], method_id: int | None) -> MethodView:
    """The card or wallet picked on the form, among the borrower's own (the service checks it again)."""
    chosen = next((m for m in choices if m.id == method_id), None)
    if chosen is None:
        raise DomainError(PaymentErrors.METHOD_NOT_FOUND)
    return chosen


@router.post("/loans/{loan_id:int}/repay")
def confirm(request: Request, loan_id: RowId, container: WebContainer, auth: WebBorrower,
            key: Annotated[str, Form()] = "", what: Annotated[str, Form()] = "", method: Annotated[str, Form()] = "",
            amount: Annotated[str, Form()] = "", mode: Annotated[str, Form()] = "") -> Response:
    """Send the debit (``POST /v1/loans/{id}/repayments``); the same key again finds the same debit."""
    form = _form(what, amount, mode, method)
    try:
        loan = _own_loan(container, auth, loan_id)
    except DomainError as error:
        return _list_page(request, container, auth, error)
    if len(key) < 16 or what not in Purpose.__members__.values():  # not a form the review page made: start over
        return redirect(request, f"{LOANS}/{loan_id}/repay")
    try:
        purpose = form.purpose()
        # A payoff sends back the quote it confirmed: the service refuses it if today's differs.
        amount_fen = amount_in_fen(amount) if purpose is Purpose.PAYOFF else form.amount_fen()
        order = collections.request_repayment(
            container, auth.borrower_id, loan_id, key=key[:64], purpose=purpose, amount_fen=amount_fen,
            mode=form.prepayment_mode() if purpose is Purpose.PREPAYMENT else None, method_id=form.method_id())
    except DomainError as error:
        loan = _own_loan(container, auth, loan_id)  # as it is now: paid off meanwhile, the list says so
        if LoanStatus(loan.status) not in ON_BOOK:
            return _list_page(request, container, auth, error)
        return _repay_page(request, container, auth, loan, form, error)
    return redirect(request, f"{LOANS}/{loan_id}/repayments/{order.order_no}")


@router.get("/loans/{loan_id:int}/repayments/{order_no}", response_class=HTMLResponse)
def progress(request: Request, loan_id: RowId, order_no: str, container: WebContainer,
             auth: WebBorrower) -> HTMLResponse:
    """One debit step by step with times: processing, then repaid, or failed with the bank's reason and
    what to do. While the bank has it the page refreshes itself (a link does the same without JS)."""
    try:
        loan = _own_loan(container, auth, loan_id)
        debit = next((d for d in _debits(container, auth, loan_id) if d.order_no == order_no), None)
        if debit is None:
            raise DomainError(LoanErrors.REPAYMENT_NOT_FOUND, params={"repayment_id": order_no[:40]})
    except DomainError as error:
        return _list_page(request, container, auth, error)
    failure_code = next((e.code for e in reversed(debit.events) if e.channel_status == "failed"), None)
    return render(request, "loan_progress.html", signed_in=auth, card=loan_card(container, loan), debit=debit,
                  failure_code=failure_code, zh=locale_of(request) == "zh_CN",
                  refresh=REFRESH_SECONDS if debit.status in IN_FLIGHT else None)
