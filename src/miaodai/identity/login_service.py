"""Use cases of phone login and step-up: send a one-time code, log in with it, confirm a step-up.

Each use case is one transaction that writes its audit entry, with one deliberate
exception: sending a code records the challenge and commits *before* the carrier is
called, then records the delivery outcome in a second transaction. A database
transaction is never held open across a call to an outside party (on SQLite it would
block every writer for the length of the call), and because the challenge is already
committed, concurrent requests count it against the limits.

Refusals that must leave a trace (a wrong guess counts, the last one locks the number)
are committed first and raised afterwards, see :func:`_commit_then_raise`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from miaodai.core.errors import DomainError
from miaodai.core.masking import mask_phone
from miaodai.identity import otp
from miaodai.identity.devices import check_device_key, device_label
from miaodai.identity.login_errors import (
    DEVICE_KEY_PROBLEMS,
    GUESS_THROTTLES,
    PHONE_REJECTIONS,
    SEND_REFUSALS,
    LoginErrors,
    locked_out,
    retry_later,
)
from miaodai.identity.login_store import (
    GuessCounts,
    count_guess,
    is_known_device,
    latest_delivered_challenge,
    lock_phone,
    phone_bidx_of,
    send_history,
)
from miaodai.identity.models import (
    DEVICE_INDEX,
    IP_INDEX,
    PHONE_FIELD,
    Borrower,
    BorrowerSession,
    BorrowerStatus,
    DeliveryStatus,
    Device,
    OtpChallenge,
    OtpChannel,
    OtpPurpose,
)
from miaodai.identity.phone import InvalidPhoneNumber, parse_mainland_mobile
from miaodai.identity.ports import IdentityPorts
from miaodai.identity.sessions import AuthContext, find_or_add_device, open_session
from miaodai.identity.sms import SmsDelivery

ANONYMOUS = "anonymous"
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ClientInfo:
    """What the HTTP edge knows about the caller's device and network."""

    ip: str
    device_key: str | None
    user_agent: str | None = None


@dataclass(frozen=True)
class CodeSent:
    phone_masked: str
    purpose: OtpPurpose
    channel: OtpChannel
    expires_at: datetime
    resend_after: datetime


@dataclass(frozen=True)
class SigningCode:
    """A signing code just redeemed: what the signature's record says about how the borrower confirmed."""

    challenge_id: int
    channel: OtpChannel
    phone_masked: str
    sent_at: datetime
    confirmed_at: datetime


@dataclass(frozen=True)
class LoginResult:
    token: str
    session: BorrowerSession
    borrower: Borrower
    new_borrower: bool


def parse_phone(text: str) -> str:
    try:
        return parse_mainland_mobile(text)
    except InvalidPhoneNumber as exc:
        raise DomainError(PHONE_REJECTIONS[exc.rejection]) from None


def require_device_key(raw: str | None) -> str:
    problem = check_device_key(raw)
    if problem is not None:
        raise DomainError(DEVICE_KEY_PROBLEMS[problem])
    assert raw is not None
    return raw


def request_login_code(ports: IdentityPorts, *, phone: str, channel: OtpChannel, client: ClientInfo) -> CodeSent:
    device_key = require_device_key(client.device_key)
    phone_e164 = parse_phone(phone)
    return _send_code(
        ports, phone_e164=phone_e164, purpose=OtpPurpose.LOGIN, channel=channel, ip=client.ip,
        device_key_bidx=ports.vault.blind_index(device_key, DEVICE_INDEX), actor=ANONYMOUS,
    )


def _own_phone_and_device(ports: IdentityPorts, auth: AuthContext) -> tuple[str, str]:
    """The borrower's own number (E.164) and the blind index of the device they are signed in on."""
    with ports.db.transaction() as session:
        borrower = session.get_one(Borrower, auth.borrower_id)
        device = session.get_one(Device, auth.device_id)
        return ports.vault.decrypt(borrower.phone_enc, PHONE_FIELD), device.device_key_bidx


def request_step_up_code(ports: IdentityPorts, auth: AuthContext, *, channel: OtpChannel, ip: str) -> CodeSent:
    """A step-up code always goes to the borrower's own number, never to one given in the request."""
    phone_e164, device_key_bidx = _own_phone_and_device(ports, auth)
    return _send_code(
        ports, phone_e164=phone_e164, purpose=OtpPurpose.STEP_UP, channel=channel, ip=ip,
        device_key_bidx=device_key_bidx, actor=auth.actor,
    )


