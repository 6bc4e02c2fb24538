"""Real-name verification 实名认证 in the app: name and ID number, the carrier check, then the face check.

The same service as ``GET /v1/kyc``, ``POST /v1/kyc/identity`` and ``POST /v1/kyc/face``
(:mod:`miaodai.identity.kyc_service`): the ID number's checks, the age policy, one account per person, the
carrier three-element check with the phone the borrower logged in with (nothing to type: the carrier looks
that number up), the daily attempt limits, and every refusal's own code and what to do — shown on the page.

The carrier check needs three consents first; while any is missing the page asks for them in place (each
read and agreed to on its own, through the consents page's forms) before the form.

The face step: a face SDK hands the app a liveness token after the camera session. In the sandbox
(``MIAODAI_SANDBOX``) the button "Start face check" stands for the camera, and a select — labelled as the
sandbox's — picks what the camera would have seen, i.e. the sandbox face provider's documented test tokens
(docs/sandbox.md). Outside the sandbox no camera SDK is wired into the web app yet, and the page says so.

Personal data: the name and ID number are sent back into the form only after a refusal that asks the
borrower to correct what they typed; otherwise only the masked forms the API shows (``张*``,
``110101********0011``) appear. Nothing typed is logged.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from miaodai.container import Container
from miaodai.core.errors import DomainError
from miaodai.identity import kyc_service, session_service
from miaodai.identity.consent_errors import ConsentErrors
from miaodai.identity.kyc_errors import AGE_REJECTIONS, ID_REJECTIONS, NAME_REJECTIONS, KycErrors
from miaodai.identity.kyc_providers import FACE_TEST_TOKENS, FACE_TIMEOUT_TOKEN, FaceOutcome, SandboxFaceLiveness
from miaodai.identity.models import ConsentKind, KycAttemptKind, KycStatus
from miaodai.identity.sessions import AuthContext
from miaodai.web import journey, page_words
from miaodai.web.consents import consent_items
from miaodai.web.core import PREFIX, WebBorrower, WebContainer, csrf_protect, problem, redirect, render

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)

VERIFY = f"{PREFIX}/verify"


def _(message: str) -> str:
    """Marks an English message id for the catalogs (extracted like the templates' ``_``)."""
    return message


# Refusals about what was typed: the form comes back filled in, to be corrected.
TO_CORRECT = frozenset(spec.code for spec in (*ID_REJECTIONS.values(), *NAME_REJECTIONS.values(),
                                              *AGE_REJECTIONS.values(), KycErrors.CARRIER_NAME_ID_MISMATCH))

# The sandbox face provider's test tokens (docs/sandbox.md), as what the camera would have seen.
PASS_TOKEN = "sandbox-pass"  # noqa: S105 - a documented sandbox value, not a secret
_TOKEN_OF = {outcome: token for token, outcome in FACE_TEST_TOKENS.items()}
SANDBOX_FACES = (
    (PASS_TOKEN, _("Sandbox: a live face that matches the ID (passes)")),
    (_TOKEN_OF[FaceOutcome.LIVENESS_FAILED], _("Sandbox: no live person in front of the camera (liveness fails)")),
    (_TOKEN_OF[FaceOutcome.FACE_MISMATCH], _("Sandbox: someone else's face (does not match the ID photo)")),
    (FACE_TIMEOUT_TOKEN, _("Sandbox: the face service does not answer (timeout)")),
)

# The app's words on this page where the catalog's speak to API clients (more for any page: web/page_words.py).
PAGE_WORDS = page_words.register(__name__, {
    KycErrors.ALREADY_VERIFIED.code: (None, _("Your next step is shown below.")),
    KycErrors.FACE_BEFORE_IDENTITY.code: (None, _("Enter your name and ID number below first.")),
    ConsentErrors.REQUIRED.code: (None, _("Read each of them below and agree to it, then try again.")),
})


def _sandbox_face(container: Container) -> bool:
    return container.settings.sandbox and isinstance(container.face, SandboxFaceLiveness)


# What the browser checks as the ID number is typed (static/app.js: its length and characters, its birth date and
# its check digit), in the same words as the server's refusals, which check the same before asking anyone.
ID_TYPOS = {"wrong-length": KycErrors.ID_WRONG_LENGTH, "bad-characters": KycErrors.ID_BAD_CHARACTERS,
            "bad-birth-date": KycErrors.ID_BAD_BIRTH_DATE, "bad-checksum": KycErrors.ID_BAD_CHECKSUM}


def _page(request: Request, container: Container, auth: AuthContext, *, error: DomainError | None = None,
          typed: dict[str, str] | None = None) -> HTMLResponse:
    overview = kyc_service.overview(container, auth.borrower_id)
    needed = tuple(ConsentKind(kind) for kind in overview.missing_consents)
    verified = overview.status is KycStatus.VERIFIED
    return render(
        request, "verify.html", signed_in=auth, kyc=overview, error=error,
        phone_masked=session_service.borrower_profile(container, auth).phone_masked,
        consents_needed=consent_items(container, auth, needed) if needed else [],
        identity_left=overview.attempts[KycAttemptKind.IDENTITY], face_left=overview.attempts[KycAttemptKind.FACE],
        typed=typed or {"name": "", "id_number": ""}, sandbox_faces=SANDBOX_FACES if _sandbox_face(container) else None,
        id_typos={key: problem(request, DomainError(spec))["message"] for key, spec in ID_TYPOS.items()},
        next_step=journey.progress(container, auth).next_step if verified else None,
        step_titles=journey.STEP_TITLES)


@router.get("/verify", response_class=HTMLResponse)
def verify_page(request: Request, container: WebContainer, auth: WebBorrower) -> HTMLResponse:
    return _page(request, container, auth)


@router.post("/verify/identity")
def submit_identity(request: Request, container: WebContainer, auth: WebBorrower,
                    name: Annotated[str, Form(max_length=64)], id_number: Annotated[str, Form(max_length=32)],
                    ) -> Response:
    """Name + ID number, then the carrier check with the login phone (``POST /v1/kyc/identity``)."""
    try:
        kyc_service.submit_identity(container, auth, name, id_number)
    except DomainError as error:
        typed = {"name": name, "id_number": id_number} if error.code in TO_CORRECT else None
        return _page(request, container, auth, error=error, typed=typed)
    return redirect(request, f"{VERIFY}#face")


@router.post("/verify/face")
def submit_face(request: Request, container: WebContainer, auth: WebBorrower,
                liveness_token: Annotated[str, Form(max_length=256)] = "") -> Response:
    """The face SDK's liveness token (``POST /v1/kyc/face``); in the sandbox, the chosen test token."""
    if not _sandbox_face(container):
        # No camera SDK is wired into the web app: nothing stands for a live face here.
        return _page(request, container, auth, error=DomainError(KycErrors.FACE_LIVENESS_FAILED))
    try:
        kyc_service.submit_face(container, auth, liveness_token or PASS_TOKEN)
    except DomainError as error:
        return _page(request, container, auth, error=error)
    return redirect(request, VERIFY)
