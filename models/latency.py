"""Single-thread latency of ONNX models at fixed token counts, measured side by side.

    python -m models.latency artifacts/sentiment.work/teacher artifacts/sentiment --texts data/test.jsonl

compares built artifacts (say a teacher and its students): p50/p99 per length, the speed-up of
each over the first, and each manifest's test accuracy.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models import data
from service.manifest import load_artifact
from service.model.graphs import geometric_mean
from service.model.session import OnnxClassifierSession
from service.model.tokenizer import TextTokenizer

INT8_FLAGS = frozenset({"avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_tile"})


def cpu() -> dict[str, Any]:
    """The CPU measuring: its model name, cores and the instruction sets int8 kernels use (a
    speed is a fact about a CPU, not about a model)."""
    info = Path("/proc/cpuinfo").read_text()
    flags = re.search(r"^flags\s*:(.*)$", info, re.M)
    name = re.search(r"^model name\s*:\s*(.*)$", info, re.M)
    return {
        "cpu": name.group(1) if name else "unknown",
        "cores": len(re.findall(r"^processor\s*:", info, re.M)),
        "int8_flags": sorted(INT8_FLAGS & set(flags.group(1).split() if flags else ())),
    }


def inputs_of_length(tokenizer: TextTokenizer, texts: Sequence[str], n_tokens: int) -> npt.NDArray[np.int64]:
    """Real token ids, exactly `n_tokens` long with special tokens, cut from concatenated texts."""
    joined = " ".join(texts)
    ids = tokenizer.encode(joined).input_ids
    if ids.shape[1] < n_tokens:
        raise ValueError(f"texts give only {ids.shape[1]} tokens, {n_tokens} asked")
    # Keep [CLS] ... and the final [SEP]: the shape of a real n-token input.
    return np.concatenate([ids[:, : n_tokens - 1], ids[:, -1:]], axis=1)


def percentile_ms(samples: Sequence[float], q: float) -> float:
    """The q-th percentile of durations in seconds, in milliseconds."""
    return round(float(np.percentile(np.asarray(samples), q)) * 1e3, 3)


def measure(
    sessions: Mapping[str, OnnxClassifierSession],
    inputs: Mapping[int, npt.NDArray[np.int64]],
    runs: int,
    warmup: int = 20,
) -> dict[str, dict[str, dict[str, float]]]:
    """p50/p99 ms per model per length; models alternate run by run, so drift hits all alike."""
    table: dict[str, dict[str, dict[str, float]]] = {name: {} for name in sessions}
    for n_tokens, ids in inputs.items():
        samples: dict[str, list[float]] = {name: [] for name in sessions}
        for i in range(warmup + runs):
            for name, session in sessions.items():
                start = time.perf_counter()
                session.logits(ids)
                if i >= warmup:
                    samples[name].append(time.perf_counter() - start)
        for name, s in samples.items():
            table[name][str(n_tokens)] = {"p50_ms": percentile_ms(s, 50), "p99_ms": percentile_ms(s, 99)}
    return table


def compare(
    artifacts: Sequence[Path], texts: Sequence[str], tokens: Sequence[int], runs: int
) -> dict[str, object]:
    """Each artifact's int8 latency (alternating run by run), speed-up over the first, and accuracy."""
    loaded = {str(path): load_artifact(path) for path in artifacts}
    first = next(iter(loaded.values()))
    tokenizer = TextTokenizer(first.tokenizer_path, first.max_sequence_length)
    inputs = {n: inputs_of_length(tokenizer, texts, n) for n in tokens}
    sessions = {name: OnnxClassifierSession(a.model_path, threads=1) for name, a in loaded.items()}
    table = measure(sessions, inputs, runs)
    reference = table[str(artifacts[0])]
    return {
        name: {
            "layers": (a.manifest.get("distillation") or {}).get("student_layers"),
            "pruned": kept_shape(a.manifest),
            "test_accuracy_int8": (a.manifest.get("accuracy") or {}).get("int8", {}).get("accuracy"),
            "latency": table[name],
            "speedup_p50": {
                n: round(reference[n]["p50_ms"] / table[name][n]["p50_ms"], 2) for n in table[name]
            },
        }
        for name, a in loaded.items()
    }


def kept_shape(manifest: Mapping[str, Any]) -> dict[str, int] | None:
    """Heads and feed-forward width a pruned model kept in each layer; None when it is not pruned."""
    pruning = manifest.get("pruning")
    if not pruning:
        return None
    return {"heads": len(pruning["kept_heads"][0]), "ffn_width": pruning["kept_ffn_width"][0]}


def fastest(
    candidates: Mapping[str, Path], texts: Sequence[str], tokens: Sequence[int], runs: int
) -> tuple[str, dict[str, object]]:
    """Of artifacts with one tokenizer, the one with the lowest p50 measured here side by side
    (geometric mean over the `tokens` lengths the models take), and the measurements."""
    loaded = {name: load_artifact(path) for name, path in candidates.items()}
    first = next(iter(loaded.values()))
    tokenizer = TextTokenizer(first.tokenizer_path, first.max_sequence_length)
    lengths = [n for n in tokens if n <= first.max_sequence_length] or [first.max_sequence_length]
    inputs = {n: inputs_of_length(tokenizer, texts, n) for n in lengths}
    sessions = {name: OnnxClassifierSession(a.model_path, threads=1) for name, a in loaded.items()}
    table = measure(sessions, inputs, runs)
    p50 = {name: {n: row["p50_ms"] for n, row in rows.items()} for name, rows in table.items()}
    mean = {name: geometric_mean(list(row.values())) for name, row in p50.items()}
    chosen = min(mean, key=mean.__getitem__)
    return chosen, {"p50_ms": p50, "runs": runs, "machine": cpu()}


def main(argv: Sequence[str] | None = None) -> int:
    """Compare built artifacts' single-thread latency side by side."""
    parser = argparse.ArgumentParser(prog="python -m models.latency", description=main.__doc__)
    parser.add_argument(
        "artifacts", type=Path, nargs="+", help="artifact folders; the first is the reference"
    )
    parser.add_argument(
        "--texts", type=Path, required=True, help="a split written by models.data (e.g. its test.jsonl)"
    )
    parser.add_argument("--tokens", type=int, nargs="+", default=[16, 128])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args(argv)
    texts = [e.text for e in data.read_jsonl(args.texts).rows[:400]]
    print(json.dumps(compare(args.artifacts, texts, args.tokens, args.runs), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
