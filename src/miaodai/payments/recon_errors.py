"""Errors of reconciliation (对账): running it against a channel's daily statement, and the staff queue.

A catalog of its own (not appended to ``PaymentErrors``) so the reconciliation codes read as one
section of docs/errors.md.
"""

from __future__ import annotations

from miaodai.core.errors import ErrorSpec

_NOTHING_RECORDED_ZH = "本次未记录任何内容，可稍后重新运行。"
_NOTHING_RECORDED_EN = "Nothing was recorded; run it again later."


class ReconErrors:
    CHANNEL_UNKNOWN = ErrorSpec(
        "RECON_CHANNEL_UNKNOWN", 404, "No such payment channel",
        "没有名为“{channel}”的支付通道。", "There is no payment channel named \"{channel}\".",
        "本服务配置的通道是“{configured}”。", "The channel this service is configured with is \"{configured}\".",
    )
    DATE_IN_FUTURE = ErrorSpec(
        "RECON_DATE_IN_FUTURE", 422, "That day has not begun",
        "{day} 尚未到来，还没有对账单。", "{day} has not begun: there is no statement for it yet.",
        "通道一般在次日上午发布前一日的对账单，请对已开始的日期对账。",
        "Channels publish a day's statement the next morning; reconcile a day that has begun.",
    )
    FILE_UNAVAILABLE = ErrorSpec(
        "RECON_FILE_UNAVAILABLE", 504, "The channel did not deliver its statement",
        "通道“{channel}”未能提供 {day} 的对账单。", "The channel \"{channel}\" did not deliver its statement for {day}.",
        _NOTHING_RECORDED_ZH, _NOTHING_RECORDED_EN,
    )
    FILE_MALFORMED = ErrorSpec(
        "RECON_FILE_MALFORMED", 502, "The channel's statement is malformed",
        "通道“{channel}” {day} 的对账单格式有误：{reason}",
        "The channel \"{channel}\"'s statement for {day} is malformed: {reason}",
        "未记录任何内容。请向通道索取更正后的对账单，再重新运行。",
        "Nothing was recorded. Ask the channel for a corrected statement, then run again.",
    )
    EXCEPTION_NOT_FOUND = ErrorSpec(
        "RECON_EXCEPTION_NOT_FOUND", 404, "Reconciliation exception not found",
        "没有找到该对账差异。", "There is no such reconciliation exception.",
        "请通过 GET /v1/staff/recon/exceptions 查看差异队列。", "See the queue at GET /v1/staff/recon/exceptions.",
    )
    RESOLUTION_MISSING = ErrorSpec(
        "RECON_RESOLUTION_MISSING", 422, "A resolution needs a written note",
        "请写明核实结果与处理方式（{min_chars} 至 {max_chars} 个字）。",
        "Write what was found and done ({min_chars} to {max_chars} characters).",
        "说明会与该差异一起保存并记入审计链。", "It is kept with the exception and in the audit chain.",
    )
    EXCEPTION_ALREADY_RESOLVED = ErrorSpec(
        "RECON_EXCEPTION_ALREADY_RESOLVED", 409, "Already resolved with another note",
        "该对账差异已于 {resolved_at} 由 {resolved_by} 处理，处理说明与本次不同。",
        "This exception was resolved at {resolved_at} by {resolved_by} with a different note.",
        "已处理的差异不会被改写；如有新情况，请在工单或财务系统中另行记录。",
        "A resolution is never rewritten; record anything new in your ticket or finance system.",
    )
