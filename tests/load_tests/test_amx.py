"""make bench's AMX section: a child refused AMX's tile state still times the real graphs."""

from __future__ import annotations

import json
import subprocess
import sys

from load_tests.amx import amx_table, cpu_has_amx, run_amx
from tests.conftest import Built

# In a child: the filter must refuse the one request and leave arch_prctl's other codes working.
REFUSED = """
import ctypes, json
from load_tests import amx
amx.refuse_amx()
libc = ctypes.CDLL(None, use_errno=True)
req = libc.syscall(amx.SYS_ARCH_PRCTL, amx.ARCH_REQ_XCOMP_PERM, amx.XFEATURE_XTILEDATA)
req_errno = ctypes.get_errno()
mask = ctypes.c_ulong(0)
get = libc.syscall(amx.SYS_ARCH_PRCTL, amx.ARCH_GET_XCOMP_PERM, ctypes.byref(mask))
print(json.dumps({"req": req, "req_errno": req_errno, "get": get, "granted": amx.amx_granted()}))
"""


def test_the_filter_refuses_only_the_request_for_amx() -> None:
    done = subprocess.run([sys.executable, "-c", REFUSED], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"req": -1, "req_errno": 1, "get": 0, "granted": False}


def test_a_child_refused_amx_times_every_graph_without_it(small_model: Built) -> None:
    command = [sys.executable, "-m", "load_tests.amx", "--model-dir", str(small_model.artifact)]
    done = subprocess.run(
        [*command, "--amx", "off", "--seconds", "0.1"], capture_output=True, text=True, check=True
    )
    timed = json.loads(done.stdout)
    assert timed["amx_granted"] is False  # ONNX Runtime asked (on an AMX CPU) and was refused
    assert {graph: sorted(by_length, key=int) for graph, by_length in timed["p50_ms"].items()} == {
        "fused": ["16", "64"],  # the small model takes 64 tokens at most
        "unfused": ["16", "64"],
    }
    assert all(ms > 0 for by_length in timed["p50_ms"].values() for ms in by_length.values())


def test_the_section_times_both_modes_only_where_the_cpu_has_amx(small_model: Built) -> None:
    result = run_amx(small_model.artifact, rounds=1, seconds=0.1)
    assert result["cpu_has_amx"] is cpu_has_amx()
    table = amx_table(result)
    if not cpu_has_amx():
        assert "no `amx_int8`" in table
        return
    assert result["granted"]["off"] == [False]
    assert set(result["p50_ms"]["on"]) == set(result["p50_ms"]["off"]) == {"fused", "unfused"}
    assert "| fused | 16 |" in table and "| unfused | 64 |" in table


def test_a_cpu_without_amx_gets_a_sentence() -> None:
    assert "nothing timed" in amx_table({"cpu_has_amx": False})
