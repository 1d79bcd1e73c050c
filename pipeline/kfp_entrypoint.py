"""Container command of every Kubeflow step: TFX's Kubeflow V2 entrypoint, with the input artifacts'
types filled in, and s3:// and minio:// artifact URIs mapped onto the local mirror the KFP launcher keeps.

Open-source KFP's driver hands every input artifact over with an empty type
(`{"instanceSchema": ""}`: it reads artifacts back from ML Metadata, which keeps no schema), and
TFX's entrypoint takes the artifact class from that type: `yaml.safe_load("")` is None and every
step with an input artifact fails with "'NoneType' object has no attribute 'get'"
(tensorflow/tfx#7768). The component's own inputs spec, which the compiled arguments carry
(`--json_serialized_inputs_spec_args`), declares each input's type: an empty one is filled from it.

TFX executors open artifact URIs with tf.io.gfile, which knows gs:// but neither s3:// (not without
tensorflow-io) nor minio:// (open-source KFP's default pipeline root). KFP 2.x's launcher, around each
step, downloads every input artifact to /s3/<bucket>/<key> or /minio/<bucket>/<key> and afterwards
uploads every output artifact from there. So for those two schemes the executor is handed the mirror
paths, and the URIs in its output metadata are mapped back, so that KFP records object-store
locations. gs:// URIs are left alone: TFX reads and writes GCS directly, which Dataflow needs.
"""
import json
import os
import runpy
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

from contract.runtime import quiet_tensorflow

quiet_tensorflow()

# The KFP launcher's LocalPathForURI; the root is "/" in a pod (tests point it elsewhere).
MIRRORED_SCHEMES = ("s3", "minio")
MIRROR_ROOT = os.environ.get("KFP_LAUNCHER_MIRROR_ROOT", "/")
INVOCATION_FLAG = "--json_serialized_invocation_args"
INPUTS_SPEC_FLAG = "--json_serialized_inputs_spec_args"
# What `python -m` would run without the shim: TFX's Kubeflow V2 container entrypoint.
TFX_ENTRYPOINT = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"


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


def fill_input_types(executor_input: Dict[str, Any], inputs_spec: Dict[str, Any]) -> Dict[str, Any]:
    """Gives every input artifact without a type the artifactType its component declares (in place)."""
    declared = inputs_spec.get("artifacts", {})
    for key, artifact_list in executor_input.get("inputs", {}).get("artifacts", {}).items():
        artifact_type = declared.get(key, {}).get("artifactType")
        for artifact in artifact_list.get("artifacts", []):
            if artifact_type and not any((artifact.get("type") or {}).get(k) for k in ("instanceSchema", "schemaTitle")):
                artifact["type"] = artifact_type
    return executor_input


def localize_invocation(executor_input_json: str, inputs_spec_json: Optional[str] = None) -> str:
    """The ExecutorInput JSON with input types filled in (from the inputs spec, when given) and every
    mirrored artifact URI replaced by its local mirror path."""
    executor_input = json.loads(executor_input_json)
    if inputs_spec_json:
        fill_input_types(executor_input, json.loads(inputs_spec_json))
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


def _flag_value(argv: List[str], flag: str) -> Tuple[Optional[int], Optional[str]]:
    """(index in argv, value) of `--flag VALUE` or `--flag=VALUE`; (None, None) when absent."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return i + 1, argv[i + 1]
        if arg.startswith(flag + "="):
            return i, arg.split("=", 1)[1]
    return None, None


def main(argv: List[str]) -> None:
    """Runs TFX's entrypoint module as `python -m` does (its own flag parsing and exit status), with
    the invocation's input types filled in and mirrored URIs localised, then maps the URIs in its
    output back."""
    argv = list(argv)
    position, invocation = _flag_value(argv, INVOCATION_FLAG)
    if position is None:
        raise SystemExit(f"{INVOCATION_FLAG} is missing from the arguments: not a Kubeflow V2 task invocation")
    output_file = json.loads(invocation).get("outputs", {}).get("outputFile", "")
    localized = localize_invocation(invocation, _flag_value(argv, INPUTS_SPEC_FLAG)[1])
    argv[position] = f"{INVOCATION_FLAG}={localized}" if argv[position].startswith(INVOCATION_FLAG + "=") else localized
    sys.argv = [TFX_ENTRYPOINT] + argv[1:]
    try:
        runpy.run_module(TFX_ENTRYPOINT, run_name="__main__", alter_sys=True)
    finally:  # absl's app.run ends the process through SystemExit, success included
        restore_output_uris(output_file)


if __name__ == "__main__":
    main(sys.argv)
