"""Typed domain errors with stable codes, rendered at the edge as RFC 9457 problem details.

Every error a user can meet is an :class:`ErrorSpec` in a catalog: a stable ``code``,
an HTTP status, a message in zh-CN and English and, where the user can do something
about it, what to do. Messages may carry ``{placeholders}`` filled from ``params``.
Business code raises :class:`DomainError`; only ``core.http`` knows about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    code: str
    status: int
    title: str
    message_zh: str
    message_en: str
    action_zh: str | None = None
    action_en: str | None = None


@dataclass(slots=True)
class DomainError(Exception):
    spec: ErrorSpec
    params: dict[str, Any] = field(default_factory=dict)
    detail: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.spec.code}: {self.message_en}"

    @property
    def code(self) -> str:
        return self.spec.code

    @property
    def message_zh(self) -> str:
        return self.spec.message_zh.format(**self.params)

    @property
    def message_en(self) -> str:
        return self.spec.message_en.format(**self.params)

    def problem(self) -> dict[str, Any]:
        spec = self.spec
        body: dict[str, Any] = {
            "type": f"https://miaodai.dev/problems/{spec.code.lower().replace('_', '-')}",
            "title": spec.title,
            "status": spec.status,
            "detail": self.detail or self.message_en,
            "code": spec.code,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
        }
        if spec.action_zh or spec.action_en:
            body["action"] = {
                "zh": (spec.action_zh or "").format(**self.params),
                "en": (spec.action_en or "").format(**self.params),
            }
        # Machine-readable parameters (e.g. retry_after_seconds, locked_until) for clients.
        public = {k: v for k, v in self.params.items() if not k.startswith("_")}
        if public:
            body["params"] = public
        return body


class Errors:
    """Errors of the HTTP edge and the shared kernel (domains keep their own catalogs)."""

    MALFORMED_JSON = ErrorSpec(
        "MALFORMED_JSON", 400, "Malformed JSON",
        "请求内容不是有效的 JSON。", "The request body is not valid JSON.",
        "请检查请求格式后重试。", "Send a valid JSON body.",
    )
    BAD_REQUEST = ErrorSpec(
        "BAD_REQUEST", 400, "Bad request",
        "请求格式有误。", "The request could not be read.",
        "请检查请求格式后重试。", "Check the request format and retry.",
    )
    VALIDATION_FAILED = ErrorSpec(
        "VALIDATION_FAILED", 422, "Invalid request",
        "请求参数有误：{fields}。", "The request has invalid fields: {fields}.",
        "请按接口文档修正这些字段后重试。", "Correct these fields as the API guide describes and retry.",
    )
    BODY_TOO_LARGE = ErrorSpec(
        "BODY_TOO_LARGE", 413, "Request body too large",
        "请求内容过大（上限 {limit} 字节）。", "The request body is larger than {limit} bytes.",
        "请缩小请求内容。", "Send a smaller request.",
    )
    UNSUPPORTED_MEDIA_TYPE = ErrorSpec(
        "UNSUPPORTED_MEDIA_TYPE", 415, "Unsupported media type",
        "请求内容类型须为 application/json。", "The request body must be application/json.",
        "请设置 Content-Type: application/json。", "Set Content-Type: application/json.",
    )
    NOT_FOUND = ErrorSpec(
        "NOT_FOUND", 404, "Not found", "请求的资源不存在。", "The requested resource does not exist.",
    )
    METHOD_NOT_ALLOWED = ErrorSpec(
        "METHOD_NOT_ALLOWED", 405, "Method not allowed",
        "不支持该请求方法。", "This method is not allowed on this resource.",
    )
    UNAUTHENTICATED = ErrorSpec(
        "UNAUTHENTICATED", 401, "Login required",
        "请先登录。", "You need to log in.",
        "请用手机号和验证码登录后重试。", "Log in with your phone number and a code, then retry.",
    )
    FORBIDDEN = ErrorSpec(
        "FORBIDDEN", 403, "Not permitted",
        "您没有执行此操作的权限。", "You are not permitted to do this.",
        "如需此权限请联系管理员。", "Ask an administrator for this permission.",
    )
    INTERNAL = ErrorSpec(
        "INTERNAL_ERROR", 500, "Internal error",
        "系统繁忙，请稍后再试。", "Something went wrong on our side.",
        "请稍后重试；如持续出现请联系客服并提供请求编号。",
        "Retry later; if it persists, contact support with the request id.",
    )
    SERVICE_UNAVAILABLE = ErrorSpec(
        "SERVICE_UNAVAILABLE", 503, "Service unavailable",
        "服务暂不可用。", "The service is not ready.", "请稍后重试。", "Retry shortly.",
    )
