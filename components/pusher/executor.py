"""A Pusher executor for TF Serving model directories: each push appears whole or not at all, and
re-blessing the model already in service does not add a duplicate version.

TFX's own filesystem Pusher copies file by file into `<base>/<unix seconds>/` (saved_model.pb last);
TF Serving polls that directory and may see a half-copied version. Here the copy goes to a hidden
staging directory (TF Serving ignores names that are not numbers) and is renamed into place in one
step. A pipeline rerun re-executes Evaluator and Pusher against the new baseline and would push an
identical model again; when the blessed model's content equals the newest version's, that version
is reported as the push instead. Object stores (gs://, s3://) have no atomic directory rename: there
the TFX behaviour (saved_model.pb copied last) is kept.
"""
import hashlib
import os
import time
from typing import Any, Dict, List, Optional

from absl import logging
from tfx import types
from tfx.components.pusher import executor as tfx_pusher
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils


def saved_model_digest(model_dir: str) -> str:
    """sha256 over every file's relative path and content: equal digests, identical models."""
    digest = hashlib.sha256()
    for root, _, files in sorted(fileio.walk(model_dir)):
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, model_dir).encode())
            with fileio.open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def serving_versions(base_dir: str) -> List[int]:
    """Version numbers present under a TF Serving base directory, ascending."""
    if not fileio.exists(base_dir):
        return []
    return sorted(int(n.rstrip("/")) for n in fileio.listdir(base_dir) if n.rstrip("/").isdigit())


def push(model_dir: str, base_dir: str, now: Optional[int] = None) -> tuple:
    """Publishes model_dir as a new version under base_dir unless the newest version is identical.

    Returns (version, pushed_new). Versions are unix seconds, kept strictly increasing so that TF
    Serving always serves the latest push even when two pushes fall within one second.
    """
    versions = serving_versions(base_dir)
    if versions and saved_model_digest(os.path.join(base_dir, str(versions[-1]))) == saved_model_digest(model_dir):
        return str(versions[-1]), False
    version = str(max(int(now if now is not None else time.time()), versions[-1] + 1 if versions else 0))
    final = os.path.join(base_dir, version)
    if "://" in base_dir:
        io_utils.copy_dir(model_dir, final, deny_regex_patterns=[r"saved_model\.pb"])
        io_utils.copy_file(os.path.join(model_dir, "saved_model.pb"), os.path.join(final, "saved_model.pb"))
    else:
        staging = os.path.join(base_dir, f".incomplete-{version}")
        if fileio.exists(staging):
            fileio.rmtree(staging)
        io_utils.copy_dir(model_dir, staging)
        os.rename(staging, final)
    return version, True


class Executor(tfx_pusher.Executor):
    """TFX Pusher executor with atomic, de-duplicated filesystem pushes."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            logging.warning("Model NOT pushed: the Evaluator did not bless it; the served model is unchanged.")
            self._MarkNotPushed(model_push)
            return
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError(f"Only filesystem push destinations are supported, got {destination}")
        base_dir = destination.filesystem.base_directory
        model_dir = self.GetModelPath(input_dict)
        version, pushed_new = push(model_dir, base_dir)
        serving_path = os.path.join(base_dir, version)
        if pushed_new:
            logging.info("Model pushed to %s", serving_path)
        else:
            logging.info("Blessed model is identical to the served version %s: no new version.", version)
        io_utils.copy_dir(model_dir, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
        model_push.set_int_custom_property("new_version", int(pushed_new))
