from __future__ import annotations

import math

from load_tests.report import Recorder, markdown_table, percentiles, summarize


def test_summary_counts_statuses_hits_and_stage_times() -> None:
    rec = Recorder()
    miss = {
        b"x-cache": b"miss",
        b"x-queue-time": b"0.5",
        b"x-tokenize-time": b"0.1",
        b"x-inference-time": b"4.0",
    }
    for i in range(8):
        rec.response(0.005 + i * 0.001, 200, miss if i % 2 else {b"x-cache": b"hit"})
    s = summarize(rec, wall_seconds=2.0, cpu_seconds=0.1, sent=8)
    assert s["passed"] and s["ok"] == 8 and s["throughput_rps"] == 4.0
    assert s["hit_ratio"] == 0.5
    assert s["server_ms"]["inference"]["p50"] == 4.0 and s["server_ms"]["queue"]["max"] == 0.5
    assert s["latency_ms"]["max"] == 12.0 and s["client_cpu_percent"] == 5.0


def test_any_non_2xx_lost_request_or_early_stop_fails_the_run() -> None:
    rec = Recorder()
    rec.response(0.01, 200, {})
    rec.response(0.01, 503, {})
    assert not summarize(rec, 1.0, 0.0, sent=2)["passed"]
    rec = Recorder()
    rec.response(0.01, 200, {})
    rec.error(ConnectionError("reset"))
    assert summarize(rec, 1.0, 0.0, sent=2)["errors"] == {"ConnectionError": 1}
    assert not summarize(rec, 1.0, 0.0, sent=2)["passed"]
    rec = Recorder()
    rec.response(0.01, 200, {})
    rec.stopped = "fell behind"
    assert not summarize(rec, 1.0, 0.0, sent=1)["passed"]


def test_percentiles_and_table() -> None:
    assert percentiles([1.0, 2.0, 3.0], 1e3)["p50"] == 2000.0
    assert math.isnan(percentiles([])["p99"])
    rec = Recorder()
    rec.response(0.002, 200, {})
    table = markdown_table([("run a", summarize(rec, 1.0, 0.0, sent=1))])
    header, rule, row = table.splitlines()
    assert header.count("|") == rule.count("|") == row.count("|")
    assert row.startswith("| run a | 1 | 2 |") and row.endswith("| 1 / 1 |")
