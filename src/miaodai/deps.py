"""The composition root as a FastAPI dependency, for the entry points' own pages (``miaodai.web``).

Domain routers never take the whole container: they annotate ``core.http.app_platform`` with their domain's
port, and take the borrower from ``identity.http``. The names below that live there are re-exported while
routers move over (issue 18).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from miaodai.container import Container
from miaodai.core.fields import ROW_ID_MAX, RowId, RowIdField  # noqa: F401  (re-exported)
from miaodai.core.http import ClientIp, bearer_token, client_ip  # noqa: F401  (re-exported)
from miaodai.identity.http import BearerToken, CurrentBorrower, borrower_of, current_borrower  # noqa: F401


def get_container(request: Request) -> Container:
    return request.app.state.container


# A dependency that does no I/O is declared ``async def``: FastAPI runs a plain ``def`` dependency in the
# threadpool, a hand-off per request that costs more CPU than the dependency itself.
async def _container(request: Request) -> Container:
    return get_container(request)


ContainerDep = Annotated[Container, Depends(_container)]
