"""bench.model's roofline: the work of a training step per image, and the shares it prints."""
import re

import tensorflow as tf

from bench import model as model_bench
from trainer.train import HParams, train_step_plan


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


def test_feeds_take_turns_and_pair_run_by_run():
    rates = model_bench.train_throughput("paper", 32, steps=2, runs=2, feeds=("model", "trainer"))
    assert set(rates) == {("model", "auto"), ("trainer", "auto")}
    for wall, cpu in rates.values():
        assert len(wall) == len(cpu) == 2 and min(wall) > 0 and min(cpu) > 0
    [ratios] = model_bench.paired_ratios(rates, "trainer").values()
    model, trainer = rates[("model", "auto")][0], rates[("trainer", "auto")][0]
    assert ratios == [trainer[0] / model[0], trainer[1] / model[1]]


def test_the_trainer_feed_weighs_classes_as_a_fer2013_run():
    _, batches, fit_kwargs = model_bench._feed("trainer", "paper", 32, 8, "auto")
    weights = fit_kwargs["class_weight"]
    assert max(weights, key=weights.get) == 1 and min(weights, key=weights.get) == 3  # disgust, happy
    images, labels = next(iter(batches))
    assert images.shape[1:] == (48, 48, 1) and labels.shape == (32,)
    _, in_step = train_step_plan(HParams(batch_size=32))
    if in_step:  # the step normalises and augments each slice: the batches stay raw
        assert images.dtype == tf.uint8
    else:  # normalised (and augmented) in the input pipeline, as the Trainer does then
        assert images.dtype == tf.float32 and abs(float(tf.reduce_mean(images))) < 0.2
