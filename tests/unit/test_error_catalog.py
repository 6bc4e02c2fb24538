"""Every problem code is unique, bilingual, well-formed, and documented in docs/errors.md."""

from __future__ import annotations

import re
import string
from pathlib import Path

from miaodai.error_catalog import all_specs, render_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def test_codes_are_unique_and_stable_shaped():
    codes = [spec.code for spec in all_specs()]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]+", code) for code in codes)


def test_every_problem_is_an_error_status_with_both_languages():
    for spec in all_specs():
        assert 400 <= spec.status < 600, spec.code
        assert spec.title and spec.message_zh and spec.message_en, spec.code
        assert re.search(r"[\u4e00-\u9fff]", spec.message_zh), f"{spec.code}: message_zh has no Chinese"
        assert bool(spec.action_zh) == bool(spec.action_en), f"{spec.code}: action in one language only"


def test_both_languages_use_the_same_placeholders():
    def fields(text: str | None) -> set[str]:
        # "_name" params are per-language text (e.g. document titles), never exposed in params.
        return {name for _, name, _, _ in string.Formatter().parse(text or "") if name and not name.startswith("_")}

    for spec in all_specs():
        assert fields(spec.message_zh) == fields(spec.message_en), spec.code
        assert fields(spec.action_zh) == fields(spec.action_en), spec.code


def test_the_reference_page_is_current():
    assert DOC.read_text() == render_markdown(), "run: uv run python -m miaodai.error_catalog > docs/errors.md"