def request_signing_code(ports: IdentityPorts, auth: AuthContext, *, binding: str, use_zh: str,
                         channel: OtpChannel, ip: str) -> CodeSent:
    """A code that signs one document and nothing else: sent to the borrower's own number, its hash bound to
    ``binding`` (the contract's number and SHA-256), so it cannot sign another text, log in or step up; the
    message names what it signs (``use_zh``)."""
    phone_e164, device_key_bidx = _own_phone_and_device(ports, auth)
    return _send_code(
        ports, phone_e164=phone_e164, purpose=OtpPurpose.CONTRACT_SIGN, channel=channel, ip=ip,
        device_key_bidx=device_key_bidx, actor=auth.actor, binding=binding, use_zh=use_zh,
    )


def redeem_signing_code(ports: IdentityPorts, session: Session, auth: AuthContext, *, binding: str, code: str,
                        now: datetime) -> SigningCode | DomainError:
    """Judge a signing code for ``binding`` inside the signing's own transaction: the code, once accepted, is
    consumed with the signature (one commit). A refusal is returned, not raised: the caller commits what it
    recorded (a counted wrong guess, a lockout) and raises it afterwards, so six digits cannot be walked."""
    borrower = session.get_one(Borrower, auth.borrower_id)
    refusal = _redeem_code(ports, session, phone_bidx=borrower.phone_bidx, purpose=OtpPurpose.CONTRACT_SIGN,
                           guess=code, now=now, actor=auth.actor, binding=binding)
    if refusal is not None:
        return refusal
    challenge = latest_delivered_challenge(session, borrower.phone_bidx, OtpPurpose.CONTRACT_SIGN)
    assert challenge is not None  # the one just redeemed
    return SigningCode(
        challenge_id=challenge.id, channel=challenge.channel, sent_at=challenge.created_at, confirmed_at=now,
        phone_masked=mask_phone(ports.vault.decrypt(borrower.phone_enc, PHONE_FIELD)))


def _bound(purpose: OtpPurpose, binding: str) -> str:
    """What a code's hash is bound to besides the number: its purpose, and for a signing code the document."""
    return f"{purpose.value}:{binding}" if binding else purpose.value


def _send_code(
    ports: IdentityPorts, *, phone_e164: str, purpose: OtpPurpose, channel: OtpChannel, ip: str,
    device_key_bidx: str, actor: str, binding: str = "", use_zh: str = "",
) -> CodeSent:
    code = otp.generate_code()
    challenge_id, sent = _record_challenge(
        ports, phone_e164=phone_e164, purpose=purpose, channel=channel, code=code,
        ip_bidx=ports.vault.blind_index(ip, IP_INDEX), device_key_bidx=device_key_bidx, actor=actor,
        binding=binding,
    )
    ttl_minutes = ports.settings.otp_ttl_seconds // 60
    delivery = _deliver(ports, phone_e164, _message_text(code, purpose, channel, ttl_minutes, use_zh), channel)
    _record_delivery(ports, challenge_id, delivery, actor=actor)
    if not delivery.accepted:
        spec = LoginErrors.SMS_DELIVERY_FAILED if channel is OtpChannel.SMS else LoginErrors.VOICE_DELIVERY_FAILED
        raise DomainError(spec, params={"channel": channel.value})
    return sent


def _record_challenge(
    ports: IdentityPorts, *, phone_e164: str, purpose: OtpPurpose, channel: OtpChannel, code: str,
    ip_bidx: str, device_key_bidx: str, actor: str, binding: str = "",
) -> tuple[int, CodeSent]:
    limits = otp.OtpLimits.from_settings(ports.settings)
    now = ports.clock.now()
    phone_bidx = phone_bidx_of(ports.vault, phone_e164)
    with ports.db.transaction() as session:
        lock_phone(session, phone_bidx)
        history = send_history(
            session, phone_bidx=phone_bidx, ip_bidx=ip_bidx, device_key_bidx=device_key_bidx,
            now=now, limits=limits,
        )
        decision = otp.decide_send(history, channel=channel.value, now=now, limits=limits)
        if not decision.allowed:
            raise _send_refused(decision, now=now, limits=limits)
        challenge = OtpChallenge(
            phone_bidx=phone_bidx, purpose=purpose, channel=channel,
            code_hash=otp.hash_code(_code_key(ports), phone_bidx=phone_bidx, purpose=_bound(purpose, binding),
                                    code=code),
            created_at=now, expires_at=now + limits.ttl, wrong_guesses=0, delivery=DeliveryStatus.PENDING,
            ip_bidx=ip_bidx, device_key_bidx=device_key_bidx,
        )
        session.add(challenge)
        session.flush()
        ports.audit.record(
            session, actor=actor, action="otp.requested", subject=_phone_subject(phone_bidx),
            details={"purpose": purpose.value, "channel": channel.value, "phone_masked": mask_phone(phone_e164),
                     "challenge_id": challenge.id, **({"bound_to": binding} if binding else {})},
        )
    sent = CodeSent(mask_phone(phone_e164), purpose, channel, challenge.expires_at, now + limits.resend_cooldown)
    return challenge.id, sent


