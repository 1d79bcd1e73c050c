"""The local Resolver strategies on a real ML Metadata store with the lineage a pipeline writes
(Examples -> Transform -> transformed examples -> Trainer -> Model, and the Evaluator's blessings)."""
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.compiler import compiler
from tfx.types import artifact_utils, standard_artifacts

from pipeline import configs, local, resolvers

Event = metadata_store_pb2.Event


class Lineage:
    """An in-memory MLMD store and helpers that record what Transform, Trainer and Evaluator record."""

    def __init__(self):
        config = metadata_store_pb2.ConnectionConfig()
        config.fake_database.SetInParent()
        self.store = metadata_store.MetadataStore(config)
        self.types = {}

    def _type_id(self, kind, name):
        if (kind, name) not in self.types:
            put = self.store.put_artifact_type if kind == "artifact" else self.store.put_execution_type
            message = metadata_store_pb2.ArtifactType if kind == "artifact" else metadata_store_pb2.ExecutionType
            self.types[(kind, name)] = put(message(name=name))
        return self.types[(kind, name)]

    def artifact(self, artifact_class, **custom):
        artifact = artifact_class()
        artifact.uri = f"/fake/{artifact_class.TYPE_NAME}/{len(self.types)}-{custom}"
        for key, value in custom.items():
            (artifact.set_int_custom_property if isinstance(value, int) else artifact.set_string_custom_property)(
                key, value)
        artifact.type_id = self._type_id("artifact", artifact_class.TYPE_NAME)
        [artifact.id] = self.store.put_artifacts([artifact.mlmd_artifact])
        return artifact

    def execution(self, name, inputs, outputs):
        [execution_id] = self.store.put_executions([metadata_store_pb2.Execution(
            type_id=self._type_id("execution", name))])
        events = [Event(artifact_id=a.id, execution_id=execution_id, type=Event.INPUT,
                        path=Event.Path(steps=[Event.Path.Step(key=k)])) for k, a in inputs.items()]
        events += [Event(artifact_id=a.id, execution_id=execution_id, type=Event.OUTPUT,
                         path=Event.Path(steps=[Event.Path.Step(key=k)])) for k, a in outputs.items()]
        self.store.put_events(events)

    def trained_model(self, examples, blessed=True):
        """Transform and Trainer over `examples`, then a blessing of the model."""
        transformed = self.artifact(standard_artifacts.Examples)
        self.execution("Transform", {"examples": examples}, {"transformed_examples": transformed})
        model = self.artifact(standard_artifacts.Model)
        self.execution("Trainer", {"examples": transformed}, {"model": model})
        blessing = self.artifact(standard_artifacts.ModelBlessing, current_model_id=model.id, blessed=int(blessed))
        return model, blessing


def _all(lineage, artifact_class):
    [artifact_type] = [t for t in lineage.store.get_artifact_types() if t.name == artifact_class.TYPE_NAME]
    return [artifact_utils.deserialize_artifact(artifact_type, a)
            for a in lineage.store.get_artifacts_by_type(artifact_class.TYPE_NAME)]


def _resolved_models(lineage, strategy, **inputs):
    """The ids of the models `strategy` resolves, given every Model and ModelBlessing in the store."""
    resolved = strategy.resolve_artifacts(lineage.store, {
        **inputs, "model": _all(lineage, standard_artifacts.Model),
        "model_blessing": _all(lineage, standard_artifacts.ModelBlessing)})
    return [m.id for m in resolved["model"]]


def test_the_baseline_is_the_latest_blessed_model_other_than_the_candidate():
    lineage = Lineage()
    span_1 = lineage.artifact(standard_artifacts.Examples, input_fingerprint="span:1")
    first, _ = lineage.trained_model(span_1)
    strategy = resolvers.LatestBlessedOtherModelStrategy()

    def baseline(candidate):
        return _resolved_models(lineage, strategy, candidate=[candidate])

    assert baseline(first) == []  # the rerun after first was pushed: as on the run that pushed it
    second, _ = lineage.trained_model(lineage.artifact(standard_artifacts.Examples, input_fingerprint="span:2"))
    assert baseline(second) == [first.id]
    rejected, _ = lineage.trained_model(span_1, blessed=False)
    assert baseline(rejected) == [second.id]


def test_the_warm_start_is_the_latest_blessed_model_of_other_data():
    lineage = Lineage()
    span_1 = lineage.artifact(standard_artifacts.Examples, input_fingerprint="span:1")
    first, _ = lineage.trained_model(span_1)
    assert resolvers.training_fingerprints(lineage.store, first.id) == ["span:1"]
    strategy = resolvers.LatestBlessedModelOfOtherDataStrategy()

    def start(examples):
        return _resolved_models(lineage, strategy, examples=[examples])

    assert start(span_1) == []  # never from a model of these very files
    reingested = lineage.artifact(standard_artifacts.Examples, input_fingerprint="span:1")  # same files again
    assert start(reingested) == []
    span_2 = lineage.artifact(standard_artifacts.Examples, input_fingerprint="span:2")
    assert start(span_2) == [first.id]
    second, _ = lineage.trained_model(span_2)
    assert start(span_2) == [first.id]  # the rerun of span 2 starts where its first run started


def test_the_local_pipeline_with_warm_start_compiles_with_both_resolvers(monkeypatch):
    monkeypatch.setattr(configs, "WARM_START", True)
    pipeline = local.build()
    ids = [c.id for c in pipeline.components]
    assert ids.index("warm_start_model_resolver") < ids.index("Trainer") < ids.index("latest_blessed_model_resolver")
    trainer = [c for c in pipeline.components if c.id == "Trainer"][0]
    assert trainer.inputs["base_model"].producer_component_id == "warm_start_model_resolver"
    compiled = compiler.Compiler().compile(pipeline)
    assert {n.pipeline_node.node_info.id for n in compiled.nodes} >= {"warm_start_model_resolver",
                                                                      "latest_blessed_model_resolver"}
