"""The peer: the service a user would write without us, FastAPI + a transformers pipeline.

    PEER_MODEL_DIR=artifacts/sentiment.work/checkpoint \\
        uvicorn --factory load_tests.peer:create_app --port 8001

Same fine-tuned weights as our artifact (PyTorch fp32), uvicorn's defaults (one worker, a sync
route in the thread pool, PyTorch's default threads). Only the benchmark runs it.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel


class ClassifyRequest(BaseModel):
    text: str


def create_app() -> FastAPI:
    """The peer app, on the model folder named by PEER_MODEL_DIR."""
    from transformers import pipeline

    classifier = pipeline("text-classification", model=os.environ["PEER_MODEL_DIR"], top_k=None)
    app = FastAPI()

    @app.post("/v1/classify")
    def classify(request: ClassifyRequest) -> dict[str, Any]:
        scores: list[dict[str, Any]] = classifier(request.text)[0]  # type: ignore[assignment]
        best = max(scores, key=lambda s: s["score"])
        return {"label": best["label"], "score": best["score"], "scores": scores}

    return app
