"""Errors of the ledger: codes, zh-CN + English, what to do.

Most of these mean a bug in the code that posts (the loan engine validates money before it reaches the
ledger), so the actions speak to the engineer or the operator, not the borrower.
"""

from __future__ import annotations

from miaodai.core.errors import ErrorSpec


class LedgerErrors:
    TOO_FEW_LEGS = ErrorSpec(
        "LEDGER_TOO_FEW_LEGS", 422, "Journal entry needs two legs",
        "记账凭证只有 {legs} 条分录，至少需要两条（一借一贷）。",
        "The journal entry has {legs} legs; it needs at least two (a debit and a credit).",
        "请补全借贷双方后重新记账。", "Add the missing side and post again.",
    )
    UNBALANCED = ErrorSpec(
        "LEDGER_UNBALANCED", 422, "Journal entry does not balance",
        "借贷不平：分录合计 {total_fen} 分，应为 0。",
        "Debits and credits differ: the legs sum to {total_fen} fen instead of 0.",
        "请检查各分录金额（借方为正、贷方为负）后重新记账。",
        "Check each leg's amount (debit positive, credit negative) and post again.",
    )
    BAD_AMOUNT = ErrorSpec(
        "LEDGER_BAD_AMOUNT", 422, "Leg amount invalid",
        "第 {leg} 条分录的金额无效：须为非零整数分，绝对值不超过 {max_fen} 分。",
        "Leg {leg} has an invalid amount: it must be a non-zero whole number of fen, at most {max_fen} in size.",
        "金额以整数分表示，借方为正、贷方为负。", "Amounts are integer fen, debit positive and credit negative.",
    )
    UNKNOWN_ACCOUNT = ErrorSpec(
        "LEDGER_UNKNOWN_ACCOUNT", 422, "Unknown account",
        "第 {leg} 条分录的科目“{account}”不在科目表中。",
        "Leg {leg} names the account \"{account}\", which is not in the chart of accounts.",
        "可用科目：{known}。", "Known accounts: {known}.",
    )
    CHANNEL_REQUIRED = ErrorSpec(
        "LEDGER_CHANNEL_REQUIRED", 422, "Cash leg without a channel",
        "第 {leg} 条分录记入渠道资金，但未注明渠道。", "Leg {leg} posts to cash but names no payment channel.",
        "请注明资金所在渠道（如 sandbox），长度 1–32。", "Name the channel holding the cash (e.g. sandbox), 1–32 characters.",
    )
    CHANNEL_NOT_ALLOWED = ErrorSpec(
        "LEDGER_CHANNEL_NOT_ALLOWED", 422, "Channel on a non-cash leg",
        "第 {leg} 条分录的科目“{account}”不分渠道，不能注明渠道。",
        "Leg {leg} posts to \"{account}\", which is not held per channel; it cannot name one.",
        "只有渠道资金科目（cash）注明渠道。", "Only cash legs name a channel.",
    )
    BAD_POSTING = ErrorSpec(
        "LEDGER_BAD_POSTING", 422, "Journal entry header invalid",
        "记账凭证的 {field} 无效：须为长度 1–{max_length} 的文本。",
        "The journal entry's {field} is invalid: it must be text of 1 to {max_length} characters.",
        "请修正该项后重新记账。", "Correct this field and post again.",
    )
    IDEMPOTENCY_KEY_REUSED = ErrorSpec(
        "LEDGER_IDEMPOTENCY_KEY_REUSED", 409, "Idempotency key already used for another entry",
        "幂等键“{idempotency_key}”已用于另一笔不同的记账凭证（编号 {entry_id}）。",
        "The idempotency key \"{idempotency_key}\" was already used for a different journal entry (id {entry_id}).",
        "同一业务重试须提交完全相同的分录；不同的业务请使用新的幂等键。",
        "A retry must post exactly the same legs; a different posting needs a new key.",
    )
    ENTRY_NOT_FOUND = ErrorSpec(
        "LEDGER_ENTRY_NOT_FOUND", 404, "Journal entry not found",
        "没有编号为 {entry_id} 的记账凭证。", "There is no journal entry with id {entry_id}.",
    )
    ALREADY_REVERSED = ErrorSpec(
        "LEDGER_ALREADY_REVERSED", 409, "Journal entry already reversed",
        "记账凭证 {entry_id} 已被冲正（冲正凭证 {reversal_id}），不能再次冲正。",
        "Journal entry {entry_id} has already been reversed (by entry {reversal_id}); it cannot be reversed again.",
        "如需更正，请在冲正后重新记一笔正确的凭证。", "To correct it, post a new, correct entry after the reversal.",
    )
    REVERSAL_NOT_REVERSIBLE = ErrorSpec(
        "LEDGER_REVERSAL_NOT_REVERSIBLE", 409, "A reversal cannot be reversed",
        "记账凭证 {entry_id} 本身是冲正凭证，不能再冲正。",
        "Journal entry {entry_id} is itself a reversal and cannot be reversed.",
        "如冲正有误，请按原业务重新记一笔新凭证。", "If the reversal was a mistake, post the original business again as a new entry.",
    )
