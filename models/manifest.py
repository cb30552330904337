"""Assemble the artifact folder the service loads: model.onnx (the fused int8 graph), model.weights
(its weights), the other int8 graphs that passed the gates (model.unfused.onnx and .weights),
tokenizer.json, manifest.json."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import onnx
import onnxruntime

from models.quantize import INT8_GRAPHS
from service.artifact import MANIFEST, PRIMARY_GRAPH, TOKENIZER, artifact_version, graph_files, sha256
from service.manifest import Manifest

BUILD_PACKAGES = ("torch", "transformers", "tokenizers", "onnx", "onnxruntime", "numpy")


def write_model(int8: Path, folder: Path, graph: str = PRIMARY_GRAPH) -> tuple[str, str]:
    """An int8 graph in `folder`, its weights in a file beside it; their names. ONNX Runtime maps an
    external weights file into memory rather than copying it, so the model workers of a node share
    one copy in the page cache (the fp32 embedding table is most of it: docs/model.md, Memory)."""
    model, weights = graph_files(graph)
    onnx.save_model(
        onnx.load(str(int8)),
        str(folder / model),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=weights,
        size_threshold=1024,
    )
    # onnx writes it readable by its owner only; the service may run as another user.
    shutil.copymode(folder / model, folder / weights)
    return model, weights


def _report(work: Path, step: str) -> dict[str, Any]:
    return json.loads((work / f"{step}.json").read_text())  # type: ignore[no-any-return]


def build(
    work: Path,
    out: Path,
    name: str,
    distillation: dict[str, object] | None = None,
    shared: Path | None = None,
    pruning: dict[str, object] | None = None,
) -> dict[str, object]:
    """Copy the int8 model and tokenizer from `work` into `out` with a manifest; atomic swap.

    `distillation` is models.distill's report when the model is a student, `pruning` models.prune's
    when it is a pruned one; the data and training reports are read from `shared`, the build's work
    folder (default `work`).
    """
    shared = shared or work
    exported, trained = _report(work, "export"), _report(shared, "train")
    evaluated, optimized, prepared = (
        _report(work, "evaluate"),
        _report(work, "optimize"),
        _report(shared, "data"),
    )
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # Only the graphs that passed the gates (evaluate.json; only the primary in one written before
    # graphs were), the primary first.
    passed = evaluated.get("graphs", [PRIMARY_GRAPH])
    graphs = {graph: write_model(work / INT8_GRAPHS[graph], staging, graph) for graph in passed}
    shutil.copyfile(work / TOKENIZER, staging / TOKENIZER)
    hashes = {f: sha256(staging / f) for f in (*(f for pair in graphs.values() for f in pair), TOKENIZER)}
    version = artifact_version(
        hashes, exported["labels"], exported["max_sequence_length"], evaluated["thresholds"]
    )
    manifest: dict[str, object] = {
        "name": name,
        "version": version,
        "labels": exported["labels"],
        "problem_type": evaluated["problem_type"],
        "thresholds": evaluated["thresholds"],
        "max_sequence_length": exported["max_sequence_length"],
        "inputs": exported["inputs"],
        "files": hashes,
        "graphs": {graph: model for graph, (model, _) in graphs.items()},
        "graphs_refused": evaluated.get("graphs_refused", {}),
        "source": {"model": trained["source"], "license": trained["license"]},
        "data": prepared,
        "label_mix": prepared["label_mix"],
        "training": {k: v for k, v in trained.items() if k not in {"source", "license", "source_location"}},
        "export": {k: exported[k] for k in ("opset", "parity_texts", "parity_max_abs_diff")},
        "distillation": distillation,
        "pruning": pruning,
        "fusions": optimized["fusions"],
        "missing_fusions": optimized["missing_fusions"],
        "quantization": _report(work, "quantize"),
        "accuracy": evaluated["accuracy"],
        "int8_fp32_agreement": evaluated["int8_fp32_agreement"],
        "latency_single_thread": evaluated["latency_single_thread"],
        "int8_speedup_p50": evaluated["int8_speedup_p50"],
        "gates": evaluated["gates"],
        "onnxruntime_version": onnxruntime.__version__,
        "provenance": {
            # Enough to tell two builds apart: the libraries, the source weights, the data file.
            "versions": {package: metadata.version(package) for package in BUILD_PACKAGES},
            "source_weights_sha256": trained.get("source_weights_sha256"),
            "data_sha256": prepared.get("sha256"),
        },
        "build_date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    text = json.dumps(manifest, indent=2)
    Manifest.parse(text)  # the service's own check, before anything is swapped in
    (staging / MANIFEST).write_text(text)
    _swap_in(staging, out)
    return manifest


def _swap_in(staging: Path, out: Path) -> None:
    # A reader never sees a half-written folder: the old artifact is replaced only when complete.
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)


def annotate(artifact: Path, key: str, value: object) -> dict[str, Any]:
    """Add a report to a built artifact's manifest (not to its version: the files are the same);
    the manifest."""
    path = artifact / MANIFEST
    manifest = json.loads(path.read_text())
    manifest[key] = value
    text = json.dumps(manifest, indent=2)
    Manifest.parse(text)
    staging = path.with_name(path.name + ".partial")
    staging.write_text(text)
    staging.replace(path)
    return manifest  # type: ignore[no-any-return]


def copy_artifact(artifact: Path, out: Path) -> None:
    """Copy a built artifact folder to `out`, swapped in whole."""
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(artifact, staging)
    _swap_in(staging, out)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the artifact folder from a work folder where every step has run."""
    parser = argparse.ArgumentParser(prog="python -m models.manifest", description=main.__doc__)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="artifact folder the service loads")
    parser.add_argument("--name", default="minilm-sentiment")
    args = parser.parse_args(argv)
    print(json.dumps(build(args.work, args.out, args.name), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
