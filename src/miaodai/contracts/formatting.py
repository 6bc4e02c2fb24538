"""How the contract writes amounts, rates and dates: the shared :mod:`miaodai.core.formatting`, re-exported
under the names the contract's template and its tests use (one module for every face, so the contract and
the pages cannot disagree)."""

from __future__ import annotations

from miaodai.core.formatting import MAX_WORDS_FEN, date_zh, percent, yuan, yuan_in_words_zh

__all__ = ["MAX_WORDS_FEN", "date_zh", "percent", "yuan", "yuan_in_words_zh"]
