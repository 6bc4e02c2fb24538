"""`/docs` and `/redoc` work offline: every script, style and icon they name is served by the service itself."""

from __future__ import annotations

import re

import pytest

ATTRIBUTE = re.compile(r'\b(?:src|href|spec-url)="([^"]*)"')
SCRIPT_URL = re.compile(r"\burl:\s*'([^']*)'")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_name_only_assets_the_service_serves(client, page):
    response = client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "://" not in html  # no CDN, no Google Fonts, no validator: nothing outside this service
    # ReDoc's bundle itself shows a logo from cdn.redoc.ly: the page's policy keeps the browser from fetching it.
    policy = response.headers["content-security-policy"]
    assert "img-src 'self' data:" in policy and "connect-src 'self' blob:" in policy
    referenced = ATTRIBUTE.findall(html) + SCRIPT_URL.findall(html)
    scripts = [url for url in referenced if url.endswith(".js")]
    assert scripts, html  # the page does load its tool
    for url in referenced:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0
    for url in scripts:
        assert "javascript" in client.get(url).headers["content-type"]


def test_the_openapi_document_the_pages_load_is_there_and_the_pages_are_not_in_it(client):
    document = client.get("/openapi.json")
    assert document.status_code == 200
    assert not {"/docs", "/redoc"} & set(document.json()["paths"])


def test_an_unknown_asset_is_a_404_not_a_500(client):
    assert client.get("/docs/assets/swagger-ui/nothing-here.js").status_code == 404
    assert client.get("/docs/assets/../../core/settings.py").status_code == 404
