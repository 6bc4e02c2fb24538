"""Reconciliation (对账): a channel's daily statement against our payment orders, and the staff queue.

A run takes the channel's file for one business day (Beijing time) and sorts every order on either side:

* **matched** — the file and our order agree (kind, amount, final status);
* **resolved** — our order was still ``processing`` (its outcome unknown to us) and reconciliation
  settled it: from the file's row, applied through the payments layer's one door for channel answers
  (``orders.apply_answer``, event ``reconciled``) exactly as a callback would be, or — when the file does
  not list it — by asking the channel (``orders.check``);
* **pending** — still processing at the channel after that query: a later day's file will list it;
* exceptions, queued for staff with the evidence: **missing_ours** (the channel moved money under an
  order number we never sent — never posted automatically), **missing_channel** (our order succeeded
  that day but the file does not list it), **amount_mismatch** (the file's amount or direction differs
  from ours where money moved), **status_mismatch** (both final, and they disagree).

Which of our orders belong to the day mirrors how a channel builds its statement: orders that reached
their final state that day (our ``finished_at`` is the channel's completion time), plus every order of
ours still processing that was sent before the day ended; an order the file lists is compared whatever
day we finished it.

A run is recorded once per (channel, day, file SHA-256): the same file again answers with the run
already recorded and changes nothing. A new file for the same day (the channel re-issued it) is a new
run, and an exception already queued for (channel, day, order, kind) by an earlier run is not queued
twice. The run, its new exceptions and its audit entry are written in one transaction at the end, so a
run that dies part-way records nothing (the answers it applied were applied once, as any callback's).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from miaodai.core.clock import business_date, start_of_business_day
from miaodai.core.errors import DomainError
from miaodai.core.ports import Platform
from miaodai.core.providers import ProviderTimeout
from miaodai.payments import orders
from miaodai.payments.channel import CODE_SUCCESS, ChannelAnswer, ChannelStatus, OrderKind
from miaodai.payments.models import (
    OrderStatus,
    PaymentOrder,
    PaymentOrderEvent,
    ReconException,
    ReconExceptionStatus,
    ReconRun,
)
from miaodai.payments.ports import PaymentPorts
from miaodai.payments.recon_errors import ReconErrors

# The statement's columns (any order): what every channel adapter's reconciliation_file must produce.
FILE_COLUMNS = ("order_no", "channel_txn_id", "kind", "amount_fen", "status", "finished_at")

MISSING_OURS = "missing_ours"
MISSING_CHANNEL = "missing_channel"
AMOUNT_MISMATCH = "amount_mismatch"
STATUS_MISMATCH = "status_mismatch"
EXCEPTION_KINDS = (MISSING_OURS, MISSING_CHANNEL, AMOUNT_MISMATCH, STATUS_MISMATCH)
COUNT_KEYS = ("matched", "resolved", "pending", *EXCEPTION_KINDS)

RECONCILED_EVENT = "reconciled"
FAILED_PER_STATEMENT = "FAILED_PER_STATEMENT"  # the answer code of a failure read from a statement
_FINAL = (OrderStatus.SUCCEEDED, OrderStatus.FAILED)
_ORDER_NO = re.compile(r"[A-Za-z0-9_-]{1,64}")
_AMOUNT = re.compile(r"[0-9]{1,15}")
_IN_CHUNK = 500  # order numbers per IN (...) lookup
_EVIDENCE_EVENTS = 30  # the latest events of our order kept with an exception


# -- the file ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileRow:
    line: int
    order_no: str
    channel_txn_id: str | None
    kind: OrderKind
    amount_fen: int
    status: ChannelStatus  # succeeded | failed: a statement lists final states only
    finished_at: datetime
    raw: dict[str, str]  # the row as the channel wrote it (the known columns only): evidence


class MalformedFile(ValueError):
    """The statement cannot be read as a whole; the message says where and why."""


def parse_file(text: str, day: date) -> dict[str, FileRow]:
    """The statement's rows by order number, or :class:`MalformedFile` — never a partial reading.

    Strict on purpose: a statement we misread would post or queue the wrong things, so an unexpected
    column, a row of another day, a number listed twice or any unreadable field rejects the file.
    """
    try:  # a UTF-8 byte-order mark, as spreadsheet exports write it, is not part of the first column's name
        lines = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    except csv.Error as exc:
        raise MalformedFile(f"not CSV ({exc})") from None
    if not lines:
        raise MalformedFile("empty: no header row")
    header = lines[0]
    if len(set(header)) != len(header) or set(header) != set(FILE_COLUMNS):
        raise MalformedFile(f"header is {','.join(header)!r}, expected the columns {','.join(FILE_COLUMNS)}")
    start, end = start_of_business_day(day), start_of_business_day(day + timedelta(days=1))
    rows: dict[str, FileRow] = {}
    for number, fields in enumerate(lines[1:], start=2):
        if len(fields) != len(header):
            raise MalformedFile(f"line {number}: {len(fields)} fields, expected {len(header)}")
        row = _row(number, dict(zip(header, fields, strict=True)), start, end)
        if row.order_no in rows:
            raise MalformedFile(f"line {number}: order {row.order_no} is listed twice")
        rows[row.order_no] = row
    return rows


def _row(number: int, raw: dict[str, str], start: datetime, end: datetime) -> FileRow:
    def bad(what: str) -> MalformedFile:
        return MalformedFile(f"line {number}: {what}")

    if not _ORDER_NO.fullmatch(raw["order_no"]):
        raise bad(f"order_no {raw['order_no'][:70]!r} is not 1-64 letters, digits, - or _")
    try:
        kind = OrderKind(raw["kind"])
    except ValueError:
        raise bad(f"kind {raw['kind'][:20]!r} is not payout or collection") from None
    if not _AMOUNT.fullmatch(raw["amount_fen"]) or int(raw["amount_fen"]) <= 0:
        raise bad(f"amount_fen {raw['amount_fen'][:20]!r} is not a positive whole number of fen")
    if raw["status"] not in (ChannelStatus.SUCCEEDED.value, ChannelStatus.FAILED.value):
        raise bad(f"status {raw['status'][:20]!r} is not succeeded or failed")
    try:
        finished_at = datetime.fromisoformat(raw["finished_at"])
    except ValueError:
        raise bad(f"finished_at {raw['finished_at'][:40]!r} is not an ISO 8601 time") from None
    if finished_at.tzinfo is None:
        raise bad(f"finished_at {raw['finished_at']!r} has no UTC offset")
    if not start <= finished_at < end:
        raise bad(f"finished_at {raw['finished_at']!r} is not on the statement's day")
    return FileRow(number, raw["order_no"], raw["channel_txn_id"] or None, kind, int(raw["amount_fen"]),
                   ChannelStatus(raw["status"]), finished_at, raw)


def answer_from_row(row: FileRow) -> ChannelAnswer:
    """The statement's row as a channel answer, so it is applied exactly like a callback saying it."""
    if row.status is ChannelStatus.SUCCEEDED:
        code, message = CODE_SUCCESS, "对账单确认：交易成功"
    else:
        code, message = FAILED_PER_STATEMENT, "对账单确认：交易失败"
    return ChannelAnswer(row.order_no, row.status, row.channel_txn_id, code, message, row.amount_fen,
                         row.finished_at)


