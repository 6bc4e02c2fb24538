"""Money in integer fen (分), rates as Decimal, and the one rounding policy.

Floats never touch money: ``Money(1.5)`` raises. Yuan strings ("1234.56") are parsed
only at human edges with :meth:`Money.from_yuan`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# The single rounding policy of the product: half-up to the fen.
ROUNDING = ROUND_HALF_UP
FEN = Decimal(1)


def round_fen(amount_in_fen: Decimal) -> int:
    """Round a Decimal amount of fen to a whole fen, half-up. The one place money is rounded."""
    if not isinstance(amount_in_fen, Decimal):
        raise TypeError(f"round_fen takes a Decimal, not {type(amount_in_fen).__name__}")
    return int(amount_in_fen.quantize(FEN, rounding=ROUNDING))


@dataclass(frozen=True, slots=True, order=True)
class Money:
    """An amount of renminbi in integer fen. Immutable; arithmetic only with Money and ints."""

    fen: int

    def __post_init__(self) -> None:
        # bool is an int subclass; True fen is a bug, not an amount.
        if not isinstance(self.fen, int) or isinstance(self.fen, bool):
            raise TypeError(f"Money takes integer fen, not {type(self.fen).__name__}")

    @classmethod
    def zero(cls) -> Money:
        return cls(0)

    @classmethod
    def from_yuan(cls, text: str) -> Money:
        """Parse a yuan string with at most two decimals: "1234.56" -> 123456 fen."""
        if not isinstance(text, str):
            raise TypeError("from_yuan takes a string such as '1234.56'")
        try:
            value = Decimal(text.strip())
        except InvalidOperation:
            raise ValueError(f"not an amount in yuan: {text!r}") from None
        if not value.is_finite():
            raise ValueError(f"not an amount in yuan: {text!r}")
        fen = value * 100
        if fen != fen.to_integral_value():
            raise ValueError(f"more than two decimals in yuan amount: {text!r}")
        return cls(int(fen))

    def to_yuan(self) -> str:
        sign = "-" if self.fen < 0 else ""
        whole, cents = divmod(abs(self.fen), 100)
        return f"{sign}{whole}.{cents:02d}"

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        return Money(self.fen + other.fen)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        return Money(self.fen - other.fen)

    def __neg__(self) -> Money:
        return Money(-self.fen)

    def __mul__(self, factor: int) -> Money:
        if not isinstance(factor, int) or isinstance(factor, bool):
            return NotImplemented
        return Money(self.fen * factor)

    __rmul__ = __mul__

    def apply_rate(self, rate: Decimal) -> Money:
        """This amount times a Decimal rate, rounded half-up to the fen."""
        if not isinstance(rate, Decimal):
            raise TypeError("rates are Decimal")
        return Money(round_fen(Decimal(self.fen) * rate))

    def allocate(self, parts: int) -> list[Money]:
        """Split into ``parts`` amounts that differ by at most one fen and sum exactly."""
        if parts <= 0:
            raise ValueError("parts must be positive")
        base, remainder = divmod(self.fen, parts)
        return [Money(base + (1 if i < remainder else 0)) for i in range(parts)]

    def __str__(self) -> str:
        return f"¥{self.to_yuan()}"


def parse_rate(text: str | Decimal) -> Decimal:
    """A rate as Decimal from a string such as "0.2399"; floats are refused."""
    if isinstance(text, float):
        raise TypeError("rates are Decimal or strings, never float")
    try:
        rate = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a rate: {text!r}") from None
    if not rate.is_finite() or rate < 0:
        raise ValueError(f"not a rate: {text!r}")
    return rate


def round_half_up_div(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half-up to an integer, in integer arithmetic.

    The same rule as :func:`round_fen` (Decimal half-up, away from zero at .5) for exact
    fractions; :func:`sql_round_half_up_div` is its SQL twin for set-based batch updates, so the
    end-of-day batch rounds exactly as the Python code does without floats on either database.
    """
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    if numerator >= 0:
        return (2 * numerator + denominator) // (2 * denominator)
    return -((-2 * numerator + denominator) // (2 * denominator))


def sql_round_half_up_div(numerator: str, denominator: str) -> str:
    """SQL text for :func:`round_half_up_div` of two non-negative BIGINT expressions (both databases
    truncate integer division of non-negative operands, so this is exact)."""
    return f"((2 * ({numerator}) + ({denominator})) / (2 * ({denominator})))"
