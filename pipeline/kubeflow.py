"""Kubeflow Pipelines 2.x: the same create_pipeline, compiled by KubeflowV2DagRunner into a PipelineSpec YAML.

    deep-emotion kfp compile --output deep-emotion-kfp.yaml     (or: python runners/kubeflow_runner.py OUT.yaml)

Settings come from pipeline/configs.py (the Kubeflow block) and DEEP_EMOTION_* variables. Where this
differs from the local variant (pipeline/local.py), and why:
- A SpanResolver task first (orchestrator_runs_drivers=False): open-source KFP runs no component
  drivers, so the spans, the fingerprint of their files and the served versions are resolved by a
  task, whose output parameters feed ExampleGen and ServedModel (components/span_resolver).
- baseline="served": open-source KFP cannot execute Resolver nodes; components/served_model hands the
  Evaluator the model in service instead (no-regression check kept; first run: floor only).
- The Trainer's GPU/CPU/memory request (a ResourceSpec platform config; BeamDagRunner rejects it).
- beam_pipeline_args from BEAM_PROFILE: direct (in the pod), dataflow, flink or spark.
- data_root and accept_drift are run parameters, so one compiled pipeline serves every data location.
- Caching: KFP's cache key is a task's input artifacts' ids, its parameters and its image, blind to
  files under data_root and to the serving directory. Only the SpanResolver reads those; its cache is
  off, every other task's on, so the keys follow the data: nothing new, nothing runs again.
- compile_pipeline patches what TFX's compiler and KFP's backend disagree on (see there).
"""
from typing import Any, Dict, List, Optional

from contract.runtime import quiet_tensorflow

quiet_tensorflow()

import yaml  # noqa: E402
from kfp.pipeline_spec import pipeline_spec_pb2  # noqa: E402
from tfx import v1 as tfx  # noqa: E402
from tfx.components.example_gen.component import FileBasedExampleGen  # noqa: E402
from tfx.orchestration import data_types  # noqa: E402
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner  # noqa: E402

from components.span_resolver.component import SpanResolver  # noqa: E402
from pipeline import configs  # noqa: E402
from pipeline.pipeline import create_pipeline  # noqa: E402

ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec
DATA_ROOT_PARAMETER = "data_root"
ACCEPT_DRIFT_PARAMETER = "accept_drift"
# TFX's own Kubeflow V2 entrypoint behind a URI shim that makes s3:// and minio:// pipeline roots work.
CONTAINER_COMMAND = ["python", "-m", "pipeline.kfp_entrypoint"]
BEAM_PROFILES = ("direct", "dataflow", "flink", "spark")
KFP_BASELINES = ("served", "none")


def beam_pipeline_args(profile: Optional[str] = None) -> List[str]:
    """Beam arguments of the data components for a profile: the one place each runner's flags live.

    Remote runners get the pipeline image as their SDK worker (its entrypoint is Beam's boot), so the
    workers run the same installed code (our ExampleGen, trainer.preprocessing) without TFX building
    and staging a source package each step. The direct profile names the image too: its workers are
    the step's own process or subprocesses of it, in that image; without the flag TFX built a 49 MB
    sdist of itself in /tmp at every Beam step (and `kfp run-local` left four a run on this machine).
    """
    profile = profile or configs.BEAM_PROFILE
    if profile == "direct":
        if configs.BEAM_DIRECT_NUM_WORKERS == 1:  # one worker: in the step's own process, no worker to start
            workers = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
        else:
            workers = ["--direct_running_mode=multi_processing",
                       f"--direct_num_workers={configs.BEAM_DIRECT_NUM_WORKERS}"]
        return workers + [f"--sdk_container_image={configs.KFP_IMAGE}"]
    if profile == "dataflow":
        _require(profile, DATAFLOW_PROJECT=configs.DATAFLOW_PROJECT, DATAFLOW_REGION=configs.DATAFLOW_REGION,
                 DATAFLOW_TEMP_LOCATION=configs.DATAFLOW_TEMP_LOCATION)
        return ["--runner=DataflowRunner", f"--project={configs.DATAFLOW_PROJECT}",
                f"--region={configs.DATAFLOW_REGION}", f"--temp_location={configs.DATAFLOW_TEMP_LOCATION}",
                f"--sdk_container_image={configs.KFP_IMAGE}", "--experiments=use_runner_v2"]
    if profile in ("flink", "spark"):
        endpoint_name = f"{profile.upper()}_JOB_ENDPOINT"
        endpoint = getattr(configs, endpoint_name)
        _require(profile, **{endpoint_name: endpoint})
        # Portable runner through the cluster's Beam job server; EXTERNAL: SDK workers are this image
        # started with --worker_pool next to each task manager / executor (README).
        return ["--runner=PortableRunner", f"--job_endpoint={endpoint}", "--environment_type=EXTERNAL",
                f"--environment_config={configs.BEAM_WORKER_POOL}", f"--sdk_container_image={configs.KFP_IMAGE}"]
    raise ValueError(f"DEEP_EMOTION_BEAM_PROFILE={profile!r}: expected one of {BEAM_PROFILES}")


def _require(profile: str, **settings: str) -> None:
    missing = [f"DEEP_EMOTION_{name}" for name, value in settings.items() if not value]
    if missing:
        raise ValueError(f"Beam profile {profile!r} needs {', '.join(missing)} (see pipeline/configs.py)")


def trainer_resources() -> ResourceSpec:
    """The Trainer pod's limits: GPUs (as the Kubernetes resource name), CPU cores, memory in GB."""
    spec = ResourceSpec(cpu_limit=configs.KFP_TRAINER_CPU, memory_limit=configs.KFP_TRAINER_MEMORY_GB)
    if configs.KFP_TRAINER_GPU_COUNT > 0:
        spec.accelerator.type = configs.KFP_TRAINER_GPU_TYPE
        spec.accelerator.count = configs.KFP_TRAINER_GPU_COUNT
    return spec


