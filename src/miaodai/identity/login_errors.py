"""Errors of phone login, sessions and step-up (stable codes, zh-CN + English, what to do).

Limits and lockouts always say when the borrower can try again, in Beijing time, and
carry the machine-readable ``retry_after_seconds`` / ``locked_until`` in ``params``
plus a ``Retry-After`` header (see :func:`retry_later`).
"""

from __future__ import annotations

import math
from datetime import datetime

from miaodai.core.clock import as_utc, local_display
from miaodai.core.errors import DomainError, ErrorSpec
from miaodai.identity.devices import DeviceKeyProblem
from miaodai.identity.otp import GuessThrottle, SendRefusal
from miaodai.identity.phone import PhoneRejection

_RETRY_ZH = "请于 {retry_at_local}（北京时间）后重试。"
_RETRY_EN = "Try again after {retry_at_local} (Beijing time)."


class LoginErrors:
    PHONE_INVALID = ErrorSpec(
        "PHONE_INVALID", 422, "Not a phone number",
        "手机号格式不正确。", "This is not a valid phone number.",
        "请检查后重新输入 11 位手机号。", "Check the number and enter your 11-digit mobile number.",
    )
    PHONE_LANDLINE = ErrorSpec(
        "PHONE_LANDLINE", 422, "Landline number",
        "这是固定电话号码，无法接收验证码。", "This is a landline number; it cannot receive codes.",
        "请使用您本人的中国大陆手机号。", "Use your own mainland China mobile number.",
    )
    PHONE_NOT_MOBILE = ErrorSpec(
        "PHONE_NOT_MOBILE", 422, "Not a mobile number",
        "这是服务号码（如 400/800 号码），无法注册。", "This is a service number (such as 400/800), not a mobile.",
        "请使用您本人的中国大陆手机号。", "Use your own mainland China mobile number.",
    )
    PHONE_SHORT_NUMBER = ErrorSpec(
        "PHONE_SHORT_NUMBER", 422, "Short number",
        "这是短号码或服务号码，无法注册。", "This is a short or service number, not a mobile number.",
        "请输入完整的 11 位手机号。", "Enter your full 11-digit mobile number.",
    )
    PHONE_NOT_MAINLAND = ErrorSpec(
        "PHONE_NOT_MAINLAND", 422, "Only mainland China numbers",
        "目前仅支持中国大陆（+86）手机号，暂不支持港澳台及境外号码。",
        "Only mainland China (+86) mobile numbers are supported; other countries and regions are not.",
        "请使用中国大陆手机号。", "Use a mainland China mobile number.",
    )
    DEVICE_ID_MISSING = ErrorSpec(
        "DEVICE_ID_MISSING", 400, "Device id missing",
        "缺少设备标识。", "The X-Device-Id header is missing.",
        "请更新或重新打开 App 后重试。", "Send the X-Device-Id header (update or restart the app).",
    )
    DEVICE_ID_INVALID = ErrorSpec(
        "DEVICE_ID_INVALID", 400, "Device id invalid",
        "设备标识格式不正确。", "The X-Device-Id header must be 8–64 visible ASCII characters.",
        "请更新或重新打开 App 后重试。", "Send a valid X-Device-Id (update or restart the app).",
    )
    OTP_RESEND_COOLDOWN = ErrorSpec(
        "OTP_RESEND_COOLDOWN", 429, "Wait before asking for another code",
        "验证码刚刚已发送，请 {retry_after_seconds} 秒后（{retry_at_local}，北京时间）再获取。",
        "A code was sent moments ago; you can ask again in {retry_after_seconds} s "
        "({retry_at_local} Beijing time).",
        "请留意短信，稍候再试；" + _RETRY_ZH,
        "Check your messages, or wait. " + _RETRY_EN,
    )
    OTP_PHONE_HOURLY_LIMIT = ErrorSpec(
        "OTP_PHONE_HOURLY_LIMIT", 429, "Too many codes this hour",
        "该手机号 1 小时内获取验证码次数已达上限（{limit} 次），请于 {retry_at_local}（北京时间）后重试。",
        "This number has had the most codes allowed in one hour ({limit}); "
        "try again after {retry_at_local} (Beijing time).",
        _RETRY_ZH, _RETRY_EN,
    )
    OTP_PHONE_DAILY_LIMIT = ErrorSpec(
        "OTP_PHONE_DAILY_LIMIT", 429, "Too many codes today",
        "该手机号今日获取验证码次数已达上限（{limit} 次），请于 {retry_at_local}（北京时间）后重试。",
        "This number has had the most codes allowed today ({limit}); "
        "try again after {retry_at_local} (Beijing time).",
        _RETRY_ZH, _RETRY_EN,
    )
    OTP_DEVICE_HOURLY_LIMIT = ErrorSpec(
        "OTP_DEVICE_HOURLY_LIMIT", 429, "Too many codes from this device",
        "此设备 1 小时内获取验证码次数过多，请于 {retry_at_local}（北京时间）后重试。",
        "This device has asked for too many codes in one hour; try again after {retry_at_local} (Beijing time).",
        _RETRY_ZH, _RETRY_EN,
    )
    OTP_IP_HOURLY_LIMIT = ErrorSpec(
        "OTP_IP_HOURLY_LIMIT", 429, "Too many codes from this network",
        "当前网络 1 小时内获取验证码次数过多，请于 {retry_at_local}（北京时间）后重试。",
        "Too many codes were asked for from this network in one hour; "
        "try again after {retry_at_local} (Beijing time).",
        "请切换网络（如改用移动数据），或" + _RETRY_ZH,
        "Switch networks (e.g. to mobile data), or try again after {retry_at_local} (Beijing time).",
    )
    OTP_NOT_REQUESTED = ErrorSpec(
        "OTP_NOT_REQUESTED", 400, "No code to check",
        "请先获取验证码。", "No code has been sent to this number for this step.",
        "请点击“获取验证码”，收到后再输入。", "Ask for a code first, then enter it.",
    )
    OTP_WRONG_CODE = ErrorSpec(
        "OTP_WRONG_CODE", 400, "Wrong code",
        "验证码不正确，还可尝试 {attempts_left} 次。", "The code is wrong; {attempts_left} attempts left.",
        "请核对短信或语音中的 6 位验证码后重新输入。", "Check the 6-digit code in the SMS or call and retry.",
    )
    OTP_EXPIRED = ErrorSpec(
        "OTP_EXPIRED", 400, "Code expired",
        "验证码已过期（有效期 {ttl_minutes} 分钟）。", "The code has expired (codes are valid {ttl_minutes} minutes).",
        "请重新获取验证码。", "Ask for a new code.",
    )
    OTP_ALREADY_USED = ErrorSpec(
        "OTP_ALREADY_USED", 400, "Code no longer valid",
        "该验证码已使用或已失效。", "This code has already been used or is no longer valid.",
        "请重新获取验证码。", "Ask for a new code.",
    )
    OTP_TOO_MANY_WRONG_GUESSES = ErrorSpec(
        "OTP_TOO_MANY_WRONG_GUESSES", 429, "Too many wrong tries at this code",
        "验证码错误次数过多，该验证码已失效。", "Too many wrong tries: this code no longer works.",
        "请重新获取验证码；如非本人操作请联系客服。", "Ask for a new code; if this was not you, contact support.",
    )
    OTP_WRONG_CODES_FROM_NETWORK = ErrorSpec(
        "OTP_WRONG_CODES_FROM_NETWORK", 429, "Too many wrong codes from this network",
        "当前网络输入错误验证码次数过多（{limit} 次），请于 {retry_at_local}（北京时间）后重试。",
        "Too many wrong codes were entered from this network ({limit}); "
        "try again after {retry_at_local} (Beijing time).",
        "请切换网络（如改用移动数据），或" + _RETRY_ZH,
        "Switch networks (e.g. to mobile data), or try again after {retry_at_local} (Beijing time).",
    )
    OTP_WRONG_CODES_FROM_DEVICE = ErrorSpec(
        "OTP_WRONG_CODES_FROM_DEVICE", 429, "Too many wrong codes from this device",
        "此设备输入错误验证码次数过多（{limit} 次），请于 {retry_at_local}（北京时间）后重试。",
        "Too many wrong codes were entered on this device ({limit}); "
        "try again after {retry_at_local} (Beijing time).",
        _RETRY_ZH, _RETRY_EN,
    )
    LOGIN_LOCKED = ErrorSpec(
        "LOGIN_LOCKED", 429, "Number locked",
        "该手机号今日验证码错误次数过多，已锁定至 {locked_until_local}（北京时间）；以前登录过的手机不受影响。",
        "This number is locked after too many wrong codes until {locked_until_local} (Beijing time), "
        "except on phones that have logged in to it before.",
        "在以前登录过的手机上仍可获取验证码登录；其他设备请于 {locked_until_local}（北京时间）后重试；"
        "如非本人操作请联系客服。",
        "On a phone you have logged in from before, log in as usual; elsewhere try again after "
        "{locked_until_local} (Beijing time). If this was not you, contact support.",
    )
    SMS_DELIVERY_FAILED = ErrorSpec(
        "SMS_DELIVERY_FAILED", 502, "SMS not delivered",
        "短信发送失败。", "We could not deliver the SMS to this number.",
        "请改用语音验证码（channel=voice），现在即可获取。",
        "Ask for a voice code instead (channel=voice); you can do so right away.",
    )
    VOICE_DELIVERY_FAILED = ErrorSpec(
        "VOICE_DELIVERY_FAILED", 502, "Voice call not delivered",
        "语音验证码呼叫失败。", "We could not call this number with the code.",
        "请确认手机信号良好、未停机，稍后重试；仍无法收到请联系客服。",
        "Check your phone has signal and service, then retry later; if it keeps failing, contact support.",
    )
    ACCOUNT_CLOSED = ErrorSpec(
        "ACCOUNT_CLOSED", 403, "Account closed",
        "该账户已注销，无法登录。", "This account is closed.",
        "如需帮助请联系客服。", "Contact support if you need help.",
    )
    SESSION_NOT_FOUND = ErrorSpec(
        "SESSION_NOT_FOUND", 404, "Session not found",
        "未找到该登录会话，可能已退出。", "No such active session; it may already be logged out.",
        "请刷新会话列表。", "Refresh the session list.",
    )
    STEP_UP_REQUIRED = ErrorSpec(
        "STEP_UP_REQUIRED", 403, "Confirm it is you",
        "此操作需要重新验证身份（验证码有效确认期 {step_up_ttl_seconds} 秒）。",
        "This action needs a fresh confirmation code (valid for {step_up_ttl_seconds} s after you confirm).",
        "请获取验证码（POST /v1/auth/step-up/otp）并提交（POST /v1/auth/step-up）后重试。",
        "Ask for a code (POST /v1/auth/step-up/otp), confirm it (POST /v1/auth/step-up), then retry.",
    )


