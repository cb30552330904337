"""The Roblox ladder in-process, one thread: each step's latency and throughput, side by side.

    python -m load_tests.ladder

Steps: (a) the fine-tuned 6-layer model in PyTorch fp32 padded to 128 tokens, their baseline;
(b) PyTorch fp32 unpadded; (c) ONNX Runtime fp32 unpadded; (d) ONNX Runtime optimized + dynamic
int8; (e) the student distilled from it, int8; (e') that student pruned (models.prune), int8: the
service's model when the build served it (else (e) is, or (d) when no student was made); then
the service's model behind the service's LRU result cache at 0, 40 and 80% hits. Rounds
alternate the steps, so machine noise hits every row alike. No BERT-base is available offline
from the registries this project may use, so the ladder starts at the 6-layer MiniLM.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from load_tests.texts import DEFAULT_TEXTS, held_out_texts, mix
from models.latency import kept_shape
from models.layout import candidate, student_folder, teacher_of, work_folder
from service.artifact import DEFAULT_MODEL_DIR, MANIFEST
from service.front.core.result_cache import ResultCache
from service.manifest import load_artifact
from service.model.classifier import Classifier
from service.model.session import OnnxClassifierSession
from service.model.tokenizer import TextTokenizer

Predict = Callable[[str], object]
SERVED = "the service's model"  # in the name of the step that is the served model
PADDED_LENGTH = 128
LATENCY_TOKENS = 16


def torch_predict(checkpoint: Path, pad_to: int | None, max_length: int) -> Predict:
    """The fine-tuned PyTorch model on one thread, inputs padded to `pad_to` tokens or not at all."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    padding: dict[str, Any] = (
        {"padding": "max_length", "max_length": pad_to} if pad_to else {"max_length": max_length}
    )

    def predict(text: str) -> object:
        inputs = tokenizer(text, truncation=True, return_tensors="pt", **padding)
        with torch.inference_mode():
            return model(**inputs).logits.softmax(-1)

    return predict


def onnx_predict(model: Path, tokenizer: TextTokenizer, labels: Sequence[str]) -> Predict:
    """An ONNX graph through the service's Classifier (tokenizer, 1-thread session, softmax), unpadded."""
    classifier = Classifier(tokenizer, OnnxClassifierSession(model), labels)
    return lambda text: classifier.predict(text)


def cached_predict(classifier: Classifier, version: str) -> Predict:
    """The service's model behind the service's result cache (one worker's view)."""
    cache = ResultCache(100_000, 64 * 2**20)

    def predict(text: str) -> object:
        hit = cache.get((version, text))
        if hit is None:
            hit = classifier.predict(text)[0]
            cache.put((version, text), hit)
        return hit

    return predict


def p50_ms(predict: Predict, texts: Sequence[str]) -> float:
    samples = []
    for text in texts:
        start = time.perf_counter()
        predict(text)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def throughput(predict: Predict, texts: Sequence[str]) -> float:
    start = time.perf_counter()
    for text in texts:
        predict(text)
    return len(texts) / (time.perf_counter() - start)


def unpruned_student(artifact_dir: Path, manifest: Mapping[str, Any]) -> Path | None:
    """The student a served pruned model was cut from, as its build packaged it, when that build
    did (a gate may have refused it); None for a model that is not a pruned student."""
    distillation = manifest.get("distillation")
    if not (distillation and kept_shape(manifest)):
        return None
    folder = candidate(student_folder(work_folder(artifact_dir), distillation["student_layers"]))
    return folder if (folder / MANIFEST).is_file() else None