# -- sorting -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One exception found by a run: what disagrees, the file's row and our order (either may be absent)."""

    kind: str
    order_no: str
    row: FileRow | None
    order: PaymentOrder | None


@dataclass(frozen=True)
class Window:
    """One business day of one channel, as UTC instants."""

    channel: str
    day: date

    @property
    def start(self) -> datetime:
        return start_of_business_day(self.day)

    @property
    def end(self) -> datetime:
        return start_of_business_day(self.day + timedelta(days=1))

    def holds(self, order: PaymentOrder) -> bool:
        """Our order belongs to the day: finished in it, or still processing and sent before it ended."""
        if order.status in _FINAL:
            return order.finished_at is not None and self.start <= order.finished_at < self.end
        return order.status is OrderStatus.PROCESSING and order.sent_at is not None and order.sent_at < self.end


def _disagreements(row: FileRow, order: PaymentOrder) -> list[str]:
    kinds = []
    money_moved = row.status is ChannelStatus.SUCCEEDED or order.status is OrderStatus.SUCCEEDED
    if money_moved and (row.amount_fen != order.amount_fen or row.kind.value != order.kind):
        kinds.append(AMOUNT_MISMATCH)
    if order.status in _FINAL and order.status.value != row.status.value:
        kinds.append(STATUS_MISMATCH)
    return kinds


