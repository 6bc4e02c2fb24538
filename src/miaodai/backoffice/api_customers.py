"""Customer 360 over HTTP: search customers, read one (masked), reveal a field with a reason; and the borrower's
own list of who looked at their personal data.

Thin: parse, check the permission (``require_permission``), call :mod:`search`, :mod:`customer360` or
:mod:`reveal`, answer with their dataclasses.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from miaodai.backoffice import customer360 as c360
from miaodai.backoffice import reveal as reveals
from miaodai.backoffice import search as searching
from miaodai.core.fields import RowId, RowIdField
from miaodai.core.http import PlatformDep
from miaodai.identity.http import CurrentBorrower
from miaodai.identity.staff_deps import require_permission
from miaodai.identity.staff_service import StaffContext

router = APIRouter(prefix="/v1/staff/customers", tags=["staff: customers"])
borrower_router = APIRouter(tags=["me"])

Reader = Annotated[StaffContext, Depends(require_permission("borrower.read"))]
Revealer = Annotated[StaffContext, Depends(require_permission("borrower.reveal_pii"))]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.get("", summary="Find customers by phone, ID number, name, loan or contract number, or card (masked)")
def find_customers(
    staff: Reader,
    ports: PlatformDep,
    q: Annotated[str, Query(min_length=1, max_length=searching.MAX_QUERY_CHARS,
                            description="What to look for, read as `kind`")],
    kind: Annotated[searching.SearchKind, Query(description=(
        "phone | id_number | name (blind indexes) | loan | contract (numbers) | card (first 6 + last 4 digits, "
        "e.g. 622202****1007, or the whole number)"))],
) -> searching.SearchResult:
    return searching.search(ports, staff, q, kind)


@router.get("/{borrower_id}",
            summary="One customer's whole picture, masked (customer 360); each view audited (customer.viewed)")
def show_customer(staff: Reader, ports: PlatformDep, borrower_id: RowId) -> c360.Customer360:
    return c360.customer360(ports, borrower_id, viewer=staff, via="api")


class RevealBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: reveals.RevealField
    reason_kind: reveals.ReasonKind
    reason: str = Field(max_length=reveals.MAX_REASON_CHARS, description=(
        f"Why, in words (at least {reveals.MIN_REASON_CHARS} characters): the ticket, the call, the case"))
    payment_method_id: RowIdField | None = Field(default=None, description="The card, for field card_number")


class RevealAnswer(BaseModel):
    borrower_id: int
    field: reveals.RevealField
    value: str
    payment_method_id: int | None
    audit_entry_id: int


@router.post("/{borrower_id}/reveal", summary="Reveal one field in full, with a reason (audited, rate-limited)")
def reveal_field(staff: Revealer, ports: PlatformDep, borrower_id: RowId, body: RevealBody,
                 response: Response) -> RevealAnswer:
    shown = reveals.reveal(ports, staff, borrower_id, body.field, reveals.RevealReason(body.reason_kind, body.reason),
                           payment_method_id=body.payment_method_id)
    response.headers.update(NO_STORE)
    return RevealAnswer(borrower_id=shown.borrower_id, field=shown.field, value=shown.value,
                        payment_method_id=shown.payment_method_id, audit_entry_id=shown.audit_entry_id)


@borrower_router.get("/v1/me/data-access", summary="Who at Miaodai looked at my personal data, and why")
def my_data_access(auth: CurrentBorrower, ports: PlatformDep) -> list[reveals.DataAccess]:
    return reveals.data_access(ports, auth.borrower_id)
