"""Text in, label and probabilities out: tokenizer, ONNX session and scores for one artifact."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Self

from service.artifact import PRIMARY_GRAPH, Artifact
from service.model import graphs
from service.model.session import OnnxClassifierSession
from service.model.tokenizer import TextTokenizer
from service.prediction import Prediction, Timing


class Classifier:
    """Blocking, single-threaded inference; not safe to call from two threads at once.

    Built from its parts, so the build's evaluation and the benchmarks run this same code on
    graphs that are not (yet) an artifact.
    """

    def __init__(
        self,
        tokenizer: TextTokenizer,
        session: OnnxClassifierSession,
        labels: Sequence[str],
        thresholds: Sequence[float] | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.session = session
        self.labels = tuple(labels)
        self.thresholds = None if thresholds is None else tuple(thresholds)  # multi-label models only
        self.graph: graphs.GraphChoice | None = None  # which of an artifact's graphs runs, and why

    @classmethod
    def from_artifact(
        cls,
        artifact: Artifact,
        threads: int = 1,
        spinning: bool = False,
        graph: str = PRIMARY_GRAPH,
        trial_seconds: float = 1.0,
    ) -> Self:
        """The classifier for an artifact, on its graph `graph` (the service passes its setting),
        or with "auto" the one this CPU runs fastest, timed for `trial_seconds` (service.model.graphs)."""
        tokenizer = TextTokenizer(artifact.tokenizer_path, artifact.max_sequence_length)
        session, choice = graphs.choose(artifact, tokenizer, graph, trial_seconds, threads, spinning)
        classifier = cls(tokenizer, session, artifact.labels, artifact.thresholds)
        classifier.graph = choice
        return classifier

    def predict(self, text: str) -> tuple[Prediction, Timing]:
        """Classify one text, unpadded, batch size 1."""
        t0 = time.perf_counter()
        enc = self.tokenizer.encode(text)
        t1 = time.perf_counter()
        logits = self.session.logits(enc.input_ids)[0].tolist()
        t2 = time.perf_counter()
        prediction = Prediction.from_logits(self.labels, logits, enc.n_tokens, enc.truncated, self.thresholds)
        return prediction, Timing(t1 - t0, t2 - t1)

    def warm_up(self, runs: int) -> None:
        """Run short and maximum-length inputs so first requests do not pay allocation costs."""
        long_text = " ".join(["warm"] * self.tokenizer.max_length)
        for i in range(runs):
            self.predict("warming up the model" if i % 2 else long_text)