def classify(rows: Mapping[str, FileRow], ours: Mapping[str, PaymentOrder], window: Window,
             resolved: set[str]) -> tuple[dict[str, int], list[Finding]]:
    """Sort the file's rows and our orders of the day (pure). ``resolved``: order numbers this run
    settled, counted as resolved rather than matched."""
    counts: Counter[str] = Counter({key: 0 for key in COUNT_KEYS})
    findings: list[Finding] = []
    for order_no, row in rows.items():
        order = ours.get(order_no)
        if order is None:
            findings.append(Finding(MISSING_OURS, order_no, row, None))
            continue
        kinds = _disagreements(row, order)
        findings += [Finding(kind, order_no, row, order) for kind in kinds]
        if kinds or order_no in resolved:
            continue
        counts["matched" if order.status in _FINAL else "pending"] += 1
    for order_no, order in ours.items():
        if order_no in rows or not window.holds(order):
            continue
        if order.status is OrderStatus.SUCCEEDED:
            findings.append(Finding(MISSING_CHANNEL, order_no, None, order))
        elif order.status is OrderStatus.PROCESSING:
            counts["pending"] += 1
    counts["resolved"] = len(resolved)
    counts.update(finding.kind for finding in findings)
    return dict(counts), findings


# -- a run ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReconResult:
    run: ReconRun
    counts: dict[str, int]
    already_recorded: bool  # this file was reconciled before: nothing changed
    new_exceptions: int  # queued by this run (an exception queued by an earlier run is not repeated)
    open_exceptions: int  # open in the queue for this channel and day, whichever run found them


def run(ports: PaymentPorts, channel_name: str, day: date, *, actor: str) -> ReconResult:
    """Reconcile ``channel_name``'s statement for ``day``; idempotent per statement file."""
    channel = ports.channel
    if channel_name != channel.name:
        raise DomainError(ReconErrors.CHANNEL_UNKNOWN, params={"channel": channel_name, "configured": channel.name})
    started = ports.clock.now()
    if day > business_date(started):
        raise DomainError(ReconErrors.DATE_IN_FUTURE, params={"day": day.isoformat()})
    params = {"channel": channel_name, "day": day.isoformat()}
    try:
        text = channel.reconciliation_file(day)
    except ProviderTimeout:
        raise DomainError(ReconErrors.FILE_UNAVAILABLE, params=params) from None
    sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    try:
        rows = parse_file(text, day)
    except MalformedFile as exc:
        raise DomainError(ReconErrors.FILE_MALFORMED, params={**params, "reason": str(exc)}) from None
    window = Window(channel_name, day)
    recorded = _recorded(ports, window, sha256)
    if recorded is not None:
        return recorded
    resolved = _settle_unknown(ports, window, rows)
    with ports.db.autocommit() as session:
        ours = _our_orders(session, window, rows)
    counts, findings = classify(rows, ours, window, resolved)
    return _record(ports, window, sha256, counts, findings, actor=actor, started=started)


def _settle_unknown(ports: PaymentPorts, window: Window, rows: Mapping[str, FileRow]) -> set[str]:
    """Our orders of the day whose outcome we do not know yet: the file's row is applied (as a callback
    would be), an order the file does not list is queried. Returns the order numbers now final."""
    with ports.db.autocommit() as session:
        unknown = [o for o in _our_orders(session, window, rows).values() if o.status not in _FINAL]
    resolved = set()
    for order in unknown:
        row = rows.get(order.order_no)
        if row is not None:
            settled = orders.apply_answer(ports, answer_from_row(row), event=RECONCILED_EVENT).outcome == "applied"
        elif order.status is OrderStatus.PROCESSING:
            checked = orders.check(ports, order.id)
            settled = checked is not None and checked.status in _FINAL
        else:
            continue  # stored, never sent: recover() sends it
        if settled:
            resolved.add(order.order_no)
    return resolved


