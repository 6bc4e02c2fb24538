"""Staff API of reconciliation (对账): recorded runs, the exception queue with its evidence, resolving.

Thin: parse, call ``payments.recon``, shape the answer. Reading needs ``ledger.read``; resolving needs
``recon.resolve``. Evidence holds order numbers, amounts, statuses, times and the order's events —
never card data.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from miaodai.core.fields import ROW_ID_MAX, RowId
from miaodai.identity.staff_deps import require_permission
from miaodai.identity.staff_service import StaffContext
from miaodai.payments import recon
from miaodai.payments.models import ReconException, ReconExceptionStatus, ReconRun
from miaodai.payments.ports import PaymentPortsDep

router = APIRouter(prefix="/v1/staff/recon", tags=["reconciliation"])

Reader = Annotated[StaffContext, Depends(require_permission("ledger.read"))]
Resolver = Annotated[StaffContext, Depends(require_permission("recon.resolve"))]
Limit = Annotated[int, Query(ge=1, le=200)]
BeforeId = Annotated[int | None, Query(ge=1, le=ROW_ID_MAX, description="next_before_id of the previous page")]
Channel = Annotated[str | None, Query(max_length=32)]
Day = Annotated[date | None, Query(alias="date", description="The business day, YYYY-MM-DD")]

# What each kind means and what staff do about it (docs/operations.md, "Reconciliation 对账").
_KIND_TEXT = {
    recon.MISSING_OURS: (
        "通道有一笔我们从未发出的订单：资金已变动，但我方无记录。不会自动入账。",
        "The channel moved money under an order number we never sent. Never posted automatically.",
        "向通道核实该笔交易的来源；确认非我方交易后要求通道退回或冲正。",
        "Ask the channel where it came from; if it is not ours, have the channel reverse it."),
    recon.MISSING_CHANNEL: (
        "我方订单已成功，但通道对账单中没有这笔交易。",
        "Our order succeeded that day, but the channel's statement does not list it.",
        "向通道查询该订单（附交易流水号）；如通道确认未付款，按退款/冲正流程处理借款。",
        "Query the channel with the transaction id; if it did not pay, correct the loan through a reversal."),
    recon.AMOUNT_MISMATCH: (
        "对账单金额（或收付方向）与我方订单不一致。",
        "The statement's amount (or direction) differs from our order's.",
        "以银行流水为准与通道核对；差额通过退款或补扣处理，切勿直接修改订单。",
        "Check against the bank's records with the channel; settle the difference by a refund or a further "
        "collection, never by editing the order."),
    recon.STATUS_MISMATCH: (
        "双方都是最终状态但结果相反（如我方失败、通道成功）。",
        "Both sides are final and disagree (e.g. we say failed, the channel succeeded).",
        "以通道的银行流水为准核实；资金确实到账/未到账时，通过放款、退款或冲正更正借款。",
        "Establish the truth from the channel's bank records; correct the loan by a payout, refund or reversal."),
}


class RunView(BaseModel):
    id: int
    channel: str
    business_date: date
    file_sha256: str
    started_at: datetime
    finished_at: datetime | None
    actor: str
    counts: dict[str, int]


class RunPage(BaseModel):
    runs: list[RunView]
    next_before_id: int | None = Field(description="Pass as before_id to get the next (older) page")


class ExceptionView(BaseModel):
    id: int
    run_id: int
    channel: str
    business_date: date
    order_no: str
    kind: str = Field(description="missing_ours | missing_channel | amount_mismatch | status_mismatch")
    meaning_zh: str
    meaning_en: str
    our_status: str | None
    channel_status: str | None
    our_amount_fen: int | None
    channel_amount_fen: int | None
    status: str = Field(description="open | resolved")
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None


class ExceptionDetail(ExceptionView):
    what_to_do_zh: str
    what_to_do_en: str
    evidence: dict[str, Any] = Field(description="file_row: the statement's row; ours: our order and its events")


class ExceptionPage(BaseModel):
    exceptions: list[ExceptionView]
    next_before_id: int | None = Field(description="Pass as before_id to get the next (older) page")


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: Annotated[str, StringConstraints(strip_whitespace=True, min_length=5, max_length=500)] = Field(
        description="What was found and done; kept with the exception and in the audit chain")


def _run_view(run: ReconRun) -> RunView:
    return RunView(id=run.id, channel=run.channel, business_date=run.business_date, file_sha256=run.file_sha256,
                   started_at=run.started_at, finished_at=run.finished_at, actor=run.actor,
                   counts=json.loads(run.counts))


def _fields(found: ReconException) -> dict[str, Any]:
    zh, en, _, _ = _KIND_TEXT.get(found.kind, (found.kind, found.kind, "", ""))
    return dict(
        id=found.id, run_id=found.run_id, channel=found.channel, business_date=found.business_date,
        order_no=found.order_no, kind=found.kind, meaning_zh=zh, meaning_en=en, our_status=found.our_status,
        channel_status=found.channel_status, our_amount_fen=found.our_amount_fen,
        channel_amount_fen=found.channel_amount_fen, status=found.status.value, created_at=found.created_at,
        resolved_at=found.resolved_at, resolved_by=found.resolved_by, resolution=found.resolution,
    )


def _detail(found: ReconException) -> ExceptionDetail:
    _, _, do_zh, do_en = _KIND_TEXT.get(found.kind, ("", "", "", ""))
    return ExceptionDetail(**_fields(found), what_to_do_zh=do_zh, what_to_do_en=do_en,
                           evidence=json.loads(found.evidence))


@router.get("/runs", summary="Recorded reconciliation runs, newest first (needs ledger.read)")
def list_runs(_staff: Reader, ports: PaymentPortsDep, channel: Channel = None, day: Day = None,
              limit: Limit = 50, before_id: BeforeId = None) -> RunPage:
    page = recon.runs_page(ports, channel=channel, day=day, limit=limit, before_id=before_id)
    return RunPage(runs=[_run_view(r) for r in page.items], next_before_id=page.next_before_id)


@router.get("/exceptions", summary="The reconciliation exception queue, newest first (needs ledger.read)")
def list_exceptions(
    _staff: Reader, ports: PaymentPortsDep, channel: Channel = None, day: Day = None,
    status: Annotated[Literal["open", "resolved", "all"], Query()] = "open",
    limit: Limit = 50, before_id: BeforeId = None,
) -> ExceptionPage:
    wanted = None if status == "all" else ReconExceptionStatus(status)
    page = recon.exceptions_page(ports, status=wanted, channel=channel, day=day, limit=limit, before_id=before_id)
    return ExceptionPage(exceptions=[ExceptionView(**_fields(e)) for e in page.items],
                         next_before_id=page.next_before_id)


@router.get("/exceptions/{exception_id}", summary="One exception with its evidence and what to do about it")
def get_exception(exception_id: RowId, _staff: Reader, ports: PaymentPortsDep) -> ExceptionDetail:
    return _detail(recon.get_exception(ports, exception_id))


@router.post("/exceptions/{exception_id}/resolve",
             summary="Close an exception with what was done (needs recon.resolve); the same note again is a no-op")
def resolve_exception(exception_id: RowId, body: ResolveBody, staff: Resolver,
                      ports: PaymentPortsDep) -> ExceptionDetail:
    return _detail(recon.resolve(ports, exception_id, resolution=body.resolution, actor=staff.actor))