PHONE_REJECTIONS: dict[PhoneRejection, ErrorSpec] = {
    PhoneRejection.INVALID: LoginErrors.PHONE_INVALID,
    PhoneRejection.LANDLINE: LoginErrors.PHONE_LANDLINE,
    PhoneRejection.NOT_MOBILE: LoginErrors.PHONE_NOT_MOBILE,
    PhoneRejection.SHORT_NUMBER: LoginErrors.PHONE_SHORT_NUMBER,
    PhoneRejection.NOT_MAINLAND: LoginErrors.PHONE_NOT_MAINLAND,
}

DEVICE_KEY_PROBLEMS: dict[DeviceKeyProblem, ErrorSpec] = {
    DeviceKeyProblem.MISSING: LoginErrors.DEVICE_ID_MISSING,
    DeviceKeyProblem.INVALID: LoginErrors.DEVICE_ID_INVALID,
}

SEND_REFUSALS: dict[SendRefusal, ErrorSpec] = {
    SendRefusal.LOCKED_OUT: LoginErrors.LOGIN_LOCKED,
    SendRefusal.COOLDOWN: LoginErrors.OTP_RESEND_COOLDOWN,
    SendRefusal.PHONE_HOURLY_CAP: LoginErrors.OTP_PHONE_HOURLY_LIMIT,
    SendRefusal.PHONE_DAILY_CAP: LoginErrors.OTP_PHONE_DAILY_LIMIT,
    SendRefusal.DEVICE_HOURLY_CAP: LoginErrors.OTP_DEVICE_HOURLY_LIMIT,
    SendRefusal.IP_HOURLY_CAP: LoginErrors.OTP_IP_HOURLY_LIMIT,
}

