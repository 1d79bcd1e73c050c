"""Container command of every Kubeflow step: TFX's Kubeflow V2 entrypoint, with s3:// and minio://
artifact URIs mapped onto the local mirror that the KFP launcher keeps.

TFX executors open artifact URIs with tf.io.gfile, which knows gs:// but neither s3:// (not without
tensorflow-io) nor minio:// (open-source KFP's default pipeline root). KFP 2.x's launcher, around each
step, downloads every input artifact to /s3/<bucket>/<key> or /minio/<bucket>/<key> and afterwards
uploads every output artifact from there. So for those two schemes the executor is handed the mirror
paths, and the URIs in its output metadata are mapped back, so that KFP records object-store
locations. gs:// URIs are left alone: TFX reads and writes GCS directly, which Dataflow needs.
"""
import json
import os
import sys
from typing import Any, Callable, List

from deep_emotion.runtime import quiet_tensorflow

quiet_tensorflow()

from absl import app  # noqa: E402
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor  # noqa: E402

# The KFP launcher's LocalPathForURI; the root is "/" in a pod (tests point it elsewhere).
MIRRORED_SCHEMES = ("s3", "minio")
MIRROR_ROOT = os.environ.get("KFP_LAUNCHER_MIRROR_ROOT", "/")
INVOCATION_FLAG = "--json_serialized_invocation_args"


def to_mirror(uri: str, root: str = MIRROR_ROOT) -> str:
    """s3://b/k -> <root>/s3/b/k and minio://b/k -> <root>/minio/b/k; anything else unchanged."""
    for scheme in MIRRORED_SCHEMES:
        if uri.startswith(f"{scheme}://"):
            return os.path.join(root, scheme, uri[len(scheme) + 3:])
    return uri


def to_uri(path: str, root: str = MIRROR_ROOT) -> str:
    """The inverse of to_mirror."""
    for scheme in MIRRORED_SCHEMES:
        prefix = os.path.join(root, scheme, "")
        if path.startswith(prefix):
            return f"{scheme}://{path[len(prefix):]}"
    return path


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    return value


def localize_invocation(executor_input_json: str) -> str:
    """The ExecutorInput JSON with every mirrored artifact URI replaced by its local mirror path."""
    executor_input = json.loads(executor_input_json)
    for section in ("inputs", "outputs"):
        for artifact_list in executor_input.get(section, {}).get("artifacts", {}).values():
            for artifact in artifact_list.get("artifacts", []):
                artifact["uri"] = to_mirror(artifact.get("uri", ""))
    return json.dumps(executor_input)


def restore_output_uris(output_file: str) -> None:
    """Maps mirror paths in the executor output (artifact URIs, metadata) back to object-store URIs."""
    if not os.path.exists(output_file):
        return
    with open(output_file, encoding="utf-8") as f:
        executor_output = json.load(f)
    if "artifacts" in executor_output:
        executor_output["artifacts"] = _map_strings(executor_output["artifacts"], to_uri)
    with open(output_file, "w", encoding="utf-8") as f:
        json.dump(executor_output, f)


def main(argv: List[str]) -> None:
    argv = list(argv)
    position = argv.index(INVOCATION_FLAG) + 1
    output_file = json.loads(argv[position]).get("outputs", {}).get("outputFile", "")
    argv[position] = localize_invocation(argv[position])

    def run(parsed_argv):
        kubeflow_v2_run_executor.main(parsed_argv)
        restore_output_uris(output_file)

    # As TFX's own `python -m ...kubeflow_v2_run_executor`: absl app, TFX's flag parser (unknown
    # arguments are the Beam pipeline args).
    app.run(run, argv=argv, flags_parser=kubeflow_v2_run_executor._parse_flags)  # pylint: disable=protected-access


if __name__ == "__main__":
    main(sys.argv)
