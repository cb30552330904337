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

from service.front.edge.route_table import RouteTable

NO_ICON = "data:,"  # a favicon that is no request at all
ANY_ASSET = "/{path:path}"


def install_docs(app: FastAPI, table: RouteTable) -> None:
    """Add the docs pages and their assets where the route table puts them, to an app built with
    `docs_url=None, redoc_url=None` and the table's `openapi_url`."""
    static = resources.files("fastapi_offline") / "static"
    assets_route = table.named("docs_assets").path
    assert assets_route.endswith(ANY_ASSET), assets_route
    assets = assets_route.removesuffix(ANY_ASSET)
    app.mount(assets, StaticFiles(directory=str(static)), name="docs-assets")
    openapi_url = table.named("openapi").path

    @app.get(table.named("swagger_ui").path, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=NO_ICON,
        )

    @app.get(table.named("redoc").path, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{assets}/redoc.standalone.js",
            redoc_favicon_url=NO_ICON,
            with_google_fonts=False,
        )