def _our_orders(session: Session, window: Window, rows: Mapping[str, FileRow]) -> dict[str, PaymentOrder]:
    """Our orders of the channel that belong to the day, and those the file lists, by order number."""
    of_channel = PaymentOrder.channel == window.channel
    in_day = select(PaymentOrder).where(of_channel, or_(
        and_(PaymentOrder.status.in_(_FINAL), PaymentOrder.finished_at >= window.start,
             PaymentOrder.finished_at < window.end),
        and_(PaymentOrder.status == OrderStatus.PROCESSING, PaymentOrder.sent_at < window.end),
    ))
    found = {order.order_no: order for order in session.scalars(in_day)}
    listed = sorted(rows.keys() - found.keys())
    for i in range(0, len(listed), _IN_CHUNK):
        chunk = listed[i:i + _IN_CHUNK]
        found.update((o.order_no, o) for o in session.scalars(
            select(PaymentOrder).where(of_channel, PaymentOrder.order_no.in_(chunk))))
    return found


def _record(ports: Platform, window: Window, sha256: str, counts: dict[str, int], findings: list[Finding],
            *, actor: str, started: datetime) -> ReconResult:
    """The run, its new exceptions and its audit entry in one transaction. A concurrent run of the same
    file that commits first wins (its run is answered); one of another file of the day that queued the
    same exception first makes this one try again without it."""
    for attempt in (1, 2):
        try:
            return _insert_run(ports, window, sha256, counts, findings, actor=actor, started=started)
        except IntegrityError:
            recorded = _recorded(ports, window, sha256)
            if recorded is not None:
                return recorded
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _insert_run(ports: Platform, window: Window, sha256: str, counts: dict[str, int],
                findings: list[Finding], *, actor: str, started: datetime) -> ReconResult:
    now = ports.clock.now()
    with ports.db.transaction() as session:
        run_row = ReconRun(channel=window.channel, business_date=window.day, file_sha256=sha256, started_at=started,
                           finished_at=now, actor=actor[:64], counts=json.dumps(counts, sort_keys=True))
        session.add(run_row)
        session.flush()
        queued = {tuple(r) for r in session.execute(select(ReconException.order_no, ReconException.kind).where(
            ReconException.channel == window.channel, ReconException.business_date == window.day))}
        new = [f for f in findings if (f.order_no, f.kind) not in queued]
        events = _events(session, [f.order.id for f in new if f.order is not None])
        for finding in new:
            session.add(_exception(run_row, finding, events, now))
        ports.audit.record(
            session, actor=actor, action="payments.recon.run", subject=f"recon_run:{run_row.id}",
            details={"channel": window.channel, "business_date": window.day.isoformat(), "file_sha256": sha256,
                     "counts": counts, "new_exceptions": [[f.kind, f.order_no] for f in new]},
        )
        open_count = _open_count(session, window)
    return ReconResult(run_row, counts, already_recorded=False, new_exceptions=len(new), open_exceptions=open_count)


def _recorded(ports: Platform, window: Window, sha256: str) -> ReconResult | None:
    with ports.db.autocommit() as session:
        run_row = session.scalars(select(ReconRun).where(
            ReconRun.channel == window.channel, ReconRun.business_date == window.day,
            ReconRun.file_sha256 == sha256)).one_or_none()
        if run_row is None:
            return None
        return ReconResult(run_row, json.loads(run_row.counts), already_recorded=True, new_exceptions=0,
                           open_exceptions=_open_count(session, window))


def _open_count(session: Session, window: Window) -> int:
    return session.scalar(select(func.count()).select_from(ReconException).where(
        ReconException.channel == window.channel, ReconException.business_date == window.day,
        ReconException.status == ReconExceptionStatus.OPEN)) or 0


def _events(session: Session, order_ids: Sequence[int]) -> dict[int, list[PaymentOrderEvent]]:
    by_order: dict[int, list[PaymentOrderEvent]] = {order_id: [] for order_id in order_ids}
    ids = sorted(by_order)
    for i in range(0, len(ids), _IN_CHUNK):
        for event in session.scalars(select(PaymentOrderEvent).where(
                PaymentOrderEvent.order_id.in_(ids[i:i + _IN_CHUNK])).order_by(PaymentOrderEvent.id)):
            by_order[event.order_id].append(event)
    return by_order


def _exception(run_row: ReconRun, finding: Finding, events: Mapping[int, list[PaymentOrderEvent]],
               now: datetime) -> ReconException:
    row, order = finding.row, finding.order
    evidence = {
        "file_row": {"line": row.line, **row.raw} if row else None,
        "ours": _order_evidence(order, events.get(order.id, [])) if order else None,
    }
    return ReconException(
        run_id=run_row.id, channel=run_row.channel, business_date=run_row.business_date, order_no=finding.order_no,
        kind=finding.kind, our_status=order.status.value if order else None,
        channel_status=row.status.value if row else None, our_amount_fen=order.amount_fen if order else None,
        channel_amount_fen=row.amount_fen if row else None, evidence=json.dumps(evidence, ensure_ascii=False),
        status=ReconExceptionStatus.OPEN, created_at=now,
    )


