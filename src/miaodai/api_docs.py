"""The interactive API documentation, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served from the package.

FastAPI's own pages load their scripts and styles from a public CDN, so they are blank offline and
unreliable from mainland China. These pages load the same tools from ``miaodai/static/api-docs`` (copies of
the npm packages, versions and licenses in the README there), mounted at :data:`ASSETS_PREFIX`; ReDoc
without Google Fonts. The app is built with ``docs_url=None, redoc_url=None`` and :func:`install` adds these.
What the OpenAPI document itself says (security schemes, headers, error schemas) is not decided here.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_PREFIX = "/docs/assets"
SWAGGER_JS = f"{ASSETS_PREFIX}/swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS = f"{ASSETS_PREFIX}/swagger-ui/swagger-ui.css"
FAVICON = f"{ASSETS_PREFIX}/swagger-ui/favicon-32x32.png"
REDOC_JS = f"{ASSETS_PREFIX}/redoc/redoc.standalone.js"

# No online validator badge (it would send the document to validator.swagger.io); a token entered with
# "Authorize" survives a reload of the page.
SWAGGER_PARAMETERS = {"validatorUrl": None, "persistAuthorization": True}
# Images and requests stay on this service: ReDoc's menu shows a logo from cdn.redoc.ly, which the
# browser then does not fetch (the link under it remains).
POLICY = {"Content-Security-Policy": "img-src 'self' data:; connect-src 'self' blob:"}


def install(app: FastAPI) -> None:
    """Mount the assets and add ``/docs`` and ``/redoc`` (neither in the OpenAPI document itself)."""
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount(ASSETS_PREFIX, StaticFiles(packages=[("miaodai", "static/api-docs")]), name="api-docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} — Swagger UI", swagger_js_url=SWAGGER_JS,
            swagger_css_url=SWAGGER_CSS, swagger_favicon_url=FAVICON, swagger_ui_parameters=SWAGGER_PARAMETERS,
        )
        page.headers.update(POLICY)
        return page

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=openapi_url, title=f"{app.title} — ReDoc", redoc_js_url=REDOC_JS, redoc_favicon_url=FAVICON,
            with_google_fonts=False,
        )
        page.headers.update(POLICY)
        return page