def run_ladder(
    artifact_dir: Path, work_dir: Path, texts: Sequence[str], mix_size: int = 300, rounds: int = 3
) -> list[dict[str, Any]]:
    """Rows with p50 ms at 16 tokens, texts/s over the test-split mix, and both as ratios to (a)."""
    artifact = load_artifact(artifact_dir)
    teacher = load_artifact(teacher_of(artifact_dir))
    tokenizer = TextTokenizer(artifact.tokenizer_path, artifact.max_sequence_length)
    classifier = Classifier.from_artifact(artifact)
    short = [t for t in texts if tokenizer.encode(t).n_tokens == LATENCY_TOKENS][:50]
    sample = list(texts[:mix_size])
    checkpoint = work_dir / "checkpoint"
    steps: dict[str, Predict] = {
        "(a) PyTorch fp32, padded to 128": torch_predict(
            checkpoint, PADDED_LENGTH, artifact.max_sequence_length
        ),
        "(b) PyTorch fp32, no padding": torch_predict(checkpoint, None, artifact.max_sequence_length),
        "(c) ONNX Runtime fp32, no padding": onnx_predict(
            work_dir / "model.fp32.onnx", tokenizer, artifact.labels
        ),
        "(d) ONNX Runtime optimized + dynamic int8": Classifier.from_artifact(teacher).predict,
    }
    cache_step = "(e) (d)"  # the cache rows put the service's model behind the cache
    distillation = artifact.manifest.get("distillation")
    if distillation:
        layers = distillation["student_layers"]
        pruned = kept_shape(artifact.manifest)
        if pruned:
            unpruned = unpruned_student(artifact_dir, artifact.manifest)
            if unpruned:
                student = Classifier.from_artifact(load_artifact(unpruned))
                steps[f"(e) (d) distilled to {layers} layers, int8"] = student.predict
            kept = f"{pruned['heads']} heads and {pruned['ffn_width']} feed-forward width a layer"
            name = f"(e') (e) pruned to {kept}, int8: {SERVED}"
            cache_step = "(f) (e')"
        else:
            name = f"(e) (d) distilled to {layers} layers, int8: {SERVED}"
            cache_step = "(f) (e)"
        steps[name] = classifier.predict
    cached = {
        f"{cache_step} + LRU cache, {r:.0%} hits": mix(texts, 3 * mix_size, r, seed=1)
        for r in (0.0, 0.4, 0.8)
    }
    for predict in steps.values():
        for text in short[:10]:  # allocations and lazy initialization out of the way
            predict(text)
    latency: dict[str, list[float]] = {name: [] for name in steps}
    rate: dict[str, list[float]] = {name: [] for name in [*steps, *cached]}
    for _ in range(rounds):
        for name, predict in steps.items():
            latency[name].append(p50_ms(predict, short))
            rate[name].append(throughput(predict, sample))
        for name, mixed in cached.items():
            # A new cache each round, holding the hot set only: the run sees the stated hit ratio.
            predict = cached_predict(classifier, artifact.version)
            for text in mixed.hot:
                predict(text)
            rate[name].append(throughput(predict, mixed.sequence))
    base_ms = statistics.median(latency["(a) PyTorch fp32, padded to 128"])
    base_rate = statistics.median(rate["(a) PyTorch fp32, padded to 128"])
    rows = []
    for name in rate:
        ms = statistics.median(latency[name]) if name in latency else None
        per_s = statistics.median(rate[name])
        rows.append(
            {
                "step": name,
                "p50_ms_16_tokens": round(ms, 2) if ms else None,
                "latency_speedup": round(base_ms / ms, 1) if ms else None,
                "texts_per_s": round(per_s, 1),
                "throughput_speedup": round(per_s / base_rate, 1),
            }
        )
    return rows


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The ladder as a Markdown table."""
    lines = [
        f"| step | p50 ms, {LATENCY_TOKENS} tokens | vs (a) | texts/s, test-split mix | vs (a) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        ms = "–" if r["p50_ms_16_tokens"] is None else f"{r['p50_ms_16_tokens']:g}"
        speedup = "–" if r["latency_speedup"] is None else f"{r['latency_speedup']:g}x"
        lines.append(
            f"| {r['step']} | {ms} | {speedup} | {r['texts_per_s']:g} | {r['throughput_speedup']:g}x |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ladder and print it as a table (and JSON with --json)."""
    parser = argparse.ArgumentParser(prog="python -m load_tests.ladder", description=main.__doc__)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--work-dir", type=Path, help="the build's work folder (default: <model-dir>.work)")
    parser.add_argument("--texts", type=Path, default=DEFAULT_TEXTS)
    parser.add_argument("--mix-size", type=int, default=300, help="texts per throughput pass")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    work = args.work_dir or work_folder(args.model_dir)
    rows = run_ladder(args.model_dir, work, held_out_texts(args.texts), args.mix_size, args.rounds)
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
