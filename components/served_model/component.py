"""ServedModel: the model in service at the push destination, as a Model artifact for the Evaluator.

Open-source Kubeflow Pipelines cannot execute TFX Resolver nodes, so "latest blessed model" is not
available there. This component reads what the Pusher published instead: the newest complete version
(a numeric directory holding saved_model.pb, which the Pusher writes last) under the TF Serving base
directory, copied into `<artifact>/Format-Serving` where the Evaluator looks for a model. The no-
regression check therefore compares the candidate with the model users are actually served.

When nothing is served yet the candidate itself becomes the baseline: the change threshold compares
the candidate with itself (a difference of exactly 0, which passes) and the absolute floor alone
decides, as on a first local run. The artifact says which case applied (`served_version`, 0 = none).
The serving directory itself must exist (the operator creates it once, empty, for a first
deployment): a mistyped path would otherwise look like "nothing served yet" and silently drop
the no-regression check on every run.

Its output must reflect the serving directory at run time, never a cached copy: the Kubeflow runner
turns caching off for this task (see pipeline/kubeflow.py).
"""
import os

from absl import logging
from tfx import v1 as tfx
from tfx.dsl.io import fileio
from tfx.utils import io_utils, path_utils

from components.pusher.serving_dir import newest_complete_version


class ServingDirMissing(FileNotFoundError):
    """The configured serving directory does not exist: mistyped, or never created."""


@tfx.dsl.components.component
def ServedModel(
    candidate: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    served_model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Model],
    serving_dir: tfx.dsl.components.Parameter[str],
) -> None:
    """Copies the served model (or, with none served yet, the candidate) into `served_model`."""
    if not fileio.isdir(serving_dir):
        raise ServingDirMissing(
            f"The serving directory {serving_dir} does not exist. If this is the first deployment, create it "
            f"(empty: `gsutil cp /dev/null {serving_dir.rstrip('/')}/` on GCS, mkdir locally) and the first "
            f"model is gated by the accuracy floor alone; otherwise fix DEEP_EMOTION_KFP_SERVING_DIR, which "
            f"must name the directory TF Serving serves.")
    version = newest_complete_version(serving_dir)
    if version is None:
        source = path_utils.serving_model_path(candidate.uri, path_utils.is_old_model_artifact(candidate))
        logging.warning("No model served under %s yet: the candidate is its own baseline, so only the "
                        "absolute accuracy floor gates this run.", serving_dir)
    else:
        source = os.path.join(serving_dir, str(version))
        logging.info("Baseline: served version %s (%s)", version, source)
    io_utils.copy_dir(source, path_utils.serving_model_dir(served_model.uri))
    served_model.set_int_custom_property("served_version", version or 0)
    served_model.set_string_custom_property("source_uri", source)
