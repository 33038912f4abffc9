"""The cost measurement of the figures stage (poseprompt.stages.cost): what it counts, and a timing
that one slow call cannot move (the median of calls timed alone)."""
import pytest

from poseprompt.model.lifter import build_model
from poseprompt.stages import cost


def test_one_slow_call_does_not_move_the_time(monkeypatch):
    clock = iter([0.0, 0.010, 1.0, 3.0, 3.0, 3.011, 4.0, 4.012, 5.0, 5.009])   # call 2 takes 2 s
    monkeypatch.setattr(cost.time, "perf_counter", lambda: next(clock))
    assert cost._median_time(lambda: None, lambda: None, 5) == pytest.approx(0.011)


def test_measure_model_counts_and_times(tiny_cfg):
    model = build_model({**tiny_cfg, "prompt": "none"})
    r = cost.measure_model(model, batch=2, repeats=3)
    assert r["trainable"] == sum(p.numel() for p in model.parameters() if p.requires_grad) > 0
    assert r["frozen"] == 0 and r["repeats"] == 3 and r["frames"] == tiny_cfg["frames"]
    assert r["flops_per_frame"] == pytest.approx(r["flops_per_clip"] / tiny_cfg["frames"]) and r["flops_per_clip"] > 0
    assert r["latency_ms"] == pytest.approx(r["forward_ms"] / 2)
    assert 0 < r["forward_ms"] < 10_000 and 0 < r["train_step_ms"] < 10_000
    assert r["peak_mem_mb"] > r["weights_mb"] > 0