GUESS_THROTTLES: dict[GuessThrottle, ErrorSpec] = {
    GuessThrottle.IP: LoginErrors.OTP_WRONG_CODES_FROM_NETWORK,
    GuessThrottle.IP_PHONE: LoginErrors.OTP_WRONG_CODES_FROM_NETWORK,
    GuessThrottle.DEVICE: LoginErrors.OTP_WRONG_CODES_FROM_DEVICE,
}


def retry_later(spec: ErrorSpec, *, now: datetime, retry_at: datetime, **params: object) -> DomainError:
    """An error that says when to come back: in the message, in ``params`` and as Retry-After."""
    seconds = max(math.ceil((as_utc(retry_at) - as_utc(now)).total_seconds()), 1)
    display = local_display(retry_at)
    values: dict[str, object] = {
        "retry_after_seconds": seconds,
        "retry_at": as_utc(retry_at).isoformat(),
        "retry_at_local": display,
        **params,
    }
    return DomainError(spec, params=values, headers={"Retry-After": str(seconds)})


def locked_out(spec: ErrorSpec, *, now: datetime, locked_until: datetime) -> DomainError:
    """A lockout: like :func:`retry_later`, naming the instant the lock ends as ``locked_until``."""
    return retry_later(
        spec, now=now, retry_at=locked_until,
        locked_until=as_utc(locked_until).isoformat(), locked_until_local=local_display(locked_until),
    )
