"""The customer desk (客户视图): find a borrower, read their whole picture masked, reveal a field with a reason.

The pages call :mod:`miaodai.backoffice`'s services as ``/v1/staff/customers`` does (docs/console.md, "Customer
360"): :func:`search.search`, :func:`customer360.customer360` and :func:`reveal.reveal`. Nothing here decides
who may see what: the route guards check ``borrower.read`` / ``borrower.reveal_pii`` and the reveal service
checks the permission, the reason and the per-staff caps again; a refusal is shown on the page in the service's
words.

A revealed value is in one answer only: the borrower's page rendered in reply to the reveal's POST (never a
redirect, so never in a URL; never in a cookie), marked ``no-store`` (``core.finish``) and ``Pragma: no-cache``.
Opening the page again shows the mask.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from miaodai.backoffice import customer360 as c360
from miaodai.backoffice import reveal as reveals
from miaodai.backoffice import search as searching
from miaodai.core.errors import DomainError, Errors
from miaodai.core.fields import RowId
from miaodai.identity import rbac
from miaodai.identity.staff_service import StaffContext
from miaodai.web.console.core import (
    PREFIX,
    _,
    container_of,
    csrf_protect,
    gettext,
    locale_of,
    menu_item,
    redirect,
    render,
    require,
)

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)
menu_item(f"{PREFIX}/customers", _("Customers"), "borrower.read")

Reader = Annotated[StaffContext, Depends(require("borrower.read"))]
Revealer = Annotated[StaffContext, Depends(require("borrower.reveal_pii"))]
Text = Annotated[str, Form(max_length=2000)]

PREVIEW_ROWS = 10  # a longer list shows its first rows and folds the rest into a <details>

KIND_LABELS = {
    searching.SearchKind.PHONE: _("Phone number"), searching.SearchKind.ID_NUMBER: _("ID number"),
    searching.SearchKind.NAME: _("Full name"), searching.SearchKind.LOAN: _("Loan number"),
    searching.SearchKind.CONTRACT: _("Contract number"), searching.SearchKind.CARD: _("Card (first 6 + last 4)"),
}
# What each kind looks like: shapes, never a real customer's values (the demo borrowers are customers too).
KIND_HINTS = {
    searching.SearchKind.PHONE: "+86 138 0000 0000", searching.SearchKind.ID_NUMBER: _("all 18 characters"),
    searching.SearchKind.NAME: _("the whole name"), searching.SearchKind.LOAN: "MD20261207A1B2C3D4",
    searching.SearchKind.CONTRACT: "MD20261207A1B2C3D4", searching.SearchKind.CARD: "622202****1007",
}

# The page's sections, in order: the in-page table of contents.
SECTIONS = (
    ("identity", _("Identity and KYC")), ("consents", _("Consents")), ("devices", _("Devices and sessions")),
    ("applications", _("Credit applications")), ("lines", _("Credit lines")), ("loans", _("Loans")),
    ("methods", _("Payment methods")), ("orders", _("Payout and collection orders")),
    ("messages", _("Messages")), ("audit", _("Audit trail")), ("actions", _("Servicing actions")),
)

# What stored values are called on the page; a value not listed shows as it is stored.
WORDS: dict[str, dict[str, str]] = {
    "borrower": {"active": _("Active account"), "closed": _("Closed account")},
    "kyc": {"none": _("Not verified"), "carrier_verified": _("Carrier check passed, face to do"),
            "verified": _("Verified")},
    "check": {"identity": _("Name, ID and phone at the carrier"), "face": _("Face liveness"),
              "passed": _("Passed")},
    "gender": {"M": _("Male"), "F": _("Female"), "male": _("Male"), "female": _("Female")},
    "session": {"active": _("Active"), "expired": _("Expired"), "revoked": _("Signed out")},
    "decision": {"approved": _("Approved"), "declined": _("Declined"), "review": _("Sent to review"),
                 "in_review": _("In review")},
    "line": {"active": _("Active"), "frozen": _("Frozen"), "closed": _("Closed"), "pending": _("Pending"),
             "approved": _("Approved"), "rejected": _("Rejected")},
    "loan": {"requested": _("Requested"), "signed": _("Signed"), "disbursing": _("Paying out"),
             "active": _("Active"), "overdue": _("Overdue"), "paid_off": _("Paid off"),
             "cancelled": _("Cancelled"), "written_off": _("Written off")},
    "installment": {"paid": _("Paid"), "overdue": _("Overdue"), "due": _("Due today"), "pending": _("Not due yet")},
    "method": {"bank_card": _("Bank card"), "alipay": _("Alipay"), "wechat_pay": _("WeChat Pay"),
               "active": _("Bound"), "unbound": _("Unbound")},
    "order": {"payout": _("Payout"), "collection": _("Collection"), "disbursement": _("Loan payout"),
              "repayment": _("Repayment"), "auto_debit": _("Auto-debit"), "refund": _("Refund"),
              "created": _("Created"), "processing": _("Processing"), "succeeded": _("Succeeded"),
              "failed": _("Failed")},
    "message": {"code.login": _("Login code"), "code.step_up": _("Step-up code"),
                "code.contract_sign": _("Contract signing code"), "sms": _("SMS"), "voice": _("Voice call"),
                "pending": _("Pending"), "sent": _("Sent"), "failed": _("Not delivered"), "used": _("Used"),
                "queued": _("Queued")},
}

REVEALED_NOTICE = _("Shown once: it is not kept in this browser. The reveal is in the audit trail below.")


def _reason_kinds(locale: str) -> list[tuple[str, str]]:
    index = 0 if locale == "zh_CN" else 1
    return [(kind.value, words[index]) for kind, words in reveals.REASON_WORDS.items()]


def _field_words(locale: str) -> dict[str, str]:
    index = 0 if locale == "zh_CN" else 1
    return {field.value: words[index] for field, words in reveals.FIELD_WORDS.items()}


@router.get("/customers", response_class=HTMLResponse)
def search_form(request: Request, staff: Reader) -> HTMLResponse:
    """The search form (kind + text)."""
    return _search_page(request, staff, kind=searching.SearchKind.PHONE.value, q="")


@router.post("/customers", response_class=HTMLResponse)
def find(request: Request, staff: Reader, kind: Text = "", q: Text = "") -> Response:
    """The masked hits; one hit opens that borrower's page. A post, so what was typed (a phone, an ID number, a
    name) stays out of URLs, the browser's history and access logs."""
    found: searching.SearchResult | None = None
    error: DomainError | None = None
    if not q.strip():
        return _search_page(request, staff, kind=kind, q="")
    try:
        if kind not in searching.SearchKind._value2member_map_:
            raise DomainError(Errors.VALIDATION_FAILED, params={"fields": "kind"})
        found = searching.search(container_of(request), staff, q[:searching.MAX_QUERY_CHARS],
                                 searching.SearchKind(kind))
    except DomainError as refused:
        error = refused
    if found is not None and len(found.hits) == 1:
        return redirect(request, f"{PREFIX}/customers/{found.hits[0].borrower_id}")
    return _search_page(request, staff, kind=kind, q=q, found=found, error=error)


