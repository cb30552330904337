from __future__ import annotations

from pathlib import Path

from service.cpus import available_cpus, cgroup_cpu_limit


def test_cgroup_v2_quota_in_cores(tmp_path: Path) -> None:
    v2 = tmp_path / "cpu.max"
    v2.write_text("150000 100000\n")
    assert cgroup_cpu_limit(v2, tmp_path / "none", tmp_path / "none") == 1.5
    v2.write_text("max 100000\n")
    assert cgroup_cpu_limit(v2, tmp_path / "none", tmp_path / "none") is None


def test_cgroup_v1_quota_in_cores(tmp_path: Path) -> None:
    quota, period = tmp_path / "q", tmp_path / "p"
    quota.write_text("200000\n")
    period.write_text("100000\n")
    assert cgroup_cpu_limit(tmp_path / "none", quota, period) == 2.0
    quota.write_text("-1\n")
    assert cgroup_cpu_limit(tmp_path / "none", quota, period) is None


def test_available_cpus_is_at_least_one_and_at_most_the_affinity_set() -> None:
    import os

    assert 1 <= available_cpus() <= len(os.sched_getaffinity(0))
