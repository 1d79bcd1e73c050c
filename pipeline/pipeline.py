"""The Deep-Emotion TFX pipeline: one pure `create_pipeline(...)` shared by every runner.

    DeepEmotionExampleGen -> StatisticsGen -> SchemaGen (candidate, for review only)
                                           -> ImportSchemaGen(schema/) -> ExampleValidator -> DataGate
    DataGate ..> Transform -> Trainer -> Evaluator (floor + no regression)
                                       -> ModelCardGenerator -> Pusher (model + card)

Transform runs after DataGate (a task dependency, ..>), so bad data, or a span that drifted from the
served model's training data (accept_drift: span numbers whose drift an operator accepted), stops
the run before it and the Trainer. Both read the curated schema itself, not the gate's copy: the
override is the gate's execution property, and a gated schema as their input would make the next
scheduled run, without the override, train and push the same span's model a second time.
The Evaluator's baseline (`baseline=`): "latest_blessed" (a Resolver; local orchestrators), "served"
(components/served_model: the model in service at serving_dir; open-source Kubeflow Pipelines cannot
execute Resolver nodes, so the Kubeflow runner uses this) or "none" (absolute floor only); in each
case never the candidate itself, so a rerun over unchanged data reuses every step from the cache.
On an orchestrator without component drivers (Kubeflow) a SpanResolver task comes first: it resolves
the spans and the served versions, and its outputs feed ExampleGen and ServedModel.
"""
import hashlib
import json
from typing import Any, Dict, List, Optional

import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from components.data_gate import drift
from components.data_gate.component import DataGate
from components.evaluator_output import TOP_LABEL
from components.example_gen.component import RESOLVED_KEYS, DeepEmotionExampleGen
from components.example_gen.options import IngestOptions
from components.model_card.component import ModelCardGenerator
from components.pusher.component import Pusher
from components.served_model.component import ServedModel
from components.span_resolver.component import SpanResolver
from contract import data as dc
from pipeline import resolvers
from pipeline.code_fingerprint import code_fingerprint

PROBABILITIES = "probabilities"  # the serving signature's output TFMA evaluates
CALIBRATION_BUCKETS = 15
BASELINES = ("latest_blessed", "served", "none")


def make_eval_config(accuracy_floor: float, with_baseline: bool) -> tfma.EvalConfig:
    """Accuracy and the confusion matrix (each class's precision and recall of the top prediction),
    overall and by source; the calibration plot.

    The model is blessed only if eval accuracy >= accuracy_floor and, when a baseline (the latest
    blessed or the served model) exists, it is not lower than the baseline's. TFMA ignores the change threshold
    on the first run, when there is no baseline. The gate reads the overall slice only: a plain
    `threshold` would apply to every slice, and one small source (JAFFE's 21 eval faces) must not
    veto a model; per-source numbers are reported, not gated.
    """
    accuracy_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": accuracy_floor}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -1e-10})
        if with_baseline else None)
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            signature_name="serving_default", label_key=dc.LABEL, prediction_key=PROBABILITIES,
            model_type="tf_generic", preprocessing_function_names=["transform_features"])],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[dc.SOURCE])],
        metrics_specs=[
            tfma.MetricsSpec(metrics=[
                tfma.MetricConfig(class_name="ExampleCount"),
                tfma.MetricConfig(class_name="SparseCategoricalAccuracy", per_slice_thresholds=[
                    tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=accuracy_threshold)]),
                # Per-class precision and recall are the top prediction's, read from this matrix
                # (components/evaluator_output.py). Not TFMA's class-id-binarized Precision/Recall: those
                # count a class as predicted at probability >= 0.5, which a right top prediction of seven
                # classes can miss, and cost a quarter of the Evaluator (13.6 -> 10.0 s on FER2013's eval).
                tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
            ]),
            # Reliability of the (temperature-scaled) probabilities: one calibration plot per slice of the
            # top-label confidence (k=1: the highest probability against whether that class is right),
            # CALIBRATION_BUCKETS buckets on [0, 1]: the Trainer's ECE (Guo et al.), from the served model.
            # One pair per face; the one-vs-rest plot over all seven classes cost a third of the Evaluator.
            tfma.MetricsSpec(
                binarize=tfma.BinarizationOptions(k_list={"values": [TOP_LABEL]}),
                metrics=[tfma.MetricConfig(class_name="CalibrationPlot", config=json.dumps(
                    {"num_buckets": CALIBRATION_BUCKETS, "left": 0.0, "right": 1.0}))]),
        ])


