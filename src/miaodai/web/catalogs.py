"""Keep the app's message catalogs complete: ``python -m miaodai.web.catalogs`` lists every message the
templates and page code use that a locale does not translate (exit 1 if any), using Babel's own
extractors (Jinja2's for templates). The unit test runs the same check, so CI fails on a gap.

Message ids built at run time (``_(method.value)``) cannot be extracted; they are listed in
:data:`DYNAMIC_IDS` so the check covers them too.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.extract import extract_from_dir

from miaodai.loans.schedule import RepaymentMethod
from miaodai.web import i18n

WEB_DIR = Path(__file__).parent
METHOD_MAP = [("templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "false"}}
KEYWORDS = {"_": None, "gettext": (2,), "ngettext": (1, 2)}  # web.core.gettext(request, message)
DYNAMIC_IDS = tuple(method.value for method in RepaymentMethod)


def used_ids() -> set[str]:
    found = set(DYNAMIC_IDS)
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
            WEB_DIR, METHOD_MAP, OPTIONS, keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    return found


def missing(locale: str) -> list[str]:
    catalog = i18n.merged_catalog(locale)
    return sorted(m for m in used_ids() if m not in catalog or not catalog[m].string or catalog[m].fuzzy)


def main() -> int:
    gaps = {locale: missing(locale) for locale in i18n.LOCALES}
    for locale, ids in gaps.items():
        for message in ids:
            print(f"{locale}: untranslated: {message!r}")
    return 1 if any(gaps.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
