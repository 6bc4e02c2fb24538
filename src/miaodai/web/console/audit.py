"""The audit viewer (审计日志): the audit chain searched by actor, borrower, action prefix and time, newest first in
keyset pages; one entry with its hashes; the whole chain verified on a button, naming the first bad entry; and
the filtered entries exported as CSV or JSON lines, streamed, the export itself audited.

The queries are :mod:`miaodai.identity.staff_audit`'s (an index per filter, migration 0019; bench/audit.py
measures them on a 1,000,000-entry log); the walk is :func:`miaodai.core.audit.verify_chain`, which reads in
short chunks and holds no lock. A borrower's entries are the ones about the borrower or anything of theirs —
loans (their payout and collection orders are recorded on the loan), credit applications and review cases,
lines and line proposals, cards, card and wallet bindings, the phone number's login codes — or written by them.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy import select

from miaodai.core.audit import AuditEntry, ChainFinding
from miaodai.core.clock import BUSINESS_TZ
from miaodai.core.db import Database
from miaodai.core.errors import DomainError, Errors
from miaodai.core.fields import ROW_ID_MAX, RowId
from miaodai.credit.models import CreditApplication, ReviewCase
from miaodai.identity.models import Borrower
from miaodai.identity.staff_audit import (
    AuditFilter,
    audit_entry,
    audit_search,
    entry_details,
    export_recorded,
    staff_names,
    verify_recorded,
)
from miaodai.identity.staff_service import StaffContext
from miaodai.loans.models import CreditLine, CreditLineProposal, Loan
from miaodai.payments.models import CardBinding, PaymentMethod, WalletBinding
from miaodai.web.console.core import (
    PREFIX,
    _,
    container_of,
    csrf_protect,
    finish,
    gettext,
    menu_item,
    render,
    require,
)

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)
menu_item(f"{PREFIX}/audit", _("Audit log"), "audit.read")

Auditor = Annotated[StaffContext, Depends(require("audit.read"))]
TextQuery = Annotated[str, Query(max_length=64)]
FormField = Annotated[str, Form(max_length=64)]

PAGE = 50
TIME_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")
EXPORT_COLUMNS = ("id", "seq", "occurred_at", "actor", "action", "subject", "body", "prev_hash", "entry_hash",
                  "sealed_at")

# What a chain finding means, by how verify_chain words it (the finding itself is shown too, as it reads).
PROBLEMS = (
    ("expected chain position", _("An entry is missing or was moved in the chain.")),
    ("link to the previous entry", _("The link to the previous entry is broken: an entry was removed, inserted or "
                                     "reordered.")),
    ("hash does not match", _("The entry's hash does not match its content: the entry was edited.")),
    ("body is not valid JSON", _("The entry's sealed body was edited.")),
    ("columns disagree", _("The entry's columns disagree with its sealed body: the entry was edited.")),
    ("timestamp disagrees", _("The entry's time disagrees with its sealed body: the entry was edited.")),
    ("chain head says", _("The chain head and the table disagree: entries vanished from or joined the end.")),
)


# -- the filters ---------------------------------------------------------------------------------------------


def _invalid(request: Request, field: str) -> DomainError:
    return DomainError(Errors.VALIDATION_FAILED, params={"fields": gettext(request, field)})


def _moment(request: Request, value: str, field: str) -> datetime | None:
    """A time typed as Beijing time (what the page shows) → aware UTC; '' → None."""
    value = value.strip()
    if not value:
        return None
    for pattern in TIME_FORMATS:
        try:
            return datetime.strptime(value, pattern).replace(tzinfo=BUSINESS_TZ)
        except ValueError:
            continue
    raise _invalid(request, field)


def borrower_subjects(db: Database, borrower_id: int) -> tuple[str, ...]:
    """Every audit subject of a borrower: the borrower and each thing of theirs an audit entry is written about."""
    owned: list[tuple[str, Any]] = [
        ("loan", select(Loan.id).where(Loan.borrower_id == borrower_id)),
        ("credit_application", select(CreditApplication.id).where(CreditApplication.borrower_id == borrower_id)),
        ("credit_review_case", select(ReviewCase.id).join(CreditApplication,
                                                           ReviewCase.application_id == CreditApplication.id)
         .where(CreditApplication.borrower_id == borrower_id)),
        ("credit_line", select(CreditLine.id).where(CreditLine.borrower_id == borrower_id)),
        ("credit_line_proposal", select(CreditLineProposal.id).where(CreditLineProposal.borrower_id == borrower_id)),
        ("payment_method", select(PaymentMethod.id).where(PaymentMethod.borrower_id == borrower_id)),
        ("card_binding", select(CardBinding.id).where(CardBinding.borrower_id == borrower_id)),
        ("wallet_binding", select(WalletBinding.id).where(WalletBinding.borrower_id == borrower_id)),
    ]
    subjects = [f"borrower:{borrower_id}"]
    with db.autocommit() as session:
        for kind, ids in owned:
            subjects += [f"{kind}:{row_id}" for row_id in session.execute(ids).scalars()]
        phone_bidx = session.execute(select(Borrower.phone_bidx).where(Borrower.id == borrower_id)).scalar()
    if phone_bidx:
        subjects.append(f"phone:{phone_bidx[:16]}")  # the login codes sent to their number (login_service)
    return tuple(subjects)


class Search:
    """The filters as typed (to show them back and carry them to the next page and the export) and as a query."""

    def __init__(self, request: Request, *, actor: str = "", borrower: str = "", action: str = "", since: str = "",
                 until: str = "") -> None:
        self.typed = {"actor": actor.strip(), "borrower": borrower.strip(), "action": action.strip(),
                      "since": since.strip(), "until": until.strip()}
        self.borrower_id: int | None = None
        if self.typed["borrower"]:
            number = self.typed["borrower"].removeprefix("borrower:")
            if not number.isdigit() or not 1 <= int(number) <= ROW_ID_MAX:
                raise _invalid(request, _("borrower id"))
            self.borrower_id = int(number)
        self.since = _moment(request, self.typed["since"], _("from"))
        self.until = _moment(request, self.typed["until"], _("until"))

    def where(self, db: Database) -> AuditFilter:
        subjects = borrower_subjects(db, self.borrower_id) if self.borrower_id is not None else None
        return AuditFilter(
            actor=self.typed["actor"] or None, subjects=subjects,
            subjects_actor=f"borrower:{self.borrower_id}" if self.borrower_id is not None else None,
            action_prefix=self.typed["action"] or None, since=self.since, until=self.until)

    def query(self, **more: Any) -> str:
        return urlencode({**{k: v for k, v in self.typed.items() if v}, **more})

    @property
    def any(self) -> bool:
        return any(self.typed.values())


def _search_or_error(request: Request, **typed: str) -> tuple[Search, DomainError | None]:
    try:
        return Search(request, **typed), None
    except DomainError as error:
        return Search(request), error


# -- pages ---------------------------------------------------------------------------------------------------


def _rows(entries: list[AuditEntry]) -> list[dict[str, Any]]:
    return [{"entry": e, "details": entry_details(e)} for e in entries]


@router.get("/audit", response_class=HTMLResponse)
def audit_log(request: Request, staff: Auditor, actor: TextQuery = "", borrower: TextQuery = "", action: TextQuery = "",
              since: TextQuery = "", until: TextQuery = "",
              before: Annotated[int | None, Query(ge=1, le=ROW_ID_MAX)] = None) -> HTMLResponse:
    search, error = _search_or_error(request, actor=actor, borrower=borrower, action=action, since=since,
                                     until=until)
    if error is not None:
        return render(request, "console/audit.html", staff=staff, error=error, search=search, rows=[], next_url=None,
                      typed={"actor": actor, "borrower": borrower, "action": action, "since": since, "until": until})
    db = container_of(request).db
    page = audit_search(db, search.where(db), limit=PAGE, before_id=before)
    next_url = f"{PREFIX}/audit?{search.query(before=page.next_before_id)}" if page.next_before_id else None
    first_url = f"{PREFIX}/audit?{search.query()}" if before else None
    return render(request, "console/audit.html", staff=staff, search=search, rows=_rows(page.entries),
                  next_url=next_url, typed=search.typed, first_url=first_url,
                  names=staff_names(db, {e.actor for e in page.entries}))


@router.get("/audit/entries/{entry_id}", response_class=HTMLResponse)
def audit_entry_page(request: Request, staff: Auditor, entry_id: RowId) -> HTMLResponse:
    entry = audit_entry(container_of(request).db, entry_id)
    if entry is None:
        return render(request, "console/audit_entry.html", staff=staff, status=404, entry=None, details=None,
                      error=DomainError(Errors.NOT_FOUND))
    return render(request, "console/audit_entry.html", staff=staff, entry=entry, details=entry_details(entry),
                  names=staff_names(container_of(request).db, [entry.actor]))


def _meaning(finding: ChainFinding | None) -> str | None:
    if finding is None:
        return None
    return next((meaning for start, meaning in PROBLEMS if finding.problem.startswith(start)), None)


@router.post("/audit/verify", response_class=HTMLResponse)
def verify(request: Request, staff: Auditor) -> HTMLResponse:
    container = container_of(request)
    bound = container.settings.audit_unsealed_bound_seconds
    started = time.perf_counter()
    report = verify_recorded(container.db, container.clock, container.audit, actor=staff.actor,
                             unsealed_bound=timedelta(seconds=bound))
    seconds = time.perf_counter() - started
    first = report.first_break
    return render(request, "console/audit_verify.html", staff=staff, report=report, first=first,
                  meaning=_meaning(first), seconds=seconds, bound=bound)


# -- export --------------------------------------------------------------------------------------------------


def _values(entry: AuditEntry) -> list[Any]:
    return [entry.id, entry.seq, entry.occurred_at.isoformat(), entry.actor, entry.action, entry.subject, entry.body,
            entry.prev_hash, entry.entry_hash, entry.sealed_at.isoformat() if entry.sealed_at else None]


def _csv(entries: Iterator[AuditEntry]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for n, entry in enumerate(entries, 1):
        writer.writerow(["" if v is None else v for v in _values(entry)])
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _json_lines(entries: Iterator[AuditEntry]) -> Iterator[str]:
    for entry in entries:
        yield json.dumps(dict(zip(EXPORT_COLUMNS, _values(entry), strict=True)), ensure_ascii=False) + "\n"


EXPORTS = {"csv": ("text/csv; charset=utf-8", _csv), "jsonl": ("application/x-ndjson; charset=utf-8", _json_lines)}


@router.post("/audit/export", response_model=None)
def export(request: Request, staff: Auditor, form: Annotated[str, Form(pattern="^(csv|jsonl)$")] = "csv",
           actor: FormField = "", borrower: FormField = "", action: FormField = "", since: FormField = "",
           until: FormField = "") -> Response:
    search, error = _search_or_error(request, actor=actor, borrower=borrower, action=action, since=since,
                                     until=until)
    if error is not None:
        return render(request, "console/audit.html", staff=staff, error=error, search=search, rows=[], next_url=None,
                      typed={"actor": actor, "borrower": borrower, "action": action, "since": since, "until": until})
    container = container_of(request)
    entries = export_recorded(container.db, container.audit, search.where(container.db), actor=staff.actor,
                              form=form, borrower_id=search.borrower_id)
    media_type, write = EXPORTS[form]
    stamp = container.clock.now().astimezone(BUSINESS_TZ).strftime("%Y%m%d-%H%M%S")
    response = StreamingResponse(write(entries), media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="miaodai-audit-{stamp}.{form}"'})
    return finish(request, response)
