"""The docs pages are installed where the route table declares them, in memory."""

from __future__ import annotations

import dataclasses

from fastapi import FastAPI

from service.front.api.docs import install_docs
from service.front.edge.route_table import ROUTES, Access, RouteTable


def served_paths(table: RouteTable) -> set[str]:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=table.named("openapi").path)
    install_docs(app, table)
    return {getattr(route, "path", "") for route in app.routes}


def test_every_documentation_route_of_the_table_is_served() -> None:
    expected = {r.path.removesuffix("/{path:path}") for r in ROUTES if r.access is Access.OPEN}
    assert expected == {"/openapi.json", "/docs", "/redoc", "/docs/assets"}
    assert expected <= served_paths(RouteTable())


def test_moved_in_the_table_the_docs_move_with_it() -> None:
    moved = [dataclasses.replace(r, path="/api" + r.path) if r.access is Access.OPEN else r for r in ROUTES]
    paths = served_paths(RouteTable(moved))
    assert {"/api/openapi.json", "/api/docs", "/api/redoc", "/api/docs/assets"} <= paths
    assert not {"/docs", "/redoc", "/docs/assets"} & paths
