"""The compiled Kubeflow pipeline, read back with kfp's own loaders: what a KFP 2.x cluster receives."""
import importlib.util
import json
import os
import re

import kfp.components
import pytest
from apache_beam.options import pipeline_options as beam_options
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from deep_emotion.cli.kfp import load_package
from pipeline import configs, kubeflow, local

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def spec(compiled_package):
    """The PipelineSpec proto read from the YAML file, strictly (an unknown field fails)."""
    return load_package(compiled_package[0])


def _executors(spec):
    return json_format.MessageToDict(spec.deployment_spec)["executors"]


def _executor(spec, task):
    return _executors(spec)[spec.components[task].executor_label]


def _constant(spec, task, parameter):
    return spec.root.dag.tasks[task].inputs.parameters[parameter].runtime_value.constant


def test_kfp_loads_it_as_a_pipeline_with_the_data_root_and_accept_drift_parameters(compiled_package, kfp_settings):
    component = kfp.components.load_component_from_file(compiled_package[0])
    assert component.name == configs.PIPELINE_NAME
    assert sorted(component.component_spec.inputs) == [kubeflow.ACCEPT_DRIFT_PARAMETER, kubeflow.DATA_ROOT_PARAMETER]
    assert component.component_spec.inputs["data_root"].default == kfp_settings["KFP_DATA_ROOT"]
    assert component.component_spec.inputs["accept_drift"].default == ""


def test_every_component_of_the_local_pipeline_with_span_resolver_and_served_model_instead_of_resolver(spec):
    local_ids = {c.id for c in local.build().components}
    assert "latest_blessed_model_resolver" in local_ids
    assert set(spec.root.dag.tasks) == local_ids - {"latest_blessed_model_resolver"} | {"SpanResolver", "ServedModel"}
    # Nothing Vertex-only: every executor is a plain container (no resolver or importer executors).
    assert {key for executor in _executors(spec).values() for key in executor} == {"container"}
    assert not [t for t in spec.root.dag.tasks if "resolver" in t.lower() and t != "SpanResolver"]
    evaluator_inputs = spec.root.dag.tasks["Evaluator"].inputs.artifacts
    assert evaluator_inputs["baseline_model"].task_output_artifact.producer_task == "ServedModel"
    served_model_input = spec.root.dag.tasks["ServedModel"].inputs.artifacts["candidate"]
    assert served_model_input.task_output_artifact.producer_task == "Trainer"


def test_every_step_runs_the_configured_image_through_the_tfx_entrypoint(spec, kfp_settings):
    executors = _executors(spec)
    assert len(executors) == len(spec.root.dag.tasks)
    for executor in executors.values():
        assert executor["container"]["image"] == kfp_settings["KFP_IMAGE"]
        python, flag, module = executor["container"]["command"]
        assert (python, flag) == ("python", "-m") and importlib.util.find_spec(module) is not None


def test_trainer_requests_the_configured_gpus_cpu_and_memory(spec, kfp_settings):
    resources = _executor(spec, "Trainer")["container"]["resources"]
    assert resources["accelerator"]["type"] == kfp_settings["KFP_TRAINER_GPU_TYPE"]
    assert int(resources["accelerator"]["count"]) == kfp_settings["KFP_TRAINER_GPU_COUNT"]
    assert resources["cpuLimit"] == kfp_settings["KFP_TRAINER_CPU"]
    assert resources["memoryLimit"] == kfp_settings["KFP_TRAINER_MEMORY_GB"]
    others = [t for t in spec.root.dag.tasks if t != "Trainer" and "resources" in _executor(spec, t)["container"]]
    assert others == []


def test_data_root_is_a_run_parameter_and_paths_are_as_the_pods_see_them(spec, kfp_settings):
    assert spec.root.dag.tasks["DeepEmotionExampleGen"].inputs.parameters["input_base"].component_input_parameter \
        == "data_root"
    assert _constant(spec, "ImportSchemaGen", "schema_file").string_value == configs.KFP_SCHEMA_PATH
    push = json.loads(_constant(spec, "Pusher", "push_destination").string_value)
    assert push["filesystem"]["base_directory"] == kfp_settings["KFP_SERVING_DIR"]
    assert _constant(spec, "ServedModel", "serving_dir").string_value == kfp_settings["KFP_SERVING_DIR"]


def test_transform_and_trainer_use_the_installed_package_not_uploaded_wheels(spec):
    assert _constant(spec, "Trainer", "run_fn").string_value == "trainer.task.run_fn"
    assert _constant(spec, "Transform", "preprocessing_fn").string_value == "trainer.preprocessing.preprocessing_fn"
    for task in ("Trainer", "Transform"):
        assert "module_file" not in spec.root.dag.tasks[task].inputs.parameters
        assert "module_path" not in spec.root.dag.tasks[task].inputs.parameters


