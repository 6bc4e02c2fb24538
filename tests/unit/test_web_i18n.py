"""The app's catalogs are complete in both languages, and amounts, rates and dates read as each expects."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from miaodai.core.clock import BUSINESS_TZ
from miaodai.web import catalogs, i18n


def test_every_message_the_pages_use_is_translated_in_both_languages():
    assert len(catalogs.used_ids()) > 40  # the extractor found the templates' messages
    assert {locale: catalogs.missing(locale) for locale in i18n.LOCALES} == {"zh_CN": [], "en": []}


def test_translations_are_the_catalogs():
    assert i18n.translations("zh_CN").gettext("Log in") == "登录"
    assert i18n.translations("en").gettext("equal_installment") == "Equal installments"


def test_amounts_rates_and_dates():
    assert i18n.yuan(123456789) == "¥1,234,567.89"
    assert i18n.yuan(5) == "¥0.05" and i18n.yuan(-150) == "-¥1.50" and i18n.yuan(None) == "—"
    assert i18n.yuan_plain(1000000) == "10000.00"
    assert i18n.percent(Decimal("0.1548")) == "15.48%" and i18n.percent("0.200952") == "20.0952%"
    assert i18n.percent(Decimal("0.27625")) == "27.625%" and i18n.percent(None) == "—"  # not 27.62%
    assert i18n.day(date(2026, 12, 22), "zh_CN") == "2026年12月22日"
    assert i18n.day(date(2026, 12, 22), "en") == "22 Dec 2026"
    moment = datetime(2026, 11, 22, 10, 2, 3, tzinfo=BUSINESS_TZ)
    assert i18n.moment(moment, "zh_CN") == "2026年11月22日 10:02:03"
