"""ServedModel through its real TFX executor: what the Evaluator receives as the baseline."""
import itertools
import os

import pytest
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.pusher import serving_dir as pusher
from components.served_model.component import ServedModel, ServingDirMissing

_RUNS = itertools.count()


def _run(tmp_path, serving_dir, fake_saved_model, version=None, weights="candidate", with_candidate=True):
    """Runs the component's executor on a candidate with these weights (or none); returns the output.
    version: the parameter as Kubeflow passes it, text."""
    inputs = {}
    if with_candidate:
        candidate = standard_artifacts.Model()
        candidate.uri = str(tmp_path / "trainer" / "model")
        fake_saved_model(path_utils.serving_model_dir(candidate.uri), weights)
        inputs["candidate"] = [candidate]
    baseline = standard_artifacts.Model()
    baseline.uri = str(tmp_path / "served_model" / f"out{next(_RUNS)}")
    executor = ServedModel.EXECUTOR_SPEC.executor_class()
    executor.Do(inputs, {"served_model": [baseline]},
                {"serving_dir": str(serving_dir), **({"version": version} if version is not None else {})})
    # Where TFX's Evaluator reads a baseline model from.
    return baseline, path_utils.serving_model_path(baseline.uri, path_utils.is_old_model_artifact(baseline))


def test_newest_served_version_becomes_the_baseline(tmp_path, fake_saved_model):
    serving = tmp_path / "serving"
    pusher.push(fake_saved_model(tmp_path / "m1", "old"), str(serving), now=1000)
    pusher.push(fake_saved_model(tmp_path / "m2", "in-service"), str(serving), now=2000)
    baseline, model_path = _run(tmp_path, serving, fake_saved_model)
    assert pusher.saved_model_digest(model_path) == pusher.saved_model_digest(str(serving / "2000"))
    assert baseline.get_int_custom_property("served_version") == 2000


def test_nothing_served_yet_gives_the_candidate_as_its_own_baseline(tmp_path, fake_saved_model):
    (tmp_path / "serving").mkdir()  # created empty for the first deployment
    baseline, model_path = _run(tmp_path, tmp_path / "serving", fake_saved_model)
    candidate_dir = path_utils.serving_model_dir(str(tmp_path / "trainer" / "model"))
    assert pusher.saved_model_digest(model_path) == pusher.saved_model_digest(candidate_dir)
    assert baseline.get_int_custom_property("served_version") == 0


def test_half_copied_version_is_not_taken_for_the_served_one(tmp_path, fake_saved_model):
    serving = tmp_path / "serving"
    fake_saved_model(serving / "1000", "complete")
    os.makedirs(serving / "2000" / "variables")  # an object-store push in progress: no saved_model.pb yet
    baseline, model_path = _run(tmp_path, serving, fake_saved_model)
    assert baseline.get_int_custom_property("served_version") == 1000
    assert pusher.saved_model_digest(model_path) == pusher.saved_model_digest(str(serving / "1000"))


def test_a_serving_dir_that_does_not_exist_fails_instead_of_dropping_the_baseline(tmp_path, fake_saved_model):
    mistyped = tmp_path / "servnig"
    with pytest.raises(ServingDirMissing, match=f"The serving directory {mistyped} does not exist"):
        _run(tmp_path, mistyped, fake_saved_model)
    assert not (tmp_path / "served_model").exists()


def test_a_candidate_that_is_the_served_model_is_compared_with_the_version_it_was_compared_with(
        tmp_path, fake_saved_model):
    """A rerun over the served model's own data: caching returns the served model as the candidate."""
    serving = tmp_path / "serving"
    pusher.push(fake_saved_model(tmp_path / "m1", "previous"), str(serving), now=1000)
    pusher.push(fake_saved_model(tmp_path / "m2", "candidate"), str(serving), now=2000)
    baseline, model_path = _run(tmp_path, serving, fake_saved_model, version="1000")
    assert baseline.get_int_custom_property("served_version") == 1000
    assert pusher.saved_model_digest(model_path) == pusher.saved_model_digest(str(serving / "1000"))
    baseline, _ = _run(tmp_path, serving, fake_saved_model, version="0")  # it was the first: its own baseline
    assert baseline.get_int_custom_property("served_version") == 0


def test_a_candidate_that_is_not_the_served_model_is_compared_with_it_whatever_the_parameter(
        tmp_path, fake_saved_model):
    serving = tmp_path / "serving"
    pusher.push(fake_saved_model(tmp_path / "m1", "previous"), str(serving), now=1000)
    pusher.push(fake_saved_model(tmp_path / "m2", "in-service"), str(serving), now=2000)
    baseline, _ = _run(tmp_path, serving, fake_saved_model, version="1000", weights="retrained")
    assert baseline.get_int_custom_property("served_version") == 2000


def test_as_a_warm_start_it_is_exactly_the_version_asked_for_or_nothing(tmp_path, fake_saved_model):
    serving = tmp_path / "serving"
    pusher.push(fake_saved_model(tmp_path / "m1", "previous"), str(serving), now=1000)
    pusher.push(fake_saved_model(tmp_path / "m2", "in-service"), str(serving), now=2000)
    baseline, model_path = _run(tmp_path, serving, fake_saved_model, version="1000.0", with_candidate=False)
    assert pusher.saved_model_digest(model_path) == pusher.saved_model_digest(str(serving / "1000"))
    baseline, model_path = _run(tmp_path, serving, fake_saved_model, version="0", with_candidate=False)
    assert baseline.get_int_custom_property("served_version") == 0 and not os.path.exists(model_path)
    with pytest.raises(FileNotFoundError, match="Version 3000 .* is gone or incomplete"):
        _run(tmp_path, serving, fake_saved_model, version="3000", with_candidate=False)
