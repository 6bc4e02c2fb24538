"""Applying for a credit line 申请额度 in the app, and the decision at once: the line, its grade and rate; or
the reasons in plain words with tips and the date a new application is allowed; or "under review" with what
happens next. A borrower may ask a person to review an automated decline (PIPL art. 24).

The same services as ``POST /v1/credit/applications``, ``GET /v1/credit/applications/{id}`` and ``POST
…/human-review`` (:mod:`miaodai.credit.service`), and the decision as the API shows it
(:func:`miaodai.credit.api.application_view`): the web layer decides nothing. The application is for the
configured default product, as the API's is when it names none.

``/app/credit`` is where the borrower's credit stands: their line if they have one; else their latest
application while it is in review or its decline still holds; else the form (or what must come first).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from miaodai.container import Container
from miaodai.core.errors import DomainError, Errors
from miaodai.core.fields import RowId
from miaodai.credit import service as credit_service
from miaodai.credit.errors import CreditErrors
from miaodai.credit.features import Education, LoanPurpose, Occupation
from miaodai.credit.models import ApplicationStatus, CreditApplication, Decision
from miaodai.credit.reasons import explain
from miaodai.credit.views import application_view, approved_line_apr
from miaodai.identity.consent_errors import ConsentErrors
from miaodai.identity.sessions import AuthContext
from miaodai.loans.disclosure import line_apr_of
from miaodai.web import journey, page_words
from miaodai.web.core import PREFIX, WebBorrower, WebContainer, csrf_protect, redirect, render
from miaodai.web.public import parse_yuan
from miaodai.web.purposes import LOAN_PURPOSES

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)

CREDIT = f"{PREFIX}/credit"
Choice = Annotated[str, Form(max_length=32)]


def _(message: str) -> str:
    """Marks an English message id for the catalogs (extracted like the templates' ``_``)."""
    return message


# The form's choices with their labels, in the order of the service's enums.
OCCUPATIONS = {
    Occupation.EMPLOYEE: _("Company employee"), Occupation.CIVIL_SERVANT: _("Civil servant or public institution"),
    Occupation.SELF_EMPLOYED: _("Self-employed"), Occupation.FREELANCER: _("Freelancer"),
    Occupation.RETIRED: _("Retired"), Occupation.UNEMPLOYED: _("Looking for work"), Occupation.STUDENT: _("Student"),
}
EDUCATIONS = {
    Education.BELOW_HIGH_SCHOOL: _("Below high school"), Education.HIGH_SCHOOL: _("High school or vocational school"),
    Education.ASSOCIATE: _("Associate degree"), Education.BACHELOR: _("Bachelor's degree"),
    Education.POSTGRADUATE: _("Master's degree or higher"),
}
CHOICES = {"occupation": (Occupation, OCCUPATIONS), "education": (Education, EDUCATIONS),
           "loan_purpose": (LoanPurpose, LOAN_PURPOSES)}

# The app's words on these pages where the catalog's speak to API clients (more for any page: web/page_words.py).
PAGE_WORDS = page_words.register(__name__, {
    Errors.VALIDATION_FAILED.code: (_("Please answer every question on the form."),
                                    _("Choose one of the options offered for each.")),
    CreditErrors.APPLICATION_NOT_FOUND.code: (None, _("Your credit line or latest application is on this page.")),
    CreditErrors.REVIEW_NOT_APPLICABLE.code: (None, _("The application's state is shown below.")),
    ConsentErrors.REQUIRED.code: (None, _("Read and agree to them on the consents page, then apply again.")),
})


def _choice(field: str, value: str) -> Any:
    enum, _labels = CHOICES[field]
    try:
        return enum(value)
    except ValueError:
        raise DomainError(Errors.VALIDATION_FAILED, params={"fields": field}) from None


def _income_fen(text: str) -> int:
    try:
        return parse_yuan(text, "income")
    except DomainError:
        raise DomainError(CreditErrors.INCOME_INVALID, params={
            "max_yuan": credit_service.MAX_MONTHLY_INCOME_FEN // 100}) from None


# -- pages ---------------------------------------------------------------------------------------------------


def _standing_page(request: Request, container: Container, auth: AuthContext, *,
                   form: dict[str, str] | None = None, error: DomainError | None = None) -> HTMLResponse:
    """Where the borrower's credit stands: their line; else an application in review or declined for now;
    else the form (or what must come first)."""
    progress = journey.progress(container, auth)
    if progress.line is None and progress.application is not None and (progress.in_review or progress.declined_until):
        return _decision_page(request, container, auth, progress.application, error=error)
    line = progress.line
    return render(request, "credit.html", signed_in=auth, progress=progress, line=line,
                  **(_disclosure(container, line.product_id, line.annual_rate) if line else {}),
                  form=form or {"income": "", "occupation": "", "education": "", "loan_purpose": ""},
                  choices={field: list(labels.items()) for field, (_enum, labels) in CHOICES.items()},
                  step_titles=journey.STEP_TITLES, error=error)


def _disclosure(container: Container, product: int, annual_rate: Decimal) -> dict[str, Any]:
    """What a line's figures show of its price: the all-in APR at the line's default terms (first and largest)
    and the product's service fee (beside the nominal rate) — cached per product terms and rate."""
    return {"disclosed": line_apr_of(container, product, annual_rate),
            "fee_rate": container.product_terms.spec(container, product).monthly_fee_rate}


def _decision_page(request: Request, container: Container, auth: AuthContext, row: CreditApplication, *,
                   error: DomainError | None = None) -> HTMLResponse:
    """One application's decision as ``GET /v1/credit/applications/{id}`` tells it, the line's APR first."""
    view = application_view(row, approved_line_apr(container, row, row.product_id))
    disclosure = _disclosure(container, row.product_id, view.line.annual_rate) if view.line else {}
    reviewed_decline = row.review_outcome == "decline"  # a person looked (referred, or asked for) and said no
    reasons = [explain("CREDIT_HUMAN_REVIEW_DECLINED"), *view.reasons] if reviewed_decline else view.reasons
    return render(
        request, "credit_decision.html", signed_in=auth, view=view, reasons=reasons,
        # An automated decline no person has looked at yet: the one the service lets the borrower send for review.
        can_ask_review=row.decision is Decision.DECLINED and row.status is ApplicationStatus.DECLINED
        and row.review_outcome is None,
        review_requested=row.decision is Decision.DECLINED and row.status is ApplicationStatus.IN_REVIEW,
        error=error, **disclosure)


@router.get("/credit", response_class=HTMLResponse)
def credit_page(request: Request, container: WebContainer, auth: WebBorrower) -> HTMLResponse:
    return _standing_page(request, container, auth)


@router.post("/credit")
def apply(request: Request, container: WebContainer, auth: WebBorrower, income: Annotated[str, Form(max_length=32)],
          occupation: Choice = "", education: Choice = "", loan_purpose: Choice = "") -> Response:
    """Apply (``POST /v1/credit/applications``): decided in this request, shown on the application's page."""
    form = {"income": income, "occupation": occupation, "education": education, "loan_purpose": loan_purpose}
    try:
        row = credit_service.apply(container, auth, credit_service.ApplicationRequest(
            monthly_income_fen=_income_fen(income), occupation=_choice("occupation", occupation),
            education=_choice("education", education), loan_purpose=_choice("loan_purpose", loan_purpose),
            product_code=container.settings.credit_default_product))
    except DomainError as error:
        return _standing_page(request, container, auth, form=form, error=error)
    return redirect(request, f"{CREDIT}/applications/{row.id}")


@router.get("/credit/applications/{application_id}", response_class=HTMLResponse)
def application_page(request: Request, application_id: RowId, container: WebContainer, auth: WebBorrower,
                     ) -> HTMLResponse:
    try:
        row = credit_service.get_application(container, auth.borrower_id, application_id)
    except DomainError as error:
        return _standing_page(request, container, auth, error=error)
    return _decision_page(request, container, auth, row)


@router.post("/credit/applications/{application_id}/human-review")
def human_review(request: Request, application_id: RowId, container: WebContainer, auth: WebBorrower,
                 note: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Ask a person to review an automated decline (``POST …/human-review``, PIPL art. 24)."""
    try:
        credit_service.request_human_review(container, auth, application_id, note.strip())
    except DomainError as error:
        try:
            row = credit_service.get_application(container, auth.borrower_id, application_id)
        except DomainError:
            return _standing_page(request, container, auth, error=error)
        return _decision_page(request, container, auth, row, error=error)
    return redirect(request, f"{CREDIT}/applications/{application_id}")
