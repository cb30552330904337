"""`make bench`'s AMX section: what ONNX Runtime's AMX kernels give the artifact's int8 graphs here.

ONNX Runtime's MLAS multiplies u8 x s8 matrices with AMX by itself where Linux supports AMX's tile
state on the CPU and grants it to the process (`arch_prctl(ARCH_REQ_XCOMP_PERM)`, asked as
onnxruntime is imported: measured, the permission is held right after the import); it has no
option to turn that off. A process whose request the kernel refuses runs the AVX-512 VNNI
kernels instead, so two child processes that differ only in a seccomp filter refusing that one
request time the same graphs with and without AMX. Each child says whether it ended up holding the
permission, so a run whose "off" child still had AMX (or "on" child never got it) shows it.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import platform
import statistics
import struct
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Nothing at import time that loads ONNX Runtime (service.artifact imports only the standard
# library): a child must refuse AMX before ONNX Runtime asks for it.
from service.artifact import DEFAULT_MODEL_DIR

SYS_ARCH_PRCTL = 158  # x86-64
ARCH_GET_XCOMP_SUPP, ARCH_GET_XCOMP_PERM, ARCH_REQ_XCOMP_PERM = 0x1021, 0x1022, 0x1023
XFEATURE_XTILEDATA = 18
AUDIT_ARCH_X86_64 = 0xC000003E
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, EPERM = 0x7FFF0000, 0x00050000, 1
# Classic BPF opcodes: load a word of seccomp_data, jump if equal, return.
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
MODES = ("on", "off")


class SockFprog(ctypes.Structure):
    """struct sock_fprog: a classic BPF program for seccomp."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _xcomp_has_tile_data(code: int) -> bool:
    mask = ctypes.c_ulong(0)
    if platform.machine() != "x86_64" or _libc().syscall(SYS_ARCH_PRCTL, code, ctypes.byref(mask)):
        return False  # not x86-64, or a Linux older than 5.16 (no AMX for any process)
    return bool(mask.value & (1 << XFEATURE_XTILEDATA))


def amx_supported() -> bool:
    """Whether Linux can give a process AMX's tile state here (the CPU has AMX and the kernel, or
    the VM's, enables it): what ONNX Runtime needs, more than the `amx_int8` flag."""
    return _xcomp_has_tile_data(ARCH_GET_XCOMP_SUPP)


def refuse_amx() -> None:
    """From now on, this process (and its children) is refused AMX's tile state: EPERM for
    arch_prctl(ARCH_REQ_XCOMP_PERM), every other system call as before."""
    if platform.machine() != "x86_64":
        raise OSError("AMX is an x86-64 feature")
    program = [
        (BPF_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (BPF_JEQ_K, 0, 5, AUDIT_ARCH_X86_64),
        (BPF_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
        (BPF_JEQ_K, 0, 3, SYS_ARCH_PRCTL),
        (BPF_LD_W_ABS, 0, 0, 16),  # the low half of args[0]: the arch_prctl code
        (BPF_JEQ_K, 0, 1, ARCH_REQ_XCOMP_PERM),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]
    filters = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *op) for op in program))
    prog = SockFprog(len(program), ctypes.cast(filters, ctypes.c_void_p))
    libc = _libc()
    # A filter needs no privilege once the process promises not to gain any (no setuid exec).
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) or libc.prctl(
        PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0
    ):
        raise OSError(ctypes.get_errno(), "seccomp filter refused")


def amx_granted() -> bool:
    """Whether this process holds AMX's tile state (ONNX Runtime asked for it and Linux agreed)."""
    return _xcomp_has_tile_data(ARCH_GET_XCOMP_PERM)