def test_gate_keeps_floor_and_no_regression_check(spec):
    eval_config = json.loads(_constant(spec, "Evaluator", "eval_config").string_value)
    accuracy = [m for s in eval_config["metrics_specs"] for m in s["metrics"]
                if m["class_name"] == "SparseCategoricalAccuracy"][0]
    [overall] = accuracy["per_slice_thresholds"]  # gated on the overall slice only
    assert overall["slicing_specs"] == [{}]
    assert overall["threshold"]["value_threshold"]["lower_bound"] == configs.ACCURACY_FLOOR
    assert overall["threshold"]["change_threshold"]["direction"] == "HIGHER_IS_BETTER"


def test_caching_is_off_only_for_the_span_resolver_which_reads_the_data_root_and_serving_dir(spec):
    uncached = sorted(t for t, task in spec.root.dag.tasks.items() if not task.caching_options.enable_cache)
    assert uncached == ["SpanResolver"]


def test_span_resolver_outputs_feed_example_gen_and_served_model_under_task_names_kfp_finds(spec, kfp_settings):
    """TFX names the producer '<id>_task'; KFP's driver looks the task name up verbatim."""
    tasks = spec.root.dag.tasks
    wired = {(task, key): p.task_output_parameter for task in tasks for key, p in tasks[task].inputs.parameters.items()
             if p.HasField("task_output_parameter")}
    assert {k: (v.producer_task, v.output_parameter_key) for k, v in wired.items()} == {
        ("DeepEmotionExampleGen", "span"): ("SpanResolver", "span"),
        ("DeepEmotionExampleGen", "span_folders"): ("SpanResolver", "span_folders"),
        ("DeepEmotionExampleGen", "input_fingerprint"): ("SpanResolver", "input_fingerprint"),
        ("ServedModel", "version"): ("SpanResolver", "baseline_version")}
    outputs = spec.components["SpanResolver"].output_definitions.parameters
    integer = pipeline_spec_pb2.ParameterType.NUMBER_INTEGER
    assert {k: outputs[k].parameter_type for k in ("span", "baseline_version")} == {"span": integer,
                                                                                  "baseline_version": integer}
    assert tasks["SpanResolver"].inputs.parameters["data_root"].component_input_parameter == "data_root"
    assert _constant(spec, "SpanResolver", "serving_dir").string_value == kfp_settings["KFP_SERVING_DIR"]
    assert _constant(spec, "SpanResolver", "span_pattern").string_value == configs.SPAN_PATTERN
    assert tasks["DataGate"].inputs.parameters["accept_drift"].component_input_parameter == "accept_drift"
    assert tasks["DataGate"].inputs.artifacts["statistics"].task_output_artifact.producer_task == "StatisticsGen"
    # TFX's own span driver hook (Vertex AI only) would overwrite the resolution: not compiled in.
    assert "lifecycle" not in _executor(spec, "DeepEmotionExampleGen")["container"]


def _beam_options(args):
    """What Beam itself makes of a list of arguments."""
    options = beam_options.PipelineOptions(args)
    return {
        "runner": options.view_as(beam_options.StandardOptions).runner,
        "direct_running_mode": options.view_as(beam_options.DirectOptions).direct_running_mode,
        "direct_num_workers": options.view_as(beam_options.DirectOptions).direct_num_workers,
        "project": options.view_as(beam_options.GoogleCloudOptions).project,
        "region": options.view_as(beam_options.GoogleCloudOptions).region,
        "temp_location": options.view_as(beam_options.GoogleCloudOptions).temp_location,
        "job_endpoint": options.view_as(beam_options.PortableOptions).job_endpoint,
        "environment_type": options.view_as(beam_options.PortableOptions).environment_type,
        "environment_config": options.view_as(beam_options.PortableOptions).environment_config,
        "sdk_container_image": options.view_as(beam_options.WorkerOptions).sdk_container_image,
    }


def test_beam_components_run_multi_process_direct_beam_in_their_pod(spec, kfp_settings):
    for task in ("DeepEmotionExampleGen", "StatisticsGen", "Transform", "Evaluator"):
        options = _beam_options(_executor(spec, task)["container"]["args"])
        assert options["runner"] is None  # Beam's default: the DirectRunner
        assert options["direct_running_mode"] == "multi_processing"
        assert options["direct_num_workers"] == kfp_settings["BEAM_DIRECT_NUM_WORKERS"]
        # the workers run the image's installed code: TFX must not package itself for them each step
        assert options["sdk_container_image"] == kfp_settings["KFP_IMAGE"]


def test_one_direct_worker_runs_in_the_steps_own_process(monkeypatch):
    monkeypatch.setattr(configs, "BEAM_DIRECT_NUM_WORKERS", 1)
    options = _beam_options(kubeflow.beam_pipeline_args("direct"))
    assert (options["direct_running_mode"], options["direct_num_workers"]) == ("in_memory", 1)


