"""make bench's AMX section: a child refused AMX's tile state still times the real graphs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from load_tests import amx
from load_tests.amx import amx_table, run_amx
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
    done = subprocess.run(
        [sys.executable, "-c", REFUSED], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(done.stdout) == {"req": -1, "req_errno": 1, "get": 0, "granted": False}


def test_a_child_refused_amx_times_every_graph_without_it(small_model: Built) -> None:
    command = [sys.executable, "-m", "load_tests.amx", "--model-dir", str(small_model.artifact)]
    done = subprocess.run(
        [*command, "--amx", "off", "--seconds", "0.1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    timed = json.loads(done.stdout)
    assert timed["amx_granted"] is False  # ONNX Runtime asked (where Linux supports AMX) and was refused
    assert {graph: sorted(by_length, key=int) for graph, by_length in timed["p50_ms"].items()} == {
        "fused": ["16", "64"],  # the small model takes 64 tokens at most
        "unfused": ["16", "64"],
    }
    assert all(ms > 0 for by_length in timed["p50_ms"].values() for ms in by_length.values())


def test_both_modes_alternate_and_only_the_on_children_hold_amx(
    small_model: Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    supported = amx.amx_supported()
    monkeypatch.setattr(amx, "amx_supported", lambda: True)  # both children run on any CPU
    result = run_amx(small_model.artifact, rounds=2, seconds=0.1)
    assert result["granted"] == {"on": [supported] * 2, "off": [False] * 2}
    assert set(result["p50_ms"]["on"]) == set(result["p50_ms"]["off"]) == {"fused", "unfused"}
    table = amx_table(result)
    assert "| fused | 16 |" in table and "| unfused | 64 |" in table
    assert f"on {2 if supported else 0} of 2, off 0 of 2" in table
    assert ("never held AMX" in table) is not supported


def test_the_table_gives_off_over_on_by_graph_and_length() -> None:
    result = {
        "amx_supported": True,
        "rounds": 1,
        "seconds": 0.5,
        "granted": {"on": [True], "off": [False]},
        "p50_ms": {"on": {"fused": {"16": 0.5}}, "off": {"fused": {"16": 0.6}}},
    }
    assert "| fused | 16 | 0.500 | 0.600 | 1.20x |" in amx_table(result)


def test_where_linux_gives_no_amx_nothing_is_timed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(amx, "amx_supported", lambda: False)
    result = run_amx(tmp_path / "never read")
    assert result == {"amx_supported": False}
    assert "nothing timed" in amx_table(result)
