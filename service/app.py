"""App factory and lifespan: load the artifact, warm the model up, then report ready."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service import errors
from service.artifact import load_artifact
from service.cache import ResultCache
from service.classifier import Classifier
from service.config import Settings, load_settings
from service.guards import BodyGuard
from service.inference import Inference
from service.routes import Loaded, Runtime, build_router

log = logging.getLogger("service")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI app; nothing heavy happens until the lifespan starts."""
    settings = settings or load_settings()
    runtime = Runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        artifact = load_artifact(settings.model_dir)
        classifier = Classifier(artifact, threads=1, spinning=settings.intra_op_spinning)
        classifier.warm_up(settings.warmup_runs)
        cache = ResultCache(settings.cache_entries, settings.cache_max_bytes, settings.cache_ttl_seconds)
        inference = Inference(classifier, cache, artifact.version, settings.inference_thread)
        runtime.loaded = Loaded(artifact, inference)
        log.info("model %s %s ready", artifact.name, artifact.version)
        try:
            yield
        finally:
            runtime.loaded = None
            inference.close()

    app = FastAPI(
        title="textclf-service",
        summary="Low-latency CPU text classification (distilled BERT, dynamic int8 ONNX).",
        version="0.1.0",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(build_router(runtime))
    app.add_middleware(BodyGuard, max_body_bytes=settings.max_body_bytes)
    return app