def _send_refused(decision: otp.SendDecision, *, now: datetime, limits: otp.OtpLimits) -> DomainError:
    assert decision.refusal is not None and decision.retry_at is not None
    refusal = decision.refusal
    if refusal is otp.SendRefusal.LOCKED_OUT:
        return locked_out(LoginErrors.LOGIN_LOCKED, now=now, locked_until=decision.retry_at)
    caps = {
        otp.SendRefusal.COOLDOWN: int(limits.resend_cooldown.total_seconds()),
        otp.SendRefusal.PHONE_HOURLY_CAP: limits.max_per_phone_per_hour,
        otp.SendRefusal.PHONE_DAILY_CAP: limits.max_per_phone_per_day,
        otp.SendRefusal.DEVICE_HOURLY_CAP: limits.max_per_device_per_hour,
        otp.SendRefusal.IP_HOURLY_CAP: limits.max_per_ip_per_hour,
    }
    return retry_later(SEND_REFUSALS[refusal], now=now, retry_at=decision.retry_at, limit=caps[refusal])


def _record_delivery(ports: IdentityPorts, challenge_id: int, delivery: SmsDelivery, *, actor: str) -> None:
    with ports.db.transaction() as session:
        challenge = session.get_one(OtpChallenge, challenge_id)
        challenge.delivery = DeliveryStatus.SENT if delivery.accepted else DeliveryStatus.FAILED
        ports.audit.record(
            session, actor=actor, action="otp.delivered" if delivery.accepted else "otp.delivery_failed",
            subject=_phone_subject(challenge.phone_bidx),
            details={"challenge_id": challenge_id, "channel": challenge.channel.value,
                     "provider_message_id": delivery.provider_message_id, "reason": delivery.failure_reason},
        )


def _deliver(ports: IdentityPorts, phone_e164: str, text: str, channel: OtpChannel) -> SmsDelivery:
    """Hand the code to the carrier; a carrier that errors or times out counts as a failed delivery,
    so the borrower gets the same "ask for a voice code" answer instead of a 500."""
    try:
        return ports.sms.send(phone_e164, text, channel)
    except Exception as exc:
        log.warning("sms_provider_error", channel=channel.value, error=type(exc).__name__)
        return SmsDelivery(False, failure_reason=f"provider error: {type(exc).__name__}")


def _message_text(code: str, purpose: OtpPurpose, channel: OtpChannel, ttl_minutes: int, use_zh: str = "") -> str:
    if channel is OtpChannel.VOICE:
        what = f"，用于{use_zh}" if use_zh else ""
        return f"您好，这里是秒贷。您的验证码是 {code}{what}，重复一遍，{code}。请勿告诉他人。"
    use = use_zh or ("登录" if purpose is OtpPurpose.LOGIN else "确认本人操作")
    return f"【秒贷】验证码 {code}，用于{use}，{ttl_minutes} 分钟内有效。切勿告诉他人，客服不会向您索要验证码。"


def log_in_with_code(ports: IdentityPorts, *, phone: str, code: str, client: ClientInfo) -> LoginResult:
    """Redeem a login code: first login opens the borrower's account, every login a new session."""
    device_key = require_device_key(client.device_key)
    phone_e164 = parse_phone(phone)
    phone_bidx = phone_bidx_of(ports.vault, phone_e164)
    now = ports.clock.now()
    with ports.db.transaction() as session:
        refusal = _redeem_code(ports, session, phone_bidx=phone_bidx, purpose=OtpPurpose.LOGIN,
                               guess=code, now=now, actor=ANONYMOUS,
                               ip_bidx=ports.vault.blind_index(client.ip, IP_INDEX),
                               device_key_bidx=ports.vault.blind_index(device_key, DEVICE_INDEX))
        if refusal is None:
            result = _open_borrower_session(ports, session, phone_e164=phone_e164, phone_bidx=phone_bidx,
                                            device_key=device_key, client=client, now=now)
    _commit_then_raise(refusal)
    return result


