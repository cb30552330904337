"""ONNX Runtime session for batch-1, unpadded inference on one CPU thread."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort


def session_options(threads: int = 1, spinning: bool = False) -> ort.SessionOptions:
    """Session options for one model worker process: a fixed thread count, no oversubscription."""
    opts = ort.SessionOptions()
    # ORT defaults to one thread per host core and ignores container quotas; with one worker
    # process per core, anything above 1 makes the workers fight over the same cores.
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning burns the idle core a neighbouring worker could use; off unless measured better.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return opts


class OnnxClassifierSession:
    """Runs a sequence-classification ONNX graph and returns raw logits."""

    def __init__(self, path: Path, threads: int = 1, spinning: bool = False) -> None:
        self.path = path  # the graph file it runs
        self._session = ort.InferenceSession(
            str(path), session_options(threads, spinning), providers=["CPUExecutionProvider"]
        )
        self.input_names = frozenset(i.name for i in self._session.get_inputs())
        unknown = self.input_names - {"input_ids", "attention_mask", "token_type_ids"}
        if "input_ids" not in self.input_names or unknown:
            raise ValueError(f"{path}: unsupported model inputs {sorted(self.input_names)}")
        self._constants: dict[tuple[int, ...], dict[str, npt.NDArray[np.int64]]] = {}

    def logits(self, input_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """Logits of shape (batch, labels) for unpadded input: a graph that takes an attention
        mask gets all ones."""
        feeds = {"input_ids": input_ids, **self._constant_inputs(input_ids.shape)}
        out: npt.NDArray[np.float32] = self._session.run(None, feeds)[0]
        return out

    def _constant_inputs(self, shape: tuple[int, ...]) -> dict[str, npt.NDArray[np.int64]]:
        """The mask (all ones) and token types (all zeros) a graph takes beside the ids, built once
        per shape: the model's lengths are few (at most its sequence length)."""
        inputs = self._constants.get(shape)
        if inputs is None:
            inputs = {}
            if "attention_mask" in self.input_names:
                inputs["attention_mask"] = np.ones(shape, dtype=np.int64)
            if "token_type_ids" in self.input_names:
                inputs["token_type_ids"] = np.zeros(shape, dtype=np.int64)
            self._constants[shape] = inputs
        return inputs