@pytest.mark.parametrize("profile, settings, expected", [
    ("dataflow", {"DATAFLOW_PROJECT": "p", "DATAFLOW_REGION": "europe-west1", "DATAFLOW_TEMP_LOCATION": "gs://b/tmp"},
     {"runner": "DataflowRunner", "project": "p", "region": "europe-west1", "temp_location": "gs://b/tmp",
      "sdk_container_image": "img:1"}),
    ("flink", {"FLINK_JOB_ENDPOINT": "flink-jobserver:8099"},
     {"runner": "PortableRunner", "job_endpoint": "flink-jobserver:8099", "environment_type": "EXTERNAL",
      "environment_config": "localhost:50000"}),
    ("spark", {"SPARK_JOB_ENDPOINT": "spark-jobserver:8099"},
     {"runner": "PortableRunner", "job_endpoint": "spark-jobserver:8099", "environment_type": "EXTERNAL"}),
])
def test_beam_profiles_send_data_components_to_a_runner(monkeypatch, profile, settings, expected):
    monkeypatch.setattr(configs, "KFP_IMAGE", "img:1")
    for name, value in settings.items():
        monkeypatch.setattr(configs, name, value)
    options = _beam_options(kubeflow.beam_pipeline_args(profile))
    assert {k: options[k] for k in expected} == expected


@pytest.mark.parametrize("profile, missing", [
    ("dataflow", "DEEP_EMOTION_DATAFLOW_PROJECT, DEEP_EMOTION_DATAFLOW_REGION, DEEP_EMOTION_DATAFLOW_TEMP_LOCATION"),
    ("flink", "DEEP_EMOTION_FLINK_JOB_ENDPOINT"),
    ("spark", "DEEP_EMOTION_SPARK_JOB_ENDPOINT"),
    ("samza", "expected one of"),
])
def test_a_profile_without_its_settings_names_the_missing_variables(profile, missing):
    with pytest.raises(ValueError, match=re.escape(missing)):
        kubeflow.beam_pipeline_args(profile)


def test_serving_dir_must_be_set_and_writable_by_tensorflow(monkeypatch):
    monkeypatch.setattr(configs, "KFP_SERVING_DIR", "")
    with pytest.raises(ValueError, match="DEEP_EMOTION_KFP_SERVING_DIR is not set"):
        kubeflow.build()
    with pytest.raises(ValueError, match="gs:// or local paths only"):
        kubeflow.build(serving_dir="minio://mlpipeline/serving")


def test_resolver_baseline_is_refused_for_kubeflow(monkeypatch):
    monkeypatch.setattr(configs, "KFP_SERVING_DIR", "gs://b/serving")
    monkeypatch.setattr(configs, "KFP_BASELINE", "latest_blessed")
    with pytest.raises(ValueError, match="cannot execute the Resolver"):
        kubeflow.build()


def test_warm_start_gives_the_trainer_the_served_version_the_span_resolver_picks(monkeypatch):
    monkeypatch.setattr(configs, "KFP_SERVING_DIR", "gs://b/serving")
    monkeypatch.setattr(configs, "WARM_START", True)
    pipeline = kubeflow.build()
    ids = [c.id for c in pipeline.components]
    assert "warm_start_model" in ids and ids.index("warm_start_model") < ids.index("Trainer")
    trainer = [c for c in pipeline.components if c.id == "Trainer"][0]
    assert trainer.inputs["base_model"].producer_component_id == "warm_start_model"


def test_floor_only_variant_has_no_baseline_and_no_change_threshold(monkeypatch):
    monkeypatch.setattr(configs, "KFP_SERVING_DIR", "gs://b/serving")
    monkeypatch.setattr(configs, "KFP_BASELINE", "none")
    pipeline = kubeflow.build()
    evaluator = [c for c in pipeline.components if c.id == "Evaluator"][0]
    assert "ServedModel" not in {c.id for c in pipeline.components}
    assert "baseline_model" not in evaluator.inputs
    assert '"change_threshold"' not in evaluator.exec_properties["eval_config"]


def test_image_layout_matches_the_schema_path_the_pipeline_reads():
    with open(os.path.join(REPO, "Dockerfile"), encoding="utf-8") as f:
        workdir = re.findall(r"^WORKDIR\s+(\S+)", f.read(), flags=re.M)[-1]
    assert configs.KFP_SCHEMA_PATH == os.path.join(workdir, "schema", "schema.pbtxt")
    assert os.path.exists(os.path.join(REPO, "schema", "schema.pbtxt"))


def test_transform_waits_for_the_data_gate_and_reads_the_curated_schema_as_the_trainer_does(spec):
    """The gate is a task dependency, not an input: dropping a one-off drift override (the gate's
    parameter) re-executes the gate alone, and Transform and Trainer come from the cache."""
    tasks = spec.root.dag.tasks
    assert "DataGate" in tasks["Transform"].dependent_tasks
    for task in ("Transform", "Trainer"):
        schema = tasks[task].inputs.artifacts["schema"].task_output_artifact
        assert schema.producer_task == "ImportSchemaGen", task
    assert not {task for task in tasks for artifact in tasks[task].inputs.artifacts.values()
                if artifact.task_output_artifact.producer_task == "DataGate"}
