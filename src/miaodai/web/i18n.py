"""Languages of the borrower's app: gettext catalogs (Babel), and how amounts, rates and dates read.

Catalogs are ``locale/<locale>/LC_MESSAGES/*.po`` — one file per feature, so pages can be added
without touching one shared file — merged into one catalog per locale and compiled in memory when
first used (no ``.mo`` build step, nothing binary in the repository). Message ids are the English
text; the ``en`` catalog is complete too (every id has its msgstr), so a missing translation is a
test failure (tests/unit/test_web_i18n.py), not a silent fallback.

Amounts are fen shown as yuan with two decimals and thousands separators (``¥12,345.67``); rates as
percentages exactly as the contract prints them (:mod:`miaodai.core.formatting`: ``27.625%``, never rounded
down); dates as each language writes them (``2026年12月22日``, ``22 Dec 2026``).
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.dates import format_date, format_datetime
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from miaodai.core import formatting
from miaodai.core.clock import BUSINESS_TZ

LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
# The short names the switch and the cookie use.
LANGS = {"zh": "zh_CN", "en": "en"}
LOCALE_DIR = Path(__file__).parent / "locale"


def catalog_files(locale: str) -> list[Path]:
    return sorted((LOCALE_DIR / locale / "LC_MESSAGES").glob("*.po"))


def merged_catalog(locale: str) -> Catalog:
    """Every ``.po`` of ``locale`` in one catalog; an id defined twice is a mistake and refused."""
    merged = Catalog(locale=locale, domain="messages")
    for path in catalog_files(locale):
        with path.open("rb") as handle:
            part = read_po(handle, locale=locale)
        for message in part:
            if not message.id:
                continue  # the header
            if message.id in merged:
                raise ValueError(f"{path.name}: message {message.id!r} is already in another catalog of {locale}")
            merged[message.id] = message
    return merged


@cache
def translations(locale: str) -> Translations:
    buffer = BytesIO()
    write_mo(buffer, merged_catalog(locale))
    buffer.seek(0)
    return Translations(fp=buffer, domain="messages")


# How amounts and rates read on every page: the one formatting module the contract and the CLI use too.
yuan = formatting.yuan_symbol  # ``¥12,345.67`` from 1234567 fen; ``-¥1.50``; None → ``—``
yuan_plain = formatting.yuan_plain  # ``12345.67``: what an amount input holds
percent = formatting.percent_or_dash  # ``27.625%``: every digit the contract shows, never rounded down


def day(value: date | None, locale: str) -> str:
    if value is None:
        return "—"
    return format_date(value, format="long" if locale == "zh_CN" else "d MMM y", locale=locale)


def month(value: date, locale: str) -> str:
    """A month as a heading names it: ``2026年12月``, ``December 2026``."""
    return format_date(value, "y年M月" if locale == "zh_CN" else "MMMM y", locale=locale)


def weekday(value: date, locale: str) -> str:
    """A day of the week as a calendar's column names it: ``一``, ``Mon``."""
    return format_date(value, "EEEEE" if locale == "zh_CN" else "EEE", locale=locale)


def moment(value: datetime | None, locale: str) -> str:
    """A time as Beijing time, to the second (a payout's steps are told to the second)."""
    if value is None:
        return "—"
    pattern = "y年M月d日 HH:mm:ss" if locale == "zh_CN" else "d MMM y, HH:mm:ss"
    return format_datetime(value, pattern, tzinfo=BUSINESS_TZ, locale=locale)
