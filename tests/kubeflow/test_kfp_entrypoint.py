"""The container command of the compiled pipeline, run as a KFP 2.x launcher would run it."""
import json
import os
import subprocess
import sys

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils
from tfx.types import standard_artifacts

from components.pusher import serving_dir as pusher
from pipeline import kfp_entrypoint

RUN = "mlpipeline/v2/artifacts/deep-emotion/3f2a"


def test_s3_and_minio_uris_map_to_the_launcher_mirror_and_back_gs_stays():
    for uri, local in [("minio://mlpipeline/a/b", "/minio/mlpipeline/a/b"), ("s3://bucket/a", "/s3/bucket/a")]:
        assert kfp_entrypoint.to_mirror(uri, root="/") == local
        assert kfp_entrypoint.to_uri(local, root="/") == uri
    assert kfp_entrypoint.to_mirror("gs://bucket/a", root="/") == "gs://bucket/a"
    assert kfp_entrypoint.to_uri("/tmp/minio-not-a-mirror", root="/") == "/tmp/minio-not-a-mirror"


# What open-source KFP's driver passes for an upstream artifact: its MLMD id as the name, the
# MLMD properties as metadata, and no type (backend/src/v2/metadata/client.go sets Schema "").
KFP_INPUT = {"name": "12", "uri": "/tmp/x", "type": {"instanceSchema": ""},
             "metadata": {"span": 1.0, "split_names": '["train"]', "display_name": "examples"}}


def _parse(executor_input):
    message = json_format.ParseDict(executor_input, pipeline_spec_pb2.ExecutorInput())
    return kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(message.inputs.artifacts)


def test_tfx_cannot_read_the_input_artifacts_kfp_passes_until_their_types_are_filled(compiled_package):
    spec = compiled_package[1]
    declared = spec["components"]["StatisticsGen"]["inputDefinitions"]
    executor_input = {"inputs": {"artifacts": {"examples": {"artifacts": [dict(KFP_INPUT)]}}}}
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'get'"):  # tensorflow/tfx#7768
        _parse(executor_input)

    filled = kfp_entrypoint.fill_input_types(executor_input, declared)
    [examples] = _parse(filled)["examples"]
    assert isinstance(examples, standard_artifacts.Examples) and examples.uri == "/tmp/x"
    assert examples.span == 1 and examples.split_names == '["train"]'
    # A type that is already there is kept, and an input the spec does not declare is left alone.
    kept = {"inputs": {"artifacts": {"examples": {"artifacts": [dict(KFP_INPUT, type={"schemaTitle": "tfx.Model"})]},
                                     "other": {"artifacts": [dict(KFP_INPUT)]}}}}
    kfp_entrypoint.fill_input_types(kept, declared)
    assert kept["inputs"]["artifacts"]["examples"]["artifacts"][0]["type"] == {"schemaTitle": "tfx.Model"}
    assert kept["inputs"]["artifacts"]["other"]["artifacts"][0]["type"] == {"instanceSchema": ""}


def test_compiled_served_model_step_runs_on_a_minio_root(compiled_package, tmp_path, fake_saved_model):
    """The ServedModel container exactly as compiled (command, args), with the ExecutorInput the KFP
    launcher passes for a minio:// pipeline root and the input artifact it downloaded to /minio/...
    (here under tmp_path), typeless as KFP's driver hands it over. The output must land in the
    mirror, for the launcher to upload, and the executor output must name the minio:// URI."""
    spec = compiled_package[1]
    container = spec["deploymentSpec"]["executors"][spec["components"]["ServedModel"]["executorLabel"]]["container"]
    model_type = spec["components"]["ServedModel"]["inputDefinitions"]["artifacts"]["candidate"]["artifactType"]
    serving = tmp_path / "serving"
    fake_saved_model(str(serving / "1000"), "served")
    mirror = tmp_path / "mirror"
    fake_saved_model(str(mirror / "minio" / RUN / "Trainer" / "model" / "Format-Serving"), "candidate")
    output_file = tmp_path / "kfp_outputs" / "output_metadata.json"
    executor_input = {
        "inputs": {"parameterValues": {"serving_dir": str(serving)},
                   "artifacts": {"candidate": {"artifacts": [
                       {"name": "7", "type": {"instanceSchema": ""}, "uri": f"minio://{RUN}/Trainer/model"}]}}},
        "outputs": {"artifacts": {"served_model": {"artifacts": [
            {"name": "served", "type": model_type, "uri": f"minio://{RUN}/ServedModel/served_model"}]}},
            "outputFile": str(output_file)},
    }
    args = [json.dumps(executor_input) if a == "{{$}}" else a for a in container["args"]]
    assert container["command"][:2] == ["python", "-m"]
    result = subprocess.run([sys.executable, "-m", *container["command"][2:], *args], capture_output=True, text=True,
                            env={**os.environ, "KFP_LAUNCHER_MIRROR_ROOT": str(mirror)}, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]

    produced = mirror / "minio" / RUN / "ServedModel" / "served_model" / "Format-Serving"
    assert pusher.saved_model_digest(str(produced)) == pusher.saved_model_digest(str(serving / "1000"))
    [artifact] = json.loads(output_file.read_text())["artifacts"]["served_model"]["artifacts"]
    assert artifact["uri"] == f"minio://{RUN}/ServedModel/served_model"
    assert artifact["metadata"]["served_version"] == 1000
