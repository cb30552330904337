from __future__ import annotations

import pytest

from models.evaluate import GateError, check_gates


def table(fp32: float, int8: float, baseline: float) -> dict[str, dict[str, float]]:
    return {"fp32": {"accuracy": fp32}, "int8": {"accuracy": int8}, "baseline": {"accuracy": baseline}}


def test_gate_passes_within_tolerance() -> None:
    check_gates(table(0.800, 0.791, 0.75), tolerance_points=1.0, require_baseline=True)


def test_gate_fails_on_int8_drop_and_names_the_flag() -> None:
    with pytest.raises(GateError, match="--int8-tolerance") as err:
        check_gates(table(0.800, 0.788, 0.75), tolerance_points=1.0, require_baseline=True)
    assert "1.20 points" in str(err.value)
    check_gates(table(0.800, 0.788, 0.75), tolerance_points=1.5, require_baseline=True)


def test_gate_fails_when_baseline_wins_unless_allowed() -> None:
    with pytest.raises(GateError, match="--no-require-beat-baseline"):
        check_gates(table(0.70, 0.70, 0.76), tolerance_points=1.0, require_baseline=True)
    check_gates(table(0.70, 0.70, 0.76), tolerance_points=1.0, require_baseline=False)
