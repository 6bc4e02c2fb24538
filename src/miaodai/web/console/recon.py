"""The reconciliation exceptions desk (对账差异): open exceptions newest first, each with the evidence a run kept
(our order and its events, the channel's statement row), resolving one with a written note, and the recent runs.

Reading needs ``ledger.read``; resolving needs ``recon.resolve``. The rules are :mod:`miaodai.payments.recon`'s
(a resolution is never rewritten; the same note again is a no-op).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from miaodai.core.errors import DomainError
from miaodai.core.fields import ROW_ID_MAX, RowId
from miaodai.identity import rbac
from miaodai.identity.staff_service import StaffContext
from miaodai.payments import recon
from miaodai.payments.models import ReconException, ReconExceptionStatus
from miaodai.payments.recon_errors import ReconErrors
from miaodai.web.console.core import (
    PREFIX,
    _,
    container_of,
    csrf_protect,
    gettext,
    menu_item,
    redirect,
    render,
    require,
)
from miaodai.web.console.reviews import age_text, staff_names

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)
menu_item(f"{PREFIX}/recon", _("Reconciliation"), "ledger.read")

Reader = Annotated[StaffContext, Depends(require("ledger.read"))]
Resolver = Annotated[StaffContext, Depends(require("recon.resolve"))]

PAGE_SIZE = 50
RECENT_RUNS = 10
NOTE_MIN, NOTE_MAX = 5, 500  # as the API's resolve body: the note is kept with the exception and in the audit chain

# What each kind means and what staff do about it (docs/operations.md, "Reconciliation 对账").
KINDS = {
    recon.MISSING_OURS: (
        _("Not ours"),
        _("The channel moved money under an order number we never sent. Never posted automatically."),
        _("Ask the channel where it came from; if it is not ours, have the channel reverse it.")),
    recon.MISSING_CHANNEL: (
        _("Missing at the channel"),
        _("Our order succeeded that day, but the channel's statement does not list it."),
        _("Query the channel with the transaction id; if it did not pay, correct the loan through a reversal.")),
    recon.AMOUNT_MISMATCH: (
        _("Amount differs"),
        _("The statement's amount (or direction) differs from our order's."),
        _("Check against the bank's records with the channel; settle the difference by a refund or a further "
          "collection, never by editing the order.")),
    recon.STATUS_MISMATCH: (
        _("Outcome differs"),
        _("Both sides are final and disagree (e.g. we say failed, the channel succeeded)."),
        _("Establish the truth from the channel's bank records; correct the loan by a payout, refund or reversal.")),
}
STATUS_LABELS = {ReconExceptionStatus.OPEN: _("Open"), ReconExceptionStatus.RESOLVED: _("Resolved")}
COUNT_LABELS = {"matched": _("Matched"), "resolved": _("Settled by the run"), "pending": _("Still pending"),
                **{kind: words[0] for kind, words in KINDS.items()}}
SHOWN = {"open": ReconExceptionStatus.OPEN, "resolved": ReconExceptionStatus.RESOLVED, "all": None}
DONE = {"resolved": _("Exception resolved: the note is kept with it and in the audit chain.")}


@router.get("/recon", response_class=HTMLResponse)
def exceptions(request: Request, staff: Reader, status: Literal["open", "resolved", "all"] = "open",
               before_id: Annotated[int | None, Query(ge=1, le=ROW_ID_MAX)] = None) -> HTMLResponse:
    container = container_of(request)
    now = container.clock.now()
    page = recon.exceptions_page(container, status=SHOWN[status], limit=PAGE_SIZE, before_id=before_id)
    runs = recon.runs_page(container, limit=RECENT_RUNS).items
    rows = [{"e": e, "age": age_text(request, int((now - e.created_at).total_seconds()))} for e in page.items]
    return render(request, "console/recon.html", staff=staff, rows=rows, runs=runs, shown=status,
                  next_before_id=page.next_before_id, kinds=KINDS, status_labels=STATUS_LABELS,
                  count_labels=COUNT_LABELS, counts_of=lambda run: json.loads(run.counts))


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _exception_page(request: Request, staff: StaffContext, exception_id: int, *, error: DomainError | None = None,
                    note: str = "", notice: str | None = None) -> HTMLResponse:
    container = container_of(request)
    found: ReconException = recon.get_exception(container, exception_id)
    evidence: dict[str, Any] = json.loads(found.evidence)
    ours = evidence.get("ours")
    if ours:  # the evidence keeps times as ISO text: shown as every time is, in Beijing time
        ours = {**ours, **{k: _when(ours.get(k)) for k in ("sent_at", "finished_at")},
                "events": [{**ev, "at": _when(ev.get("at"))} for ev in ours.get("events", [])]}
    age = age_text(request, int((container.clock.now() - found.created_at).total_seconds()))
    by = found.resolved_by or ""
    resolver = staff_names(container, [int(by[6:])]).get(int(by[6:])) if by[6:].isdigit() and by.startswith(
        "staff:") else by
    return render(request, "console/recon_exception.html", staff=staff, error=error, e=found, evidence=evidence,
                  ours=ours, row=evidence.get("file_row"), kind=KINDS.get(found.kind), age=age, resolver=resolver,
                  status_labels=STATUS_LABELS, note=note, note_min=NOTE_MIN, note_max=NOTE_MAX, notice=notice,
                  may_resolve=found.status is ReconExceptionStatus.OPEN
                  and rbac.is_allowed(staff.roles, "recon.resolve"))


@router.get("/recon/exceptions/{exception_id}", response_class=HTMLResponse)
def exception(request: Request, exception_id: RowId, staff: Reader, done: str | None = None) -> HTMLResponse:
    try:
        return _exception_page(request, staff, exception_id,
                               notice=gettext(request, DONE[done]) if done in DONE else None)
    except DomainError as error:  # no such exception
        return render(request, "console/recon_missing.html", staff=staff, error=error)


@router.post("/recon/exceptions/{exception_id}/resolve", response_class=HTMLResponse)
def resolve(request: Request, exception_id: RowId, staff: Resolver,
            resolution: Annotated[str, Form(max_length=2000)] = "") -> Response:
    note = " ".join(resolution.split())
    try:
        if not NOTE_MIN <= len(note) <= NOTE_MAX:
            raise DomainError(ReconErrors.RESOLUTION_MISSING, params={"min_chars": NOTE_MIN, "max_chars": NOTE_MAX})
        recon.resolve(container_of(request), exception_id, resolution=note, actor=staff.actor)
    except DomainError as error:
        try:
            return _exception_page(request, staff, exception_id, error=error, note=note[:NOTE_MAX])
        except DomainError:
            return render(request, "console/recon_missing.html", staff=staff, error=error)
    return redirect(request, f"{PREFIX}/recon/exceptions/{exception_id}?done=resolved")
