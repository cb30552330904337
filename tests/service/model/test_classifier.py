from __future__ import annotations

import numpy as np

from service.manifest import load_artifact
from service.model.classifier import Classifier
from tests.conftest import Built


def test_prediction_is_the_softmax_of_the_session_logits(small_model: Built) -> None:
    classifier = Classifier.from_artifact(load_artifact(small_model.artifact))
    for text in ["I love it", "this is awful", "the meeting is at noon"]:
        prediction, timing = classifier.predict(text)
        logits = classifier.session.logits(classifier.tokenizer.encode(text).input_ids)[0]
        expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        np.testing.assert_allclose(prediction.scores, expected, rtol=1e-6)
        assert prediction.label == classifier.labels[int(np.argmax(logits))]
        assert prediction.score == max(prediction.scores)
        assert abs(sum(prediction.scores) - 1) < 1e-9
        assert timing.tokenize > 0 and timing.inference > 0


def test_long_text_is_truncated_at_the_manifest_length(small_model: Built) -> None:
    classifier = Classifier.from_artifact(load_artifact(small_model.artifact))
    short, _ = classifier.predict("short text")
    long, _ = classifier.predict("word " * 500)
    assert not short.truncated and short.tokens == 4
    assert long.truncated and long.tokens == small_model.manifest["max_sequence_length"]