def _order_evidence(order: PaymentOrder, events: Iterable[PaymentOrderEvent]) -> dict[str, Any]:
    """Our order as it stood, with its events: ids, amounts, statuses, times — never card data."""
    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "order_no": order.order_no, "kind": order.kind, "purpose": order.purpose, "amount_fen": order.amount_fen,
        "status": order.status.value, "code": order.code, "message": order.message,
        "channel_txn_id": order.channel_txn_id, "loan_id": order.loan_id, "attempt": order.attempt,
        "created_at": iso(order.created_at), "sent_at": iso(order.sent_at), "finished_at": iso(order.finished_at),
        "settled_at": iso(order.settled_at),
        "events": [{"at": iso(e.at), "event": e.event, "status": e.status, "code": e.code, "detail": e.detail}
                   for e in list(events)[-_EVIDENCE_EVENTS:]],
    }


# -- the staff queue ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_before_id: int | None  # pass back as before_id for the next (older) page


def _page(ports: Platform, model: type[ReconRun] | type[ReconException], *, channel: str | None,
          day: date | None, limit: int, before_id: int | None, **equal: Any) -> Page:
    """One page of ``model`` rows by descending id, of a channel and day if given and with the columns
    in ``equal`` equal to their values (None: any)."""
    stmt = select(model).order_by(model.id.desc()).limit(limit + 1)
    for column, value in {"channel": channel, "business_date": day, **equal}.items():
        if value is not None:
            stmt = stmt.where(getattr(model, column) == value)
    if before_id is not None:
        stmt = stmt.where(model.id < before_id)
    with ports.db.autocommit() as session:
        items = list(session.scalars(stmt))
    more = len(items) > limit
    items = items[:limit]
    return Page(items, items[-1].id if more and items else None)


def runs_page(ports: Platform, *, channel: str | None = None, day: date | None = None, limit: int = 50,
              before_id: int | None = None) -> Page:
    """Recorded runs, newest first."""
    return _page(ports, ReconRun, channel=channel, day=day, limit=limit, before_id=before_id)


def exceptions_page(ports: Platform, *, status: ReconExceptionStatus | None = ReconExceptionStatus.OPEN,
                    channel: str | None = None, day: date | None = None, limit: int = 50,
                    before_id: int | None = None) -> Page:
    """The exception queue, newest first; ``status`` None for every status."""
    return _page(ports, ReconException, channel=channel, day=day, limit=limit, before_id=before_id,
                 status=status)


def get_exception(ports: Platform, exception_id: int) -> ReconException:
    with ports.db.autocommit() as session:
        found = session.get(ReconException, exception_id)
    if found is None:
        raise DomainError(ReconErrors.EXCEPTION_NOT_FOUND)
    return found


def resolve(ports: Platform, exception_id: int, *, resolution: str, actor: str) -> ReconException:
    """Close an exception with what staff did about it. Resolving it again with the same note answers
    it unchanged; another note is refused (a resolution is never rewritten)."""
    resolution = resolution.strip()
    with ports.db.transaction() as session:
        found = session.scalars(select(ReconException).where(ReconException.id == exception_id)
                                .with_for_update()).one_or_none()
        if found is None:
            raise DomainError(ReconErrors.EXCEPTION_NOT_FOUND)
        if found.status is ReconExceptionStatus.RESOLVED:
            if found.resolution == resolution:
                return found
            raise DomainError(ReconErrors.EXCEPTION_ALREADY_RESOLVED, params={
                "resolved_by": found.resolved_by, "resolved_at": found.resolved_at.isoformat()})
        found.status, found.resolved_at = ReconExceptionStatus.RESOLVED, ports.clock.now()
        found.resolved_by, found.resolution = actor[:64], resolution
        ports.audit.record(
            session, actor=actor, action="payments.recon.resolve", subject=f"recon_exception:{found.id}",
            details={"channel": found.channel, "business_date": found.business_date.isoformat(),
                     "order_no": found.order_no, "kind": found.kind, "resolution": resolution},
        )
    return found
