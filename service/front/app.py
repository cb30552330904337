"""App factory: the edge over FastAPI, assembled from the route table; nothing heavy until the
lifespan (service.front.lifespan) starts."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.routing import BaseRoute

from service import NAME, VERSION
from service.config import Settings, load_settings
from service.front.api import error_responses
from service.front.api.classify_routes import ClassifyRoutes
from service.front.api.cold_routes import build_router
from service.front.api.docs import install_docs
from service.front.api.openapi import document_bearer_auth, documented_routes
from service.front.asgi import ASGIApp
from service.front.edge.admission import Admission
from service.front.edge.auth import BearerAuth, Tokens, protected_access
from service.front.edge.body_limits import BodyLimits
from service.front.edge.edge import Edge
from service.front.edge.request_metrics import RequestMetrics
from service.front.edge.route_table import RouteTable
from service.front.lifespan import lifespan
from service.front.runtime import Runtime
from service.front.telemetry.metrics import Metrics


class Api(FastAPI):
    """FastAPI for the cold routes. Without its last-resort error middleware: the edge, outside it,
    answers what no handler took, with the request id, once. Its OpenAPI document also has the
    routes the edge answers (`documented`), which it never routes."""

    documented: tuple[APIRoute, ...] = ()

    @property
    def routes(self) -> list[BaseRoute]:
        return [*self.router.routes, *self.documented]

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return stack.app if isinstance(stack, ServerErrorMiddleware) else stack


def create_app(settings: Settings | None = None) -> Edge:
    """Build the ASGI app uvicorn serves."""
    settings = settings or load_settings()
    metrics = Metrics(settings.metrics_dir)
    runtime = Runtime(settings, metrics)
    table = RouteTable()
    handlers = ClassifyRoutes(runtime).handlers()
    tracing = None
    if settings.tracing.enabled:
        from service.front.telemetry.tracing import (
            Tracing,  # imported only when on: off loads no OpenTelemetry
        )

        tracing = Tracing(settings.tracing)

    api = Api(
        title=NAME,
        summary="Low-latency CPU text classification (distilled BERT, dynamic int8 ONNX).",
        version=VERSION,
        lifespan=lifespan(runtime, table.labels(), tracing),
        # Prometheus metrics are ours; FastAPI's built-in OpenTelemetry checks cost time per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url=None,  # served by service.front.api.docs, without a CDN
        redoc_url=None,
        openapi_url=table.named("openapi").path,
    )
    api.documented = tuple(documented_routes(settings, table, handlers))
    install_docs(api, table)
    error_responses.install(api)
    api.include_router(build_router(runtime, table))

    auth = None
    protected = protected_access(settings.open_health, settings.open_metrics)
    if settings.auth_required():
        auth = BearerAuth(Tokens(settings.fixed_tokens(), settings.api_tokens_file))
        document_bearer_auth(api, table, protected)
    return Edge(
        api,
        table,
        handlers,
        RequestMetrics(metrics, access_log=settings.access_log),
        BodyLimits(settings.max_body_bytes, settings.request_read_timeout_seconds),
        Admission(settings.admitted_per_front(), metrics),
        auth,
        protected,
        tracing,
    )