def training_fingerprint(example_gen_code: str, options: IngestOptions, transform_code: str, trainer_code: str,
                         hparams: Dict[str, Any], model_layout: str, schema_path: str, warm_start: bool,
                         serving_limits: Optional[Dict[str, int]] = None) -> str:
    """Everything but the data that decides the trained model, hashed: two models with the same
    input fingerprint and this are what caching makes them, one and the same (the Kubeflow
    SpanResolver relies on it; pushed versions record it, components/pusher/serving_dir.py)."""
    settings = {"example_gen": example_gen_code, "ingest": options.to_dict(), "transform": transform_code,
                "trainer": trainer_code, "hparams": hparams, "layout": model_layout, "schema": schema_path,
                "warm_start": warm_start, "serving_limits": serving_limits or {}}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:32]


def _blessed_model_resolver(node_id: str, strategy, **inputs) -> tfx.dsl.Resolver:
    """A Resolver node of `strategy` (pipeline/resolvers.py) over every Model and ModelBlessing in ML
    Metadata, plus the channels in `inputs` the strategy compares against."""
    return tfx.dsl.Resolver(
        strategy_class=strategy, **inputs,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id(node_id)


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    schema_path: str,
    serving_dir: str,
    transform_module: str,
    trainer_module: str,
    hparams: Dict[str, Any],
    model_layout: str,
    accuracy_floor: float,
    example_gen_options: Optional[Dict[str, Any]] = None,
    span_pattern: str = "span-{SPAN}",
    num_spans: int = 1,
    span_ready_marker: str = "",
    accept_drift: Any = "",
    serving_limits: Optional[Dict[str, int]] = None,
    baseline: str = "latest_blessed",
    warm_start: bool = False,
    orchestrator_runs_drivers: bool = True,
    enable_cache: bool = True,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
    beam_pipeline_args: Optional[List[str]] = None,
) -> tfx.dsl.Pipeline:
    """Builds the pipeline. `transform_module` / `trainer_module`: dotted module paths of
    `preprocessing_fn` / `run_fn` in the installed package. The code that ExampleGen, Transform and
    Trainer run is fingerprinted into their custom_config, so that an edit to any of it re-runs them
    and what follows, and an edit elsewhere re-runs nothing (pipeline/code_fingerprint.py).

    warm_start: the Trainer starts from the weights of the latest blessed (Kubeflow: served) model
    trained on other data (TFX's base_model); fresh otherwise.
    orchestrator_runs_drivers: False on open-source Kubeflow Pipelines, which runs no component
    drivers: a SpanResolver task then resolves the spans and the served versions first
    (components/span_resolver), and baseline="served" takes its version from it."""
    if baseline not in BASELINES:
        raise ValueError(f"baseline={baseline!r}: expected one of {BASELINES}")
    if baseline == "served" and orchestrator_runs_drivers:
        raise ValueError("baseline='served' takes the served version from the SpanResolver task, which only a "
                         "pipeline for an orchestrator without drivers has (orchestrator_runs_drivers=False)")
    options = IngestOptions.from_dict(example_gen_options or {})
    example_gen_code = code_fingerprint([DeepEmotionExampleGen.__module__])
    transform_code, trainer_code = code_fingerprint([transform_module]), code_fingerprint([trainer_module])
    training = training_fingerprint(example_gen_code, options, transform_code, trainer_code, hparams, model_layout,
                                    schema_path, warm_start, serving_limits)
    components = []
    span_resolver, resolved = None, None
    if not orchestrator_runs_drivers:
        span_resolver = SpanResolver(data_root=data_root, serving_dir=serving_dir, span_pattern=span_pattern,
                                     num_spans=num_spans, training_fingerprint=training,
                                     ready_marker=span_ready_marker)
        resolved = {key: span_resolver.outputs[key].future()[0].value for key in RESOLVED_KEYS}
        components.append(span_resolver)
    example_gen = DeepEmotionExampleGen(
        input_base=data_root, options=options, code_fingerprint=example_gen_code,
        span_pattern=span_pattern, num_spans=num_spans, resolved=resolved, span_ready_marker=span_ready_marker)
    curated_schema = tfx.components.ImportSchemaGen(schema_file=schema_path)
    # With the schema, TFDV treats `emotion` as categorical (per-class counts, L-infinity drift).
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs["examples"], schema=curated_schema.outputs["schema"])
    # Inferred from this run's data for a maintainer to diff against schema/ (`make schema-candidate`,
    # `tfx pipeline schema`); nothing downstream uses it.
    candidate_schema = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=curated_schema.outputs["schema"])
    if isinstance(accept_drift, str):
        drift.accepted_spans(accept_drift)  # a malformed override fails here, not at the gate
    data_gate = DataGate(anomalies=example_validator.outputs["anomalies"], schema=curated_schema.outputs["schema"],
                         statistics=statistics_gen.outputs["statistics"], examples=example_gen.outputs["examples"],
                         serving_dir=serving_dir,
                         accept_drift=accept_drift)
    components += [example_gen, statistics_gen, candidate_schema, curated_schema, example_validator, data_gate]

    base_model = None
    if warm_start and span_resolver is not None:
        warm_start_model = ServedModel(
            serving_dir=serving_dir, version=span_resolver.outputs["warm_start_version"].future()[0].value
        ).with_id("warm_start_model")
        components.append(warm_start_model)
        base_model = warm_start_model.outputs["served_model"]
    elif warm_start:
        warm_start_resolver = _blessed_model_resolver(
            "warm_start_model_resolver", resolvers.LatestBlessedModelOfOtherDataStrategy,
            examples=example_gen.outputs["examples"])
        components.append(warm_start_resolver)
        base_model = warm_start_resolver.outputs["model"]

    # Transform analyses (the z-score's mean and std over train) and writes its graph; it neither
    # materialises the transformed images nor computes statistics of them: StatisticsGen already
    # has the raw data's, and both grew the component's memory with the data (bench/pipeline.py).
    # The Trainer applies the graph to raw examples batch by batch, as the served model does. No
    # analyzer cache: no later run reads it (a z-score over the resolved spans is one cheap pass), and
    # writing it cost ~0.5 s a run.
    # Transform and Trainer read the curated schema and run after the gate as a task dependency, not
    # through its output: a run that only drops a one-off drift override (the gate re-executes) then
    # finds them in the cache instead of training and pushing the same data's model again.
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"], schema=curated_schema.outputs["schema"],
        preprocessing_fn=f"{transform_module}.preprocessing_fn", materialize=False, disable_statistics=True,
        disable_analyzer_cache=True, custom_config={"code_fingerprint": transform_code})
    trainer = tfx.components.Trainer(
        examples=example_gen.outputs["examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=curated_schema.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=["train"]),
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),
        base_model=base_model,
        custom_config={"hparams": hparams, "layout": model_layout, "warm_start": warm_start,
                       "serving_limits": serving_limits or {},
                       "code_fingerprint": trainer_code},
        run_fn=f"{trainer_module}.run_fn")
    transform.add_upstream_node(data_gate)
    components += [transform, trainer]

    baseline_model = None
    if baseline == "latest_blessed":
        # Not TFX's LatestBlessedModelStrategy: after a push it hands the Evaluator the candidate itself
        # (pipeline/resolvers.py), and an unchanged rerun would evaluate and push again.
        resolver = _blessed_model_resolver("latest_blessed_model_resolver", resolvers.LatestBlessedOtherModelStrategy,
                                           candidate=trainer.outputs["model"])
        components.append(resolver)
        baseline_model = resolver.outputs["model"]
    elif baseline == "served":
        served_model = ServedModel(candidate=trainer.outputs["model"], serving_dir=serving_dir,
                                   version=span_resolver.outputs["baseline_version"].future()[0].value)
        components.append(served_model)
        baseline_model = served_model.outputs["served_model"]
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"], model=trainer.outputs["model"], baseline_model=baseline_model,
        example_splits=["eval"],
        eval_config=make_eval_config(accuracy_floor, with_baseline=baseline_model is not None))
    model_card = ModelCardGenerator(
        evaluation=evaluator.outputs["evaluation"], blessing=evaluator.outputs["blessing"],
        model_run=trainer.outputs["model_run"], examples=example_gen.outputs["examples"],
        pipeline_name=pipeline_name, code_fingerprint=trainer_code, training_fingerprint=training)
    pusher = Pusher(
        model=trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_dir)),
        model_card=model_card.outputs["model_card"], statistics=statistics_gen.outputs["statistics"])
    components += [evaluator, model_card, pusher]

    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name, pipeline_root=pipeline_root, components=components,
        enable_cache=enable_cache, metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [])
