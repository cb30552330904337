"""make bench's graph section on the small model: both graphs timed, the service's choice read back."""

from __future__ import annotations

from pathlib import Path

from load_tests.graph_choice import graph_targets, graphs_table, run_graphs
from models import data
from tests.conftest import Built


def test_both_graphs_are_timed_beside_the_one_the_service_serves(small_model: Built, tmp_path: Path) -> None:
    texts = [e.text for e in data.read_split(small_model.work / "data", "test")]
    result = run_graphs(small_model.artifact, texts, tmp_path / "service.log", seconds=0.3)
    timed = result["in_process_p50_ms"]
    assert {name: sorted(by_length) for name, by_length in timed.items()} == {
        "fused": [16, 64],  # the small model takes 64 tokens at most
        "unfused": [16, 64],
    }
    (served,) = result["service"]["serving"]  # one graph for every worker of the service
    assert result["service"]["serving"][served] == 2
    table = graphs_table(result)
    assert "| fused |" in table and "| unfused |" in table and f"| {served} |" in table
    assert "yes (2 workers)" in table
    ((what, measured, met),) = graph_targets(result)
    faster = min(timed, key=lambda name: timed[name][64])
    assert "64 tokens" in what and f"serves {served}" in measured
    assert met == (served == faster)
