from __future__ import annotations

import asyncio
import threading

from service.artifact import load_artifact
from service.cache import ResultCache
from service.classifier import Classifier, Prediction, Timing
from service.inference import Inference
from service.local_model import LocalModel
from service.metrics import Metrics
from tests.conftest import Built


class CountingClassifier(Classifier):
    """The real classifier, counting how many texts it computed and on which thread."""

    calls = 0
    threads: list[str]

    def predict(self, text: str) -> tuple[Prediction, Timing]:
        self.calls += 1
        self.threads.append(threading.current_thread().name)
        return super().predict(text)


def make(built: Built, cache_entries: int = 100) -> tuple[Inference, CountingClassifier]:
    artifact = load_artifact(built.artifact)
    classifier = CountingClassifier.from_artifact(artifact)
    classifier.threads = []
    cache = ResultCache(cache_entries, 1 << 20)
    metrics = Metrics(None)
    local = LocalModel(classifier, metrics.model_worker_busy)
    return Inference(local, cache, artifact.version, metrics), classifier


def test_batch_computes_each_distinct_miss_once_and_keeps_order(small_model: Built) -> None:
    inference, classifier = make(small_model)
    texts = ["good", "bad", "good", "neutral news", "bad"]
    outcomes = asyncio.run(inference.classify_many(texts))
    assert classifier.calls == 3
    assert [o.prediction for o in outcomes] == [classifier.predict(t)[0] for t in texts]
    assert not any(o.cached for o in outcomes)


def test_hits_skip_the_model_and_return_the_same_prediction(small_model: Built) -> None:
    inference, classifier = make(small_model)

    def busy() -> float | None:
        return inference.metrics.registry.get_sample_value("textclf_model_worker_busy_seconds_total")

    first = asyncio.run(inference.classify("hello there"))
    computed = busy()
    second = asyncio.run(inference.classify("hello there"))
    assert classifier.calls == 1
    # The co-located model counts its busy time like a pool's workers; a hit adds none.
    assert computed is not None and computed > 0 and busy() == computed
    assert second.cached and not first.cached and second.prediction is first.prediction


def test_colocated_idle_process_computes_on_the_loop_and_a_busy_one_queues_on_the_thread(
    small_model: Built,
) -> None:
    inference, classifier = make(small_model, cache_entries=0)

    async def scenario() -> None:
        await asyncio.gather(inference.classify("first"), inference.classify("second"))
        await inference.classify_many(["a batch", "never runs on the loop"])
        await inference.backend.close()

    asyncio.run(scenario())
    loop_thread = threading.current_thread().name
    assert classifier.threads[0] == loop_thread
    assert all(name.startswith("inference") for name in classifier.threads[1:]), classifier.threads
