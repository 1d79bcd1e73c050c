"""Temperature scaling, expected calibration error and the abstention threshold (trainer/calibration.py)."""
import numpy as np
import pytest
from scipy import special

from trainer import calibration


def _over_confident(n=20_000, factor=3.0, seed=0):
    """Labels drawn from softmax(z) (so softmax(z) is perfectly calibrated) and a model answering
    factor * z: right as often, far too sure of itself."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.5, size=(n, 7))
    labels = np.array([rng.choice(7, p=p) for p in special.softmax(z, axis=1)])
    return factor * z, labels


def test_temperature_scaling_lowers_the_calibration_error_of_an_over_confident_model():
    logits, labels = _over_confident()
    temperature = calibration.fit_temperature(logits[:10_000], labels[:10_000])  # fitted on "eval"
    assert temperature == pytest.approx(3.0, rel=0.08)
    test_logits, test_labels = logits[10_000:], labels[10_000:]
    before = calibration.expected_calibration_error(calibration.softmax(test_logits), test_labels)
    after = calibration.expected_calibration_error(calibration.softmax(test_logits, temperature), test_labels)
    assert before > 0.15 and after < 0.02
    # the answers themselves do not change
    np.testing.assert_array_equal(calibration.softmax(test_logits).argmax(1),
                                  calibration.softmax(test_logits, temperature).argmax(1))


def test_a_calibrated_model_keeps_a_temperature_near_one():
    logits, labels = _over_confident(factor=1.0, seed=1)
    assert calibration.fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.06)


def test_ece_of_known_cases():
    labels = np.array([0, 0, 1, 1])
    sure_and_right = np.eye(7)[labels]
    assert calibration.expected_calibration_error(sure_and_right, labels) == pytest.approx(0.0)
    sure_and_wrong = np.eye(7)[1 - labels]
    assert calibration.expected_calibration_error(sure_and_wrong, labels) == pytest.approx(1.0)


@pytest.mark.parametrize("target", [0.8, 0.9, 0.95])
def test_the_abstention_threshold_is_the_lowest_that_meets_the_target_precision(target):
    logits, labels = _over_confident(n=5_000, factor=1.0, seed=2)
    probabilities = calibration.softmax(logits)
    found = calibration.abstention_threshold(probabilities, labels, target)
    confidence, correct = probabilities.max(1), probabilities.argmax(1) == labels
    kept = confidence >= found.threshold
    assert found.reached and correct[kept].mean() >= target
    assert found.precision == pytest.approx(correct[kept].mean()) and found.coverage == pytest.approx(kept.mean())
    lower = confidence[confidence < found.threshold].max()  # the next lower threshold keeps one more group
    assert correct[confidence >= lower].mean() < target


def test_an_unreachable_target_is_reported_as_such():
    labels = np.zeros(100, np.int64)
    probabilities = np.full((100, 7), 1 / 7)
    probabilities[:, 3] += 0.1  # always answers 3, never right
    found = calibration.abstention_threshold(probabilities, labels, 0.9)
    assert not found.reached and found.precision == 0.0
