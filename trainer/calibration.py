"""Probabilities a user can read as probabilities, and a flag when the model is unsure.

- Temperature scaling (Guo et al. 2017): one scalar T fitted on the eval split by minimising the
  negative log-likelihood of softmax(logits / T). It changes no prediction (argmax is unchanged),
  only how confident they are; the exported signatures apply it (trainer/export.py).
- Expected calibration error: the top-label ECE, 15 equal-width confidence bins, as Guo et al.
- Abstention: the lowest confidence threshold at which the predictions the model keeps reach a
  target precision on eval; below it the served answer carries `uncertain: true` (the class list
  stays the seven emotions).
"""
import dataclasses
from typing import Optional

import numpy as np
from scipy import optimize, special

ECE_BINS = 15


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    return special.softmax(np.asarray(logits, np.float64) / temperature, axis=-1)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    log_p = special.log_softmax(np.asarray(logits, np.float64) / temperature, axis=-1)
    return float(-np.mean(log_p[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises eval NLL (convex in 1/T: a bounded scalar search suffices)."""
    if len(labels) == 0:
        return 1.0
    result = optimize.minimize_scalar(lambda log_t: negative_log_likelihood(logits, labels, float(np.exp(log_t))),
                                      bounds=(np.log(0.05), np.log(20.0)), method="bounded",
                                      options={"xatol": 1e-4})
    return float(np.exp(result.x))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE: sum over confidence bins of |accuracy - mean confidence|, weighted by bin size."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    if len(labels) == 0:
        return float("nan")
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(error)


@dataclasses.dataclass(frozen=True)
class Abstention:
    """threshold: answers below this confidence are flagged uncertain. precision / coverage: on eval,
    of the answers kept, and the share kept. reached: whether any threshold met the target."""
    threshold: float
    target_precision: float
    precision: float
    coverage: float
    reached: bool


def abstention_threshold(probabilities: np.ndarray, labels: np.ndarray, target_precision: float) -> Abstention:
    """The lowest threshold whose kept answers are at least target_precision correct on eval.

    Lowest, so that as few answers as possible are flagged. When even the most confident answers
    miss the target, the threshold is the highest confidence seen (nearly everything flagged) and
    `reached` is False: the caller says so rather than pretending.
    """
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    if not 0.0 < target_precision <= 1.0:
        raise ValueError(f"target_precision={target_precision}: must be in (0, 1]")
    if len(labels) == 0:
        return Abstention(0.0, target_precision, float("nan"), float("nan"), False)
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    order = np.argsort(-confidence, kind="stable")
    ranked = confidence[order]
    kept_precision = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)  # keeping the k most confident
    ends = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])  # a threshold keeps whole groups of ties
    meets = ends[kept_precision[ends] >= target_precision]
    if not len(meets):
        kept = confidence >= ranked[0]
        return Abstention(float(ranked[0]), target_precision, float(correct[kept].mean()), float(kept.mean()), False)
    threshold = float(ranked[meets[-1]])  # the largest set that still meets the target
    kept = confidence >= threshold
    return Abstention(threshold, target_precision, float(correct[kept].mean()), float(kept.mean()), True)


def summary(logits: np.ndarray, labels: np.ndarray, target_precision: Optional[float]) -> dict:
    """Everything the Trainer records about calibration on eval (JSON-ready)."""
    temperature = fit_temperature(logits, labels)
    before, after = softmax(logits), softmax(logits, temperature)
    result = {"temperature": temperature, "eval_examples": int(len(labels)),
              "ece_before": expected_calibration_error(before, labels),
              "ece_after": expected_calibration_error(after, labels),
              "nll_before": negative_log_likelihood(logits, labels),
              "nll_after": negative_log_likelihood(logits, labels, temperature)}
    if target_precision is not None:
        result["abstention"] = dataclasses.asdict(abstention_threshold(after, labels, target_precision))
    return result
