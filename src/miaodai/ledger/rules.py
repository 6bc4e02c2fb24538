"""The rules of a journal entry, checked in code before anything touches the database (pure).

An entry is at least two legs of signed whole fen (debit positive, credit negative), none zero, that
sum to zero; cash legs name their channel and no other leg does. The database checks balance again
(see :mod:`miaodai.ledger.models`), so these rules give a clear error early rather than being the only
guard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from miaodai.core.errors import DomainError
from miaodai.ledger.accounts import Account
from miaodai.ledger.errors import LedgerErrors

# Ten trillion yuan: far beyond any real leg, and far inside BIGINT even summed over many legs.
MAX_LEG_FEN = 10**15
MAX_KIND_LENGTH = 32
MAX_KEY_LENGTH = 128
MAX_CHANNEL_LENGTH = 32


@dataclass(frozen=True)
class Leg:
    """One line of a journal entry. ``amount_fen`` is signed: debit positive, credit negative.

    ``loan_id`` left as None takes the entry's loan id when posted; ``channel`` is for cash legs only.
    """

    account: Account
    amount_fen: int
    loan_id: int | None = None
    channel: str | None = None


def debit(account: Account, amount_fen: int, *, loan_id: int | None = None, channel: str | None = None) -> Leg:
    """A debit leg of a positive amount (a readable way to write ``Leg(account, +amount)``)."""
    return Leg(account, amount_fen, loan_id, channel)


def credit(account: Account, amount_fen: int, *, loan_id: int | None = None, channel: str | None = None) -> Leg:
    """A credit leg of a positive amount, stored negative."""
    return Leg(account, -amount_fen if _is_int(amount_fen) else amount_fen, loan_id, channel)


def _is_int(value: object) -> bool:
    # bool is an int subclass; True fen is a bug, not an amount.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_text(field: str, value: object, max_length: int) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise DomainError(LedgerErrors.BAD_POSTING, {"field": field, "max_length": max_length})


def check_header(*, kind: str, idempotency_key: str) -> None:
    _check_text("kind", kind, MAX_KIND_LENGTH)
    _check_text("idempotency_key", idempotency_key, MAX_KEY_LENGTH)


def check_legs(legs: Sequence[Leg], *, loan_id: int | None = None) -> tuple[Leg, ...]:
    """Validate the legs of one entry; returns them with each missing ``loan_id`` set to the entry's.

    Raises :class:`DomainError` with a ``LEDGER_*`` code naming the first leg (1-based) at fault.
    """
    for number, leg in enumerate(legs, start=1):
        try:
            account = Account(leg.account)
        except ValueError:
            raise DomainError(
                LedgerErrors.UNKNOWN_ACCOUNT,
                {"leg": number, "account": str(leg.account), "known": ", ".join(a.value for a in Account)},
            ) from None
        if not _is_int(leg.amount_fen) or leg.amount_fen == 0 or abs(leg.amount_fen) > MAX_LEG_FEN:
            raise DomainError(LedgerErrors.BAD_AMOUNT, {"leg": number, "max_fen": MAX_LEG_FEN})
        if leg.loan_id is not None and not _is_int(leg.loan_id):
            raise TypeError(f"leg {number}: loan_id must be an int or None")
        if account.has_channels:
            if not isinstance(leg.channel, str) or not leg.channel.strip() or len(leg.channel) > MAX_CHANNEL_LENGTH:
                raise DomainError(LedgerErrors.CHANNEL_REQUIRED, {"leg": number})
        elif leg.channel is not None:
            raise DomainError(LedgerErrors.CHANNEL_NOT_ALLOWED, {"leg": number, "account": account.value})
    if len(legs) < 2:
        raise DomainError(LedgerErrors.TOO_FEW_LEGS, {"legs": len(legs)})
    total = sum(leg.amount_fen for leg in legs)
    if total != 0:
        raise DomainError(LedgerErrors.UNBALANCED, {"total_fen": total})
    if loan_id is not None and not _is_int(loan_id):
        raise TypeError("loan_id must be an int or None")
    return tuple(
        Leg(Account(leg.account), leg.amount_fen, leg.loan_id if leg.loan_id is not None else loan_id, leg.channel)
        for leg in legs
    )


def leg_signature(legs: Sequence[Leg]) -> list[tuple[str, str, int, int]]:
    """The legs as an order-free comparable value: a replay is "the same" when these are equal."""
    return sorted(
        (Account(leg.account).value, leg.channel or "", -1 if leg.loan_id is None else leg.loan_id, leg.amount_fen)
        for leg in legs
    )


def negated(legs: Sequence[Leg]) -> tuple[Leg, ...]:
    """The legs of a reversal: the same accounts, channels and loans, every amount with its sign flipped."""
    return tuple(Leg(leg.account, -leg.amount_fen, leg.loan_id, leg.channel) for leg in legs)