def time_in_process(model_dir: Path, seconds: float, amx: bool) -> dict[str, Any]:
    """The artifact's graphs timed as the service's trial times them, AMX refused first unless `amx`."""
    if not amx:
        refuse_amx()
    # Past the filter only: importing onnxruntime asks for AMX.
    from service.manifest import load_artifact
    from service.model.graphs import time_graphs, trial_inputs
    from service.model.session import OnnxClassifierSession
    from service.model.tokenizer import TextTokenizer

    artifact = load_artifact(model_dir)
    tokenizer = TextTokenizer(artifact.tokenizer_path, artifact.max_sequence_length)
    sessions = {name: OnnxClassifierSession(path) for name, path in artifact.graphs.items()}
    p50_ms, rounds = time_graphs(sessions, trial_inputs(tokenizer), seconds)
    return {"amx_granted": amx_granted(), "p50_ms": p50_ms, "rounds": rounds}


def run_amx(model_dir: Path, rounds: int = 3, seconds: float = 4.0) -> dict[str, Any]:
    """Each graph's median CPU ms at each trial length with AMX on and off, in child processes
    alternating mode by mode (`rounds` each); nothing timed where Linux gives no process AMX."""
    if not amx_supported():
        return {"amx_supported": False}
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for round_ in range(rounds):
        for mode in MODES if round_ % 2 == 0 else reversed(MODES):
            command = [sys.executable, "-m", "load_tests.amx", "--model-dir", str(model_dir)]
            command += ["--seconds", str(seconds), "--amx", mode]
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                raise RuntimeError(f"the AMX {mode} child failed:\n{done.stderr[-2000:]}")
            runs[mode].append(json.loads(done.stdout))
    p50_ms = {
        mode: {
            graph: {
                n: statistics.median(run["p50_ms"][graph][n] for run in mode_runs)
                for n in mode_runs[0]["p50_ms"][graph]
            }
            for graph in mode_runs[0]["p50_ms"]
        }
        for mode, mode_runs in runs.items()
    }
    granted = {mode: [run["amx_granted"] for run in mode_runs] for mode, mode_runs in runs.items()}
    return {"amx_supported": True, "rounds": rounds, "seconds": seconds, "granted": granted, "p50_ms": p50_ms}


def amx_table(result: dict[str, Any]) -> str:
    """AMX on against off by graph and length, as Markdown (or why there is nothing to show)."""
    if not result["amx_supported"]:
        return "Linux gives no process AMX here: ONNX Runtime's AMX kernels never run; nothing timed."
    on, off = result["p50_ms"]["on"], result["p50_ms"]["off"]
    lines = [
        "| int8 graph | tokens | p50 CPU ms, AMX on | AMX off | off / on |",
        "|---|---|---|---|---|",
    ]
    for graph, by_length in on.items():
        for n, ms in by_length.items():
            other = off[graph][n]
            lines.append(f"| {graph} | {n} | {ms:.3f} | {other:.3f} | {other / ms:.2f}x |")
    if not any(result["granted"]["on"]):
        lines[:0] = ['**The "on" children never held AMX**: both columns ran the same kernels.', ""]
    held = {mode: f"{sum(runs)} of {len(runs)}" for mode, runs in result["granted"].items()}
    lines += [
        "",
        f"Child processes alternating, {result['rounds']} each, {result['seconds']:g} s of the service's "
        f"trial apiece (its inputs; the median of their medians). Children holding AMX's tile state: on "
        f"{held['on']}, off {held['off']} (off: a seccomp filter refuses arch_prctl(ARCH_REQ_XCOMP_PERM)).",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Time the artifact's graphs with AMX on and off (or, with --amx, one child's timing as JSON)."""
    parser = argparse.ArgumentParser(prog="python -m load_tests.amx", description=main.__doc__)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--amx", choices=MODES, help="time in this process, AMX on or refused")
    args = parser.parse_args(argv)
    if args.amx:
        print(json.dumps(time_in_process(args.model_dir, args.seconds, amx=args.amx == "on")))
    else:
        print(amx_table(run_amx(args.model_dir, args.rounds, args.seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
