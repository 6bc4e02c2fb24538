"""Consents 授权管理 in the app (PIPL art. 29): each document with what it is for, its version and whether the
borrower's agreement is in force (since when), read in full, agreed to one at a time, withdrawn.

The same services as ``GET /v1/consents``, ``GET /v1/consent-documents/{kind}/{version}``, ``POST
/v1/consents`` and ``DELETE /v1/consents/{kind}``: a grant is of the version in effect now, from this
device, and agreeing again to what is in force changes nothing. A document can be read without logging in,
as the API allows (a person reads the privacy policy before giving us a phone number).

:func:`consent_items` is also what the verification page shows when the carrier check still needs some.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from miaodai.container import Container
from miaodai.core.errors import DomainError
from miaodai.credit.service import APPLICATION_CONSENTS
from miaodai.identity import consent_service
from miaodai.identity.consent_errors import ConsentErrors
from miaodai.identity.consent_service import CARRIER_CHECK_CONSENTS
from miaodai.identity.models import ConsentDocument, ConsentKind
from miaodai.identity.sessions import AuthContext
from miaodai.web import journey, page_words
from miaodai.web.core import (
    PREFIX,
    MaybeBorrower,
    WebBorrower,
    WebContainer,
    csrf_protect,
    redirect,
    render,
    safe_next,
)

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)

CONSENTS = f"{PREFIX}/consents"
Kind = Annotated[str, Path(max_length=64)]
Version = Annotated[str, Path(max_length=16)]


def _(message: str) -> str:
    """Marks an English message id for the catalogs (extracted like the templates' ``_``)."""
    return message


# What each document is for, in a sentence (the documents themselves are the service's).
PURPOSES = {
    ConsentKind.PRIVACY_POLICY: _("What personal data we collect, why, how we protect it, and your rights over it."),
    ConsentKind.USER_AGREEMENT: _("The rules of your Miaodai account: what you and we each agree to."),
    ConsentKind.CARRIER_DATA: _("Lets us ask your mobile carrier whether your number is registered in your name "
                                "and how long it has been in service."),
    ConsentKind.CREDIT_BUREAU_QUERY: _("Lets us read your credit report when you apply for a credit line and while "
                                       "you have a loan with us."),
}
VERIFY_NEEDS = _("Needed to verify your identity")
APPLY_NEEDS = _("Needed to apply for credit")


def _needs(kind: ConsentKind) -> list[str]:
    """Which steps refuse without this consent — the services' own lists."""
    return [*([VERIFY_NEEDS] if kind in CARRIER_CHECK_CONSENTS else []),
            *([APPLY_NEEDS] if kind in APPLICATION_CONSENTS else [])]


@dataclass(frozen=True)
class ConsentItem:
    """One document as the consents page shows it, with the borrower's standing."""

    kind: str
    doc: ConsentDocument  # the version in effect now
    reason: str  # in_force | never_granted | revoked | outdated (the service's words)
    granted_at: datetime | None  # of the grant in force
    withdrawn_at: datetime | None  # when the last grant was withdrawn, if that is why it is not in force
    live: bool  # a grant not withdrawn (in force, or of an older version): it can be withdrawn
    purpose: str
    needs: list[str]

    @property
    def in_force(self) -> bool:
        return self.reason == "in_force"


def consent_items(container: Container, auth: AuthContext, kinds: tuple[ConsentKind, ...] = journey.CONSENT_ORDER,
                  ) -> list[ConsentItem]:
    """The borrower's standing with each of ``kinds``, as ``GET /v1/consents`` tells it."""
    found = consent_service.overview(container, auth.borrower_id)
    items = []
    for kind in kinds:
        standing = found.standings.get(kind)
        if standing is None:
            continue  # no version of it is in effect
        of_kind = [c for c in found.history if c.kind is kind]
        withdrawn = [c.revoked_at for c in of_kind if c.revoked_at is not None]
        items.append(ConsentItem(
            kind=kind.value, doc=standing.current, reason=standing.reason,
            granted_at=standing.grant.granted_at if standing.grant else None,
            withdrawn_at=max(withdrawn) if standing.reason == "revoked" and withdrawn else None,
            live=any(c.revoked_at is None for c in of_kind), purpose=PURPOSES[kind], needs=_needs(kind)))
    return items


# -- the app's words where the catalog's speak to API clients (more for any page: web/page_words.py) ---------

# code → (message id or None, what-to-do id or None)
PAGE_WORDS = page_words.register(__name__, {
    ConsentErrors.NOT_GRANTED.code: (None, _("Its state is shown below.")),
    ConsentErrors.UNKNOWN_KIND.code: (None, _("Choose one of the documents below.")),
    ConsentErrors.DOCUMENT_NOT_FOUND.code: (None, _("Choose one of the documents below.")),
    ConsentErrors.REQUIRED.code: (None, _("Read each of them below and agree to it, then try again.")),
})


# -- pages ---------------------------------------------------------------------------------------------------


def _page(request: Request, container: Container, auth: AuthContext, *, error: DomainError | None = None
          ) -> HTMLResponse:
    return render(request, "consents.html", signed_in=auth, items=consent_items(container, auth),
                  error=error,
                  next_step=journey.progress(container, auth).next_step, step_titles=journey.STEP_TITLES)


@router.get("/consents", response_class=HTMLResponse)
def consents_page(request: Request, container: WebContainer, auth: WebBorrower) -> HTMLResponse:
    return _page(request, container, auth)


@router.get("/consents/{kind}/grant")
@router.get("/consents/{kind}/withdraw")
def back_to_the_list(request: Request) -> Response:
    """A form's address, asked for as a page (the language switch of a page answering a form sent from an
    earlier form's answer): show the list, before the document's route would take ``grant`` for a version."""
    return redirect(request, CONSENTS)


@router.get("/consents/{kind}/{version}", response_class=HTMLResponse)
def document_page(request: Request, kind: Kind, version: Version, container: WebContainer, auth: MaybeBorrower,
                  next: str | None = None) -> HTMLResponse:  # noqa: A002
    """One version's full text; a signed-in borrower may agree to it here if it is the version in effect."""
    try:
        doc, current = consent_service.get_document(container, kind, version)
    except DomainError as error:  # an unknown document or version: the ones in effect, to choose from
        listing = consent_service.list_documents(container)
        current_docs = sorted((d for d in listing.documents if d.id in listing.current_ids),
                              key=lambda d: journey.CONSENT_ORDER.index(d.kind))
        return render(request, "consents_document.html", signed_in=auth, error=error,
                      doc=None, documents=current_docs)
    mine = consent_items(container, auth, (doc.kind,)) if auth is not None else []
    return render(request, "consents_document.html", signed_in=auth, doc=doc, current=current,
                  item=mine[0] if mine else None, next=safe_next(next or CONSENTS))


@router.post("/consents/{kind}/grant")
def grant(request: Request, kind: Kind, container: WebContainer, auth: WebBorrower,
          version: Annotated[str, Form(max_length=16)], next: Annotated[str, Form()] = CONSENTS,  # noqa: A002
          ) -> Response:
    try:
        consent_service.grant(container, auth, consent_service.parse_kind(kind), version)
    except DomainError as error:
        return _page(request, container, auth, error=error)
    return redirect(request, safe_next(next))


@router.post("/consents/{kind}/withdraw")
def withdraw(request: Request, kind: Kind, container: WebContainer, auth: WebBorrower) -> Response:
    try:
        consent_service.revoke(container, auth, kind)
    except DomainError as error:
        return _page(request, container, auth, error=error)
    return redirect(request, f"{CONSENTS}#consent-{kind}")
