"""HTTP API of phone login, step-up, the borrower's profile, sessions and devices.

Thin: parse the request, call a use case, shape the response. Responses carry masked
phone numbers only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Response, status
from pydantic import BaseModel, ConfigDict, Field

from miaodai.core.fields import RowId
from miaodai.core.http import ClientIp
from miaodai.identity import login_service, session_service
from miaodai.identity.http import CurrentBorrower
from miaodai.identity.login_service import ClientInfo, CodeSent
from miaodai.identity.models import KycStatus, OtpChannel, OtpPurpose
from miaodai.identity.ports import IdentityPortsDep

router = APIRouter(tags=["login and sessions"])

DeviceIdHeader = Annotated[
    str | None, Header(alias="X-Device-Id", description="The app's stable device id, 8–64 visible ASCII characters",
                  json_schema_extra={"x-required": True})  # refused without it (DEVICE_ID_MISSING): core/openapi.py
]
UserAgentHeader = Annotated[str | None, Header(alias="User-Agent", include_in_schema=False)]


class CodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: str = Field(max_length=64, examples=["13812345678"])
    channel: OtpChannel = OtpChannel.SMS


class StepUpCodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: OtpChannel = OtpChannel.SMS


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: str = Field(max_length=64, examples=["13812345678"])
    code: str = Field(pattern=r"^\d{6}$", examples=["123456"])


class StepUpRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^\d{6}$", examples=["123456"])


class CodeSentResponse(BaseModel):
    phone_masked: str
    purpose: OtpPurpose
    channel: OtpChannel
    expires_at: datetime
    resend_after: datetime


class BorrowerResponse(BaseModel):
    borrower_id: int
    phone_masked: str
    status: str
    kyc_status: KycStatus
    created_at: datetime


class LoginResponse(BaseModel):
    token: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_at: datetime
    session_id: int
    device_id: int
    new_borrower: bool
    borrower: BorrowerResponse


class StepUpResponse(BaseModel):
    step_up_at: datetime
    valid_until: datetime


class SessionResponse(BaseModel):
    session_id: int
    device_id: int
    device_label: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    step_up_at: datetime | None
    current: bool


class DeviceResponse(BaseModel):
    device_id: int
    label: str
    trusted: bool
    first_seen_at: datetime
    last_seen_at: datetime
    active_sessions: int
    current: bool


class RevokedResponse(BaseModel):
    revoked: int


def _code_sent(sent: CodeSent) -> CodeSentResponse:
    return CodeSentResponse(phone_masked=sent.phone_masked, purpose=sent.purpose, channel=sent.channel,
                            expires_at=sent.expires_at, resend_after=sent.resend_after)


@router.post("/v1/auth/otp", summary="Send a login code by SMS or voice call")
def request_login_code(
    body: CodeRequest, ports: IdentityPortsDep, ip: ClientIp, device_id: DeviceIdHeader = None,
) -> CodeSentResponse:
    client = ClientInfo(ip=ip, device_key=device_id)
    return _code_sent(login_service.request_login_code(ports, phone=body.phone, channel=body.channel,
                                                       client=client))


@router.post("/v1/auth/login", summary="Log in (or sign up) with the code; returns a session token")
def log_in(
    body: LoginRequest, ports: IdentityPortsDep, ip: ClientIp, device_id: DeviceIdHeader = None,
    user_agent: UserAgentHeader = None,
) -> LoginResponse:
    client = ClientInfo(ip=ip, device_key=device_id, user_agent=user_agent)
    result = login_service.log_in_with_code(ports, phone=body.phone, code=body.code, client=client)
    profile = session_service.borrower_profile_of(ports, result.borrower)
    return LoginResponse(
        token=result.token, expires_at=result.session.expires_at, session_id=result.session.id,
        device_id=result.session.device_id, new_borrower=result.new_borrower,
        borrower=BorrowerResponse(**vars(profile)),
    )


@router.post("/v1/auth/logout", status_code=status.HTTP_204_NO_CONTENT, summary="Log out this session")
def log_out(auth: CurrentBorrower, ports: IdentityPortsDep) -> Response:
    session_service.log_out(ports, auth)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/auth/step-up/otp", summary="Send a step-up code to the borrower's own phone")
def request_step_up_code(
    auth: CurrentBorrower, ports: IdentityPortsDep, ip: ClientIp, body: StepUpCodeRequest = StepUpCodeRequest(),
) -> CodeSentResponse:
    return _code_sent(login_service.request_step_up_code(ports, auth, channel=body.channel, ip=ip))


@router.post("/v1/auth/step-up", summary="Confirm a step-up code for this session")
def confirm_step_up(body: StepUpRequest, auth: CurrentBorrower, ports: IdentityPortsDep) -> StepUpResponse:
    at = login_service.confirm_step_up(ports, auth, code=body.code)
    return StepUpResponse(step_up_at=at, valid_until=at + timedelta(seconds=ports.settings.step_up_ttl_seconds))


@router.get("/v1/me", summary="The logged-in borrower (phone masked)")
def me(auth: CurrentBorrower, ports: IdentityPortsDep) -> BorrowerResponse:
    return BorrowerResponse(**vars(session_service.borrower_profile(ports, auth)))


@router.get("/v1/sessions", summary="Live sessions; the calling one is marked current")
def list_sessions(auth: CurrentBorrower, ports: IdentityPortsDep) -> list[SessionResponse]:
    return [SessionResponse(**vars(view)) for view in session_service.list_sessions(ports, auth)]


@router.delete("/v1/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Log out one session (on any device)")
def revoke_session(session_id: RowId, auth: CurrentBorrower, ports: IdentityPortsDep) -> Response:
    session_service.revoke_session(ports, auth, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/sessions/revoke-all", summary="Log out every session, this one included")
def revoke_all_sessions(auth: CurrentBorrower, ports: IdentityPortsDep) -> RevokedResponse:
    return RevokedResponse(revoked=session_service.revoke_all_sessions(ports, auth))


@router.get("/v1/devices", summary="Devices the borrower has logged in from")
def list_devices(auth: CurrentBorrower, ports: IdentityPortsDep) -> list[DeviceResponse]:
    return [DeviceResponse(**vars(view)) for view in session_service.list_devices(ports, auth)]
