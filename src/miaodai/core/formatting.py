"""How amounts and rates are written for people — the one module every face uses. Pure: no I/O.

The contract (:mod:`miaodai.contracts.document`), the app's pages (the Jinja globals of
:mod:`miaodai.web.core`), the CLI (``miaodai quote``) and the messages of domain errors all format money and
rates here, so a figure reads the same wherever a borrower meets it.

* **Money** arrives as integer fen and leaves as text; nothing here rounds money (the fen is exact).
* **Rates** are Decimal and are shown as percentages with every significant digit up to
  :data:`PERCENT_PLACES` places (at least two): 0.27625 → ``27.625%``, 0.24 → ``24.00%``. That is the
  precision the loan engine discloses: an APR is computed to six decimal places of the rate
  (:data:`miaodai.loans.schedule.APR_PLACES`), i.e. four of the percentage, so an APR is always shown
  *exactly* — the page, the API and the contract print the same figure. Should a rate ever carry more digits
  than are shown, it is rounded **up** (away from zero), never down: a disclosed rate is never shown lower
  than it is (PBoC announcement [2021] No. 3). Rounding half-even (Python's default for ``:.2f``) had shown
  the contract's 27.625 % as 27.62 % on the drawing page.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_UP, Decimal

# Four places of a percentage = six of the rate: the precision every APR is computed and stored at.
PERCENT_PLACES = 4
MIN_PERCENT_PLACES = 2

_DIGITS_ZH = "零壹贰叁肆伍陆柒捌玖"
_PLACES_ZH = ("仟", "佰", "拾", "")
_SECTIONS_ZH = ("亿", "万", "")
# 9,999 亿 9,999 万 9,999 yuan: far above any loan, and the largest amount the section units can spell.
MAX_WORDS_FEN = 10**14 - 1
NONE_SHOWN = "—"


def _whole_fen(fen: int) -> int:
    if not isinstance(fen, int) or isinstance(fen, bool):
        raise TypeError(f"amounts are integer fen, not {type(fen).__name__}")
    return fen


def yuan(fen: int) -> str:
    """123456789 fen → ``1,234,567.89`` (yuan, thousands separators, always two decimals, no symbol)."""
    sign = "-" if _whole_fen(fen) < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def yuan_symbol(fen: int | None) -> str:
    """``¥1,234,567.89``; a negative amount keeps its sign before the symbol (``-¥1.50``); None → ``—``."""
    if fen is None:
        return NONE_SHOWN
    text = yuan(fen)
    return f"-¥{text[1:]}" if text.startswith("-") else f"¥{text}"


def yuan_plain(fen: int) -> str:
    """``12345.67``: what an amount input holds (no separators, two decimals)."""
    sign = "-" if _whole_fen(fen) < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def yuan_in_words_zh(fen: int) -> str:
    """The amount in Chinese financial numerals (大写), as written on contracts and cheques.

    1050050 fen → "壹万零伍佰元伍角"; 100 → "壹元整"; 5 → "伍分"; 0 → "零元整".
    """
    if not 0 <= _whole_fen(fen) <= MAX_WORDS_FEN:
        raise ValueError(f"cannot write {fen} fen in words")
    whole, cents = divmod(fen, 100)
    jiao, fen_digit = divmod(cents, 10)
    text = _integer_zh(whole) + "元" if whole else ""
    if jiao:
        text += _DIGITS_ZH[jiao] + "角"
    if fen_digit:
        text += ("零" if whole and not jiao else "") + _DIGITS_ZH[fen_digit] + "分"
    if not cents:
        text = (text or "零元") + "整"
    return text


def _integer_zh(number: int) -> str:
    sections = ((number // 10**8) % 10**4, (number // 10**4) % 10**4, number % 10**4)
    text, started, gap = "", False, False
    for section, unit in zip(sections, _SECTIONS_ZH, strict=True):
        if not section:
            gap = started  # a zero section between two others is read as one 零
            continue
        if started and (gap or section < 1000):
            text += "零"
        text += _section_zh(section) + unit
        started, gap = True, False
    return text


def _section_zh(section: int) -> str:
    text, zero = "", False
    for digit, place in zip(f"{section:04d}", _PLACES_ZH, strict=True):
        if digit == "0":
            zero = bool(text)
            continue
        text += ("零" if zero else "") + _DIGITS_ZH[int(digit)] + place
        zero = False
    return text


def percent(rate: Decimal, *, min_places: int = MIN_PERCENT_PLACES, max_places: int = PERCENT_PLACES) -> str:
    """A Decimal rate as a percentage: 0.27625 → ``27.625%``, 0.195618 → ``19.5618%``, 0.24 → ``24.00%``.

    Every significant digit up to ``max_places`` is kept; beyond that the figure is rounded **up** (away
    from zero), so a disclosed rate is never shown lower than it is: 0.2762501 → ``27.6251%``.
    """
    if not isinstance(rate, Decimal) or not rate.is_finite():
        raise TypeError("rates are finite Decimals")
    value = (rate * 100).quantize(Decimal(1).scaleb(-max_places), rounding=ROUND_UP)
    whole, _, places = f"{value:f}".partition(".")
    places = places.rstrip("0").ljust(min_places, "0")
    return f"{whole}.{places}%" if places else f"{whole}%"


def percent_or_dash(rate: Decimal | str | None) -> str:
    """:func:`percent` for a page: a rate as the API carries it (a decimal string) is read exactly; None → ``—``.
    Floats are refused — a binary float cannot hold 0.27625."""
    if rate is None:
        return NONE_SHOWN
    if isinstance(rate, str):
        rate = Decimal(rate)
    return percent(rate)


def date_zh(day: date) -> str:
    """2026-11-22 → "2026年11月22日"."""
    return f"{day.year}年{day.month}月{day.day}日"