def confirm_step_up(ports: IdentityPorts, auth: AuthContext, *, code: str) -> datetime:
    """Redeem a step-up code; the calling session counts as freshly confirmed from now."""
    now = ports.clock.now()
    with ports.db.transaction() as session:
        borrower = session.get_one(Borrower, auth.borrower_id)
        refusal = _redeem_code(ports, session, phone_bidx=borrower.phone_bidx, purpose=OtpPurpose.STEP_UP,
                               guess=code, now=now, actor=auth.actor)
        if refusal is None:
            session.get_one(BorrowerSession, auth.session_id).step_up_at = now
            ports.audit.record(
                session, actor=auth.actor, action="step_up.confirmed", subject=auth.actor,
                details={"session_id": auth.session_id, "device_id": auth.device_id},
            )
    _commit_then_raise(refusal)
    return now


def _commit_then_raise(refusal: DomainError | None) -> None:
    """Raised outside the transaction so what the refusal recorded (a counted guess, a lockout) stays."""
    if refusal is not None:
        raise refusal


def _redeem_code(
    ports: IdentityPorts, session: Session, *, phone_bidx: str, purpose: OtpPurpose, guess: str, now: datetime,
    actor: str, binding: str = "", ip_bidx: str | None = None, device_key_bidx: str | None = None,
) -> DomainError | None:
    """Judge a guess at the latest code for the number and purpose, and record its consequences.

    A login guess names the guesser's network and device: once either has had its wrong codes, its guesses
    are refused unjudged and never count against the number, so one guesser cannot lock the borrower. Only
    the number's daily cap locks the number, and not for devices the borrower has logged in from. Step-up
    and signing codes (no ``device_key_bidx``) come from a logged-in session's own device: the number's
    wrong codes count them, its lock does not stop them.
    """
    limits = otp.OtpLimits.from_settings(ports.settings)
    lock_phone(session, phone_bidx)
    before = count_guess(session, phone_bidx=phone_bidx, ip_bidx=ip_bidx, device_key_bidx=device_key_bidx,
                         now=now, limits=limits, wrong=False)
    throttled = otp.guess_throttle(before.throttles, now)
    if throttled is not None:
        throttle, until = throttled
        return retry_later(GUESS_THROTTLES[throttle], now=now, retry_at=until, limit=before.throttles[throttle].limit)
    known = device_key_bidx is None or (
        before.wrong_today.count >= before.wrong_today.limit and is_known_device(session, phone_bidx, device_key_bidx))
    locked_until = otp.number_locked(before.wrong_today, known_device=known)
    challenge = latest_delivered_challenge(session, phone_bidx, purpose)
    state = None if challenge is None else otp.ChallengeState(
        challenge.expires_at, challenge.consumed_at, challenge.wrong_guesses)
    matches = challenge is not None and otp.code_matches(
        _code_key(ports), phone_bidx=phone_bidx, purpose=_bound(purpose, binding), guess=guess,
        stored_hash=challenge.code_hash,
    )
    outcome = otp.judge_guess(state, matches=matches, locked_until=locked_until, now=now, limits=limits)
    if outcome is otp.GuessOutcome.LOCKED_OUT and locked_until is not None:
        return locked_out(LoginErrors.LOGIN_LOCKED, now=now, locked_until=locked_until)
    if challenge is None or state is None:
        return DomainError(LoginErrors.OTP_NOT_REQUESTED)
    if outcome is otp.GuessOutcome.ACCEPTED:
        challenge.consumed_at = now
        return None
    if outcome in (otp.GuessOutcome.WRONG, otp.GuessOutcome.WRONG_AND_BURNED):
        after = count_guess(session, phone_bidx=phone_bidx, ip_bidx=ip_bidx, device_key_bidx=device_key_bidx,
                            now=now, limits=limits, wrong=True)
        if not known and after.wrong_today.count >= after.wrong_today.limit:
            known = is_known_device(session, phone_bidx, device_key_bidx)
        return _count_wrong_guess(ports, session, challenge, state, after, known_device=known, now=now,
                                  limits=limits, actor=actor)
    if outcome is otp.GuessOutcome.EXPIRED:
        return DomainError(LoginErrors.OTP_EXPIRED, params={"ttl_minutes": int(limits.ttl.total_seconds()) // 60})
    if outcome is otp.GuessOutcome.ALREADY_USED:
        return DomainError(LoginErrors.OTP_ALREADY_USED)
    return DomainError(LoginErrors.OTP_NOT_REQUESTED)


def _count_wrong_guess(
    ports: IdentityPorts, session: Session, challenge: OtpChallenge, state: otp.ChallengeState, after: GuessCounts,
    *, known_device: bool, now: datetime, limits: otp.OtpLimits, actor: str,
) -> DomainError:
    """A wrong code, already counted against the guesser's signals and the number's day (``after``)."""
    challenge.wrong_guesses += 1
    subject = _phone_subject(challenge.phone_bidx)
    details = {"challenge_id": challenge.id, "purpose": challenge.purpose.value,
               "wrong_guesses": challenge.wrong_guesses, "wrong_today": after.wrong_today.count}
    locked_until = otp.number_locked(after.wrong_today, known_device=known_device)
    if locked_until is not None:
        # The number's last wrong code of the day: new devices wait for tomorrow, the owner's phones do not.
        challenge.consumed_at = now
        ports.audit.record(session, actor=actor, action="login.locked_out", subject=subject,
                               details={**details, "locked_until": locked_until.isoformat()})
        return locked_out(LoginErrors.LOGIN_LOCKED, now=now, locked_until=locked_until)
    left = otp.wrong_guesses_left(state, limits)
    if left == 0:
        # The last allowed wrong guess burns the code, so six digits cannot be walked.
        challenge.consumed_at = now
        ports.audit.record(session, actor=actor, action="otp.burned", subject=subject, details=details)
        return DomainError(LoginErrors.OTP_TOO_MANY_WRONG_GUESSES)
    throttled = otp.guess_throttle(after.throttles, now)
    if throttled is not None:
        throttle, until = throttled
        ports.audit.record(session, actor=actor, action="otp.guesser_throttled", subject=subject,
                               details={**details, "signal": throttle.value, "until": until.isoformat()})
        return retry_later(GUESS_THROTTLES[throttle], now=now, retry_at=until, limit=after.throttles[throttle].limit)
    ports.audit.record(session, actor=actor, action="otp.wrong_guess", subject=subject, details=details)
    left = min([left, *(use.limit - use.count for use in after.throttles.values())]
               + ([] if known_device else [after.wrong_today.limit - after.wrong_today.count]))
    return DomainError(LoginErrors.OTP_WRONG_CODE, params={"attempts_left": max(left, 1)})


def _open_borrower_session(
    ports: IdentityPorts, session: Session, *, phone_e164: str, phone_bidx: str, device_key: str, client: ClientInfo,
    now: datetime,
) -> LoginResult:
    borrower = session.execute(select(Borrower).where(Borrower.phone_bidx == phone_bidx)).scalar_one_or_none()
    new_borrower = borrower is None
    if borrower is None:
        borrower = Borrower(phone_enc=ports.vault.encrypt(phone_e164, PHONE_FIELD), phone_bidx=phone_bidx,
                            status=BorrowerStatus.ACTIVE, created_at=now)
        session.add(borrower)
        session.flush()
    elif borrower.status is BorrowerStatus.CLOSED:
        raise DomainError(LoginErrors.ACCOUNT_CLOSED)
    device = find_or_add_device(session, ports.vault, borrower_id=borrower.id, device_key=device_key,
                                label=device_label(client.user_agent), now=now)
    token, record = open_session(session, borrower_id=borrower.id, device_id=device.id,
                                 pepper=ports.settings.session_pepper, now=now, ttl=ports.session_ttl)
    # The login code was just proven on this device: that is as fresh as a step-up gets.
    record.step_up_at = now
    actor = f"borrower:{borrower.id}"
    if new_borrower:
        ports.audit.record(session, actor=actor, action="borrower.registered", subject=actor,
                               details={"phone_masked": mask_phone(phone_e164)})
    ports.audit.record(session, actor=actor, action="login.succeeded", subject=actor,
                           details={"session_id": record.id, "device_id": device.id, "new_borrower": new_borrower})
    return LoginResult(token, record, borrower, new_borrower)


def _code_key(ports: IdentityPorts) -> bytes:
    # The blind-index key: a secret kept apart from the data keys, never rotated under live codes.
    return ports.vault.keyring.index_key


def _phone_subject(phone_bidx: str) -> str:
    return f"phone:{phone_bidx[:16]}"
