"""ServedModel: a model of the TF Serving directory as a Model artifact, on Kubeflow: the Evaluator's
baseline, and the Trainer's warm-start model.

Open-source Kubeflow Pipelines cannot execute TFX Resolver nodes, so "latest blessed model" is not
available there. This component reads what the Pusher published instead and copies it into
`<artifact>/Format-Serving`, where the Evaluator (baseline_model) and the Trainer (base_model) look
for a model. Which version is chosen by the `version` parameter, which the SpanResolver task computes
at the start of the run (components/span_resolver): published versions never change, so the
output follows from the parameters and KFP may cache this task like any other.

As the Evaluator's baseline (a `candidate` is given): the served version (the newest complete one),
so that the no-regression check compares the candidate with what users are served. A model is never
its own baseline: when the candidate *is* the served model (a rerun over data the served model was
trained on, which caching answers with the same model), the baseline is `version`, the one that
model was compared with itself; `version` 0 means none, and the candidate becomes its own baseline,
the change threshold passes and the absolute floor alone decides, as on a first run. Whatever
`version` says, a candidate that differs from the served model is compared with the served model.

As a warm start (no candidate): exactly `version`, or an empty artifact for 0 (the Trainer then
starts fresh).

The serving directory itself must exist (the operator creates it once, empty, for a first
deployment): a mistyped path would otherwise look like "nothing served yet" and silently drop the
no-regression check on every run.
"""
import os

from absl import logging
from tfx import v1 as tfx
from tfx.dsl.io import fileio
from tfx.utils import io_utils, path_utils

from components.model_card.card import CARD_FILES
from components.pusher.serving_dir import newest_complete_version, saved_model_digest


class ServingDirMissing(FileNotFoundError):
    """The configured serving directory does not exist: mistyped, or never created."""


def check_serving_dir(serving_dir: str) -> None:
    if not fileio.isdir(serving_dir):
        raise ServingDirMissing(
            f"The serving directory {serving_dir} does not exist. If this is the first deployment, create it "
            f"(empty: `gsutil cp /dev/null {serving_dir.rstrip('/')}/` on GCS, mkdir locally) and the first "
            f"model is gated by the accuracy floor alone; otherwise fix DEEP_EMOTION_KFP_SERVING_DIR, which "
            f"must name the directory TF Serving serves.")


def version_number(value) -> int:
    """A version from a parameter: an int, or text ("1733", "1733.0") when it comes from an upstream output."""
    return 0 if value in (None, "") else int(float(value))


def _baseline_source(candidate_dir: str, serving_dir: str, version: int) -> int:
    """The version the candidate is compared with (0: the candidate itself); see the module docstring."""
    served = newest_complete_version(serving_dir)
    if served is None:
        return 0
    if saved_model_digest(os.path.join(serving_dir, str(served)), CARD_FILES) != saved_model_digest(candidate_dir):
        if version != served:
            logging.warning("The candidate is not the served model %s: it is the baseline, not version %s.",
                            served, version or "none")
        return served
    return version


@tfx.dsl.components.component
def ServedModel(
    served_model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Model],
    serving_dir: tfx.dsl.components.Parameter[str],
    version: tfx.dsl.components.Parameter[str] = "",
    candidate: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model] = None,
) -> None:
    """Copies the chosen version (see the module docstring) into `served_model`; `served_version`
    says which (0: none, or the candidate as its own baseline)."""
    check_serving_dir(serving_dir)
    requested = version_number(version)
    if candidate is not None:
        candidate_dir = path_utils.serving_model_path(candidate.uri, path_utils.is_old_model_artifact(candidate))
        chosen = _baseline_source(candidate_dir, serving_dir, requested)
        source = os.path.join(serving_dir, str(chosen)) if chosen else candidate_dir
        if not chosen:
            logging.warning("No other model to compare with under %s: the candidate is its own baseline, so only "
                            "the absolute accuracy floor gates this run.", serving_dir)
    else:
        chosen = requested
        source = os.path.join(serving_dir, str(chosen)) if chosen else None
    if source is not None:
        if chosen and not fileio.exists(os.path.join(source, "saved_model.pb")):
            raise FileNotFoundError(f"Version {chosen} under {serving_dir} is gone or incomplete (no saved_model.pb)")
        logging.info("ServedModel: version %s (%s)", chosen or "none: the candidate", source)
        io_utils.copy_dir(source, path_utils.serving_model_dir(served_model.uri))
    else:
        logging.info("ServedModel: no version (%s): an empty artifact.", serving_dir)
        fileio.makedirs(served_model.uri)
    served_model.set_int_custom_property("served_version", chosen)
    served_model.set_string_custom_property("source_uri", source or "")