def build(data_root: Any = None, serving_dir: Optional[str] = None) -> tfx.dsl.Pipeline:
    """The Kubeflow variant of the pipeline (paths as the pods see them)."""
    serving_dir = serving_dir or configs.KFP_SERVING_DIR
    if not serving_dir:
        raise ValueError("DEEP_EMOTION_KFP_SERVING_DIR is not set: the TF Serving base directory the pipeline "
                         "pushes to, e.g. gs://my-bucket/serving/deep-emotion")
    if "://" in serving_dir and not serving_dir.startswith("gs://"):
        raise ValueError(f"DEEP_EMOTION_KFP_SERVING_DIR={serving_dir}: TensorFlow in the image writes gs:// or "
                         "local paths only (s3:// and minio:// need tensorflow-io, which the lock does not hold)")
    if configs.KFP_BASELINE not in KFP_BASELINES:
        raise ValueError(f"DEEP_EMOTION_KFP_BASELINE={configs.KFP_BASELINE}: expected one of {KFP_BASELINES} "
                         "(open-source Kubeflow Pipelines cannot execute the Resolver behind 'latest_blessed')")
    if data_root is None:
        data_root = tfx.dsl.experimental.RuntimeParameter(
            name=DATA_ROOT_PARAMETER, ptype=str, default=configs.KFP_DATA_ROOT or None)
    accept_drift = tfx.dsl.experimental.RuntimeParameter(
        name=ACCEPT_DRIFT_PARAMETER, ptype=str, default=configs.ACCEPT_DRIFT)
    pipeline = create_pipeline(**{
        **configs.pipeline_args(),
        "pipeline_root": configs.KFP_PIPELINE_ROOT,  # not in the YAML: KFP takes it per run / schedule
        "data_root": data_root,
        "schema_path": configs.KFP_SCHEMA_PATH,
        "serving_dir": serving_dir,
        "baseline": configs.KFP_BASELINE,
        "accept_drift": accept_drift,
        "orchestrator_runs_drivers": False,
        "beam_pipeline_args": beam_pipeline_args(),
    })
    for component in pipeline.components:
        if isinstance(component, tfx.components.Trainer):
            component.with_platform_config(trainer_resources())
    return pipeline


def _runtime_parameters(pipeline: tfx.dsl.Pipeline) -> List[data_types.RuntimeParameter]:
    return [value for c in pipeline.components for value in c.exec_properties.values()
            if isinstance(value, data_types.RuntimeParameter)]


def uncached_task_ids(pipeline: tfx.dsl.Pipeline) -> List[str]:
    """The task that reads state outside its inputs: the data files and the serving directory."""
    return [c.id for c in pipeline.components if c.id == SpanResolver.__name__]


def patch_backend_mismatches(spec: Dict[str, Any], pipeline: tfx.dsl.Pipeline) -> None:
    """What TFX 1.16's compiler writes and KFP 2.x's backend reads differently (docs/design.md):

    - A parameter fed by an upstream output (`channel.future()[0].value`) names its producer
      '<node id>_task' (step_builder.py), but the task is '<node id>', and KFP's driver looks the name
      up verbatim ("producer task ... not in tasks").
    - FileBasedExampleGen gets TFX's own span driver as `lifecycle.preCacheCheck`, which only Vertex
      AI runs: it would fingerprint the top level only and overwrite the SpanResolver's resolution.
    - Parameter defaults go only into a PipelineJob's runtime config, which a YAML package lacks.
    """
    tasks = spec["root"]["dag"]["tasks"]
    for task in tasks.values():
        for parameter in task.get("inputs", {}).get("parameters", {}).values():
            producer = parameter.get("taskOutputParameter", {}).get("producerTask")
            if producer and producer not in tasks and producer.endswith("_task") and producer[:-5] in tasks:
                parameter["taskOutputParameter"]["producerTask"] = producer[:-5]
    executors = spec["deploymentSpec"]["executors"]
    for component in pipeline.components:
        if isinstance(component, FileBasedExampleGen):
            label = spec["components"][component.id]["executorLabel"]
            executors[label]["container"].pop("lifecycle", None)
    declared = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    for parameter in _runtime_parameters(pipeline):
        if parameter.default is not None:
            declared[parameter.name].update(defaultValue=parameter.default, isOptional=True)


def compile_pipeline(output_path: str, image: Optional[str] = None, **build_args) -> Dict[str, Any]:
    """Writes the PipelineSpec YAML that KFP 2.x uploads; returns it as a dict."""
    pipeline = build(**build_args)
    # Pipeline spec schema 2.1 (parameterType, constant): what KFP 2.x's backend resolves; the 2.0
    # default's deprecated constantValue is "not implemented" in its driver.
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
        default_image=image or configs.KFP_IMAGE, default_commands=CONTAINER_COMMAND, use_pipeline_spec_2_1=True))
    spec = runner.run(pipeline, write_out=False)["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    for task_id in uncached_task_ids(pipeline):
        tasks[task_id].pop("cachingOptions", None)  # absent = enableCache false
    patch_backend_mismatches(spec, pipeline)
    with open(output_path, "w", encoding="utf-8") as f:
        f.write(f"# Deep-Emotion TFX pipeline for Kubeflow Pipelines 2.x (compiled by {__name__}).\n"
                f"# Upload with `deep-emotion kfp submit|schedule`; pass the pipeline root per run.\n")
        yaml.safe_dump(spec, f, sort_keys=True)
    return spec