def _search_page(request: Request, staff: StaffContext, *, kind: str, q: str,
                 found: searching.SearchResult | None = None, error: DomainError | None = None) -> HTMLResponse:
    chosen = kind if kind in searching.SearchKind._value2member_map_ else searching.SearchKind.PHONE.value
    return render(request, "console/customers.html", staff=staff, error=error, found=found, kind=chosen,
                  q=q[:searching.MAX_QUERY_CHARS], kinds=KIND_LABELS, hints=KIND_HINTS, words=_words(request))


def _words(request: Request) -> Any:
    def word(group: str, value: object) -> str:
        text = str(getattr(value, "value", value))
        label = WORDS.get(group, {}).get(text)
        return gettext(request, label) if label else text
    return word


def _page(request: Request, staff: StaffContext, borrower_id: int, *, error: DomainError | None = None,
          revealed: reveals.Revealed | None = None, form: dict[str, str] | None = None) -> HTMLResponse:
    """The borrower's page, read afresh (after a reveal its audit entry is in the trail)."""
    locale = locale_of(request)
    try:
        picture = c360.customer360(container_of(request), borrower_id, viewer=staff, via="console")
    except DomainError as missing:
        return render(request, "console/customer_missing.html", staff=staff, error=missing)
    response = render(
        request, "console/customer.html", staff=staff, error=error, c=picture, sections=SECTIONS,
        words=_words(request), may_reveal=rbac.is_allowed(staff.roles, rbac.Permission.BORROWER_REVEAL_PII.value),
        reason_kinds=_reason_kinds(locale), field_words=_field_words(locale), revealed=revealed,
        form=form or {}, min_reason=reveals.MIN_REASON_CHARS, max_reason=reveals.MAX_REASON_CHARS,
        preview=PREVIEW_ROWS, notice=gettext(request, REVEALED_NOTICE) if revealed else None,
    )
    if revealed is not None or form:
        response.headers["Pragma"] = "no-cache"
    return response


@router.get("/customers/{borrower_id}", response_class=HTMLResponse)
def customer(request: Request, borrower_id: RowId, staff: Reader) -> HTMLResponse:
    return _page(request, staff, borrower_id)


@router.post("/customers/{borrower_id}/reveal", response_class=HTMLResponse)
def reveal(request: Request, borrower_id: RowId, staff: Revealer, field: Text = "", reason_kind: Text = "",
           reason: Text = "", payment_method_id: Text = "") -> HTMLResponse:
    """Reveal one field with a reason: the page again, with the value shown beside its mask (once), or the
    service's refusal above the form it came from, the form kept open."""
    form = {"field": field[:32], "reason_kind": reason_kind[:32], "reason": reason[:reveals.MAX_REASON_CHARS],
            "payment_method_id": payment_method_id[:20]}
    try:
        bad = [name for name, value, allowed in (("field", field, reveals.RevealField._value2member_map_),
                                                  ("reason_kind", reason_kind, reveals.ReasonKind._value2member_map_))
               if value not in allowed]
        method_id = int(payment_method_id) if payment_method_id.isascii() and payment_method_id.isdigit() else None
        if field == reveals.RevealField.CARD_NUMBER.value and method_id is None:
            bad.append("payment_method_id")
        if bad:
            raise DomainError(Errors.VALIDATION_FAILED, params={"fields": ", ".join(bad)})
        shown = reveals.reveal(container_of(request), staff, borrower_id, reveals.RevealField(field),
                               reveals.RevealReason(reveals.ReasonKind(reason_kind), reason),
                               payment_method_id=method_id)
    except DomainError as refused:
        return _page(request, staff, borrower_id, error=refused, form=form)
    return _page(request, staff, borrower_id, revealed=shown)
