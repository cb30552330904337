"""The API docs pages (Swagger UI at /docs, ReDoc at /redoc) with their assets served by the service.

FastAPI's own pages load their JavaScript and CSS from a public CDN: in an air-gapped cluster
/docs is blank. The assets ship in the `fastapi-offline` package (MIT) and are served from the
image instead; nothing in a page is fetched from outside the service.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
NO_ICON = "data:,"  # a favicon that is no request at all


def install_docs(app: FastAPI) -> None:
    """Add /docs, /redoc and their assets to an app built with `docs_url=None, redoc_url=None`."""
    static = resources.files("fastapi_offline") / "static"
    app.mount(ASSETS, StaticFiles(directory=str(static)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=NO_ICON,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=NO_ICON,
            with_google_fonts=False,
        )
