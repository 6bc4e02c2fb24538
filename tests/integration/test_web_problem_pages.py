"""A mistyped app address, a request a page does not take, or a refusal no page caught: under ``/app`` each is the
app's own page in the borrower's language and the app's words; the API and the console keep their own answers."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def web(client) -> TestClient:
    return TestClient(client.app, base_url="https://testserver", follow_redirects=False)


def alert(page) -> tuple[str | None, str]:
    found = re.search(r'role="alert" data-code="([A-Z0-9_]+)"', page.text)
    return (found.group(1) if found else None), page.headers["content-type"]


@pytest.mark.parametrize(("lang", "title", "words"), [
    ("zh", "这个页面不存在", "请检查网址，或回到首页重新开始。"),
    ("en", "This page is not here", "Check the address, or start again from the home page."),
])
def test_a_mistyped_app_address_is_the_apps_own_page(web, lang, title, words):
    page = web.get(f"/app/no-such-page?lang={lang}")
    assert page.status_code == 404
    assert alert(page) == ("NOT_FOUND", "text/html; charset=utf-8")
    assert f"<h1>{title}</h1>" in page.text and words in page.text
    assert 'href="/app"' in page.text  # the way back
    assert "请求的资源不存在" not in page.text and "requested resource" not in page.text  # not the API's words
    assert page.headers["cache-control"] == "no-store"


def test_a_method_a_page_does_not_take_is_a_page_too(web):
    page = web.put("/app/login?lang=en")
    assert page.status_code == 405
    assert alert(page) == ("METHOD_NOT_ALLOWED", "text/html; charset=utf-8")
    assert "Go back and use the buttons on the page." in page.text


def test_an_address_whose_number_is_not_a_number_names_no_page(web):
    """``/app/loans/abc``: the path does not parse, so there is no such page (not "a form field is wrong")."""
    page = web.get("/app/loans/abc?lang=zh")
    assert page.status_code == 404 and alert(page)[0] == "NOT_FOUND"
    assert "没有找到您要的内容。" in page.text and "<h1>这个页面不存在</h1>" in page.text


def test_the_api_and_the_console_keep_their_own_answers(web):
    api = web.get("/v1/no-such-thing")
    assert api.status_code == 404 and api.headers["content-type"] == "application/problem+json"
    assert api.json()["code"] == "NOT_FOUND"
    console = web.get("/console/no-such-desk")
    assert console.status_code == 404 and alert(console)[0] == "NOT_FOUND"
    assert 'href="/console/static/console.css"' in console.text or "/console" in console.text
    assert "/app/static/app.css" not in console.text
    application = web.get("/application")  # shares the prefix's letters, not its path
    assert application.status_code == 404 and application.headers["content-type"] == "application/problem+json"
