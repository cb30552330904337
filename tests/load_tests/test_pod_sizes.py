"""The 1-core pod of load_tests.pod_sizes: the service's processes on one CPU, the load on another."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from load_tests.pod_sizes import Pod
from tests.conftest import Built


@pytest.mark.parametrize("design", ["pool", "colocated"])
def test_a_1_core_pod_runs_every_service_process_on_its_cpu_and_the_load_beside_it(
    small_model: Built, tmp_path: Path, design: str
) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    assert len(cpus) >= 2, "the comparison needs 2 CPUs"
    before = os.sched_getaffinity(0)
    pod = Pod("1-core", 1, {cpus[0]}, {cpus[1]})
    with pod.serving(small_model.artifact, design, tmp_path / "service.log") as served:
        processes = [pid for pids in served.processes.values() for pid in pids]
        assert len(processes) == (2 if design == "pool" else 1)  # the front and its model worker
        assert all(os.sched_getaffinity(pid) == {cpus[0]} for pid in processes)
        assert os.sched_getaffinity(0) == {cpus[1]}
        assert httpx.post(served.url, json={"text": "pinned"}, timeout=30).status_code == 200
    assert os.sched_getaffinity(0) == before
