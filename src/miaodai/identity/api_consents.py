"""Consent documents and the borrower's consents: read, grant (one version each), revoke.

Thin: parse, call the consent service, shape the response.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from miaodai.identity import consent_service
from miaodai.identity.http import CurrentBorrower
from miaodai.identity.models import Consent, ConsentDocument, ConsentKind
from miaodai.identity.ports import IdentityPortsDep

router = APIRouter(tags=["consents"])


class DocumentSummary(BaseModel):
    kind: str
    version: str
    title_zh: str
    title_en: str
    effective_at: datetime
    body_sha256: str
    current: bool = Field(description="True for the version in effect now; only that one can be agreed to")


class DocumentView(DocumentSummary):
    body: str


class GrantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ConsentKind
    version: str = Field(min_length=1, max_length=16, description="The current version, e.g. 1.0")


class ConsentView(BaseModel):
    id: int
    kind: str
    version: str
    granted_at: datetime
    revoked_at: datetime | None
    device_id: int | None
    in_force: bool


class MissingConsent(BaseModel):
    kind: str
    current_version: str
    reason: str = Field(description="never_granted | revoked | outdated (an older version was agreed to)")


class ConsentsOverview(BaseModel):
    in_force: list[ConsentView]
    missing: list[MissingConsent]
    history: list[ConsentView] = Field(description="Every grant, oldest first, revoked ones included")


def _summary(doc: ConsentDocument, current: bool) -> dict:
    return {
        "kind": doc.kind.value, "version": doc.version, "title_zh": doc.title_zh, "title_en": doc.title_en,
        "effective_at": doc.effective_at, "body_sha256": doc.body_sha256, "current": current,
    }


def _consent(consent: Consent, in_force: bool) -> ConsentView:
    return ConsentView(
        id=consent.id, kind=consent.kind.value, version=consent.version, granted_at=consent.granted_at,
        revoked_at=consent.revoked_at, device_id=consent.device_id, in_force=in_force,
    )


def _overview(ports: IdentityPortsDep, borrower_id: int) -> ConsentsOverview:
    found = consent_service.overview(ports, borrower_id)
    live_ids = {s.grant.id for s in found.standings.values() if s.grant is not None}
    return ConsentsOverview(
        in_force=[_consent(s.grant, True) for s in found.standings.values() if s.grant is not None],
        missing=[
            MissingConsent(kind=k.value, current_version=s.current.version, reason=s.reason)
            for k, s in found.standings.items() if s.grant is None
        ],
        history=[_consent(c, c.id in live_ids) for c in found.history],
    )


@router.get("/v1/consent-documents", summary="Every consent document version (no login needed)")
def list_documents(ports: IdentityPortsDep) -> list[DocumentSummary]:
    listing = consent_service.list_documents(ports)
    return [DocumentSummary(**_summary(doc, doc.id in listing.current_ids)) for doc in listing.documents]


# Public like the listing: a person reads the privacy policy before giving us a phone number.
@router.get("/v1/consent-documents/{kind}/{version}", summary="One document version with its full text (no login)")
def get_document(kind: str, version: str, ports: IdentityPortsDep) -> DocumentView:
    doc, current = consent_service.get_document(ports, kind, version)
    return DocumentView(**_summary(doc, current), body=doc.body)


@router.get("/v1/consents", summary="My consents: what is in force, what is missing, the full history")
def get_consents(ports: IdentityPortsDep, auth: CurrentBorrower) -> ConsentsOverview:
    return _overview(ports, auth.borrower_id)


@router.post("/v1/consents", status_code=201, summary="Agree to the current version of one document")
def grant_consent(
    body: GrantRequest, response: Response, ports: IdentityPortsDep, auth: CurrentBorrower
) -> ConsentView:
    consent, created = consent_service.grant(ports, auth, body.kind, body.version)
    if not created:
        response.status_code = 200  # already in force: the same grant, not a new one
    return _consent(consent, True)


@router.delete("/v1/consents/{kind}", summary="Withdraw consent to a document")
def revoke_consent(kind: str, ports: IdentityPortsDep, auth: CurrentBorrower) -> ConsentsOverview:
    consent_service.revoke(ports, auth, kind)
    return _overview(ports, auth.borrower_id)
