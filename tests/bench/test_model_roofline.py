"""bench.model's roofline: the work of a training step per image, and the shares it prints."""
import re

from bench import model as model_bench


def test_training_step_work_matches_the_layouts_convolutions():
    # Paper: 3.57 M multiply-adds of convolution an image (forward, filter and input gradients;
    # none into the image) = 7.1 MFLOP, plus the dense layers, the sampler and Adam's elementwise ops.
    paper = model_bench.training_mflop_per_image("paper")
    assert 8.0 < paper < 12.0
    # The reference layout's 10 -> 10 convolutions run on the full 46x46 map: ~3x the paper's work.
    assert 2.5 < model_bench.training_mflop_per_image("reference") / paper < 3.5


def test_roofline_shares_follow_from_the_rates(monkeypatch):
    monkeypatch.setattr(model_bench, "training_mflop_per_image", lambda layout: 10.0)
    lines = model_bench.roofline_lines("paper", {"float32": 5000.0}, peak_gflops=200.0)
    assert "10.00 MFLOP an image" in lines[0] and "200 GFLOP/s" in lines[0]
    assert re.search(r"5,000 images/s = 50 GFLOP/s, 25% of it", lines[1])
    assert re.search(r"10,000 images/s would take 100 GFLOP/s, 50% of it", lines[2])


def test_matmul_rate_is_measured():
    rate = model_bench.matmul_gflops(size=256, runs=2)
    assert 0.1 < rate < 1e5
