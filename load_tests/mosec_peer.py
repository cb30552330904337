"""The mosec peer of `make bench`: mosec's Rust HTTP front and one queue feeding N Python workers.

Each worker wraps the same artifact, tokenizer and single-threaded ONNX session as the service
(service.model.classifier), so the comparison is of the serving design alone. Cache off:
mosec has none.

    PEER_MODEL_DIR=artifacts/sentiment PEER_WORKERS=2 \\
        python -m load_tests.mosec_peer --address 127.0.0.1 --port 8001
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mosec import Server, Worker

from service.artifact import AUTO_GRAPH
from service.manifest import load_artifact
from service.model.classifier import Classifier


class ClassifyWorker(Worker):
    """One text in, label and scores out, as `POST /v1/classify` answers them."""

    def __init__(self) -> None:
        super().__init__()
        artifact = load_artifact(Path(os.environ["PEER_MODEL_DIR"]))
        self.labels = artifact.labels
        # Each of its workers times the artifact's graphs as ours do, on its own.
        self.classifier = Classifier.from_artifact(artifact, threads=1, graph=AUTO_GRAPH)
        self.classifier.warm_up(10)

    def forward(self, data: dict[str, Any]) -> dict[str, Any]:
        prediction, _ = self.classifier.predict(str(data["text"]).strip())
        scores = dict(zip(self.labels, prediction.scores, strict=True))
        return {"label": prediction.label, "score": prediction.score, "scores": scores}


def main() -> None:
    """Serve /v1/classify with PEER_WORKERS mosec workers (mosec parses --address, --port)."""
    server = Server()
    server.append_worker(ClassifyWorker, num=int(os.environ.get("PEER_WORKERS", "2")), route="/v1/classify")
    server.run()


if __name__ == "__main__":
    main()
