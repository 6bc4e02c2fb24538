"""The console's home: who is signed in, their roles and what each desk of theirs is for."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from miaodai.identity import rbac
from miaodai.identity.staff_service import StaffContext
from miaodai.web.console.core import PREFIX, SIGNED_IN, _, csrf_protect, locale_of, menu_for, menu_item, render

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)
menu_item(PREFIX, _("Home"), None)


@router.get("", response_class=HTMLResponse)
def home(request: Request, staff: Annotated[StaffContext, Depends(SIGNED_IN)]) -> HTMLResponse:
    locale = locale_of(request)
    duties = [(rbac.ROLES[rbac.Role(r)].name[locale], rbac.ROLES[rbac.Role(r)].duty[locale])
              for r in sorted(staff.roles) if rbac.is_known_role(r)]
    return render(request, "console/home.html", staff=staff, duties=duties, desks=menu_for(staff))
