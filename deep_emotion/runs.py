"""What each pipeline run did, read from ML Metadata: one place for the demo summary, the tests,
the report and the notebooks.

A run is TFX's `pipeline_run` context; each node's execution in it has a state (COMPLETE, CACHED
when outputs were reused, FAILED, RUNNING when killed mid-way) and its input and output artifacts by key.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

Artifact = metadata_store_pb2.Artifact
_STATE = metadata_store_pb2.Execution.State


@dataclass
class NodeRun:
    node_id: str
    state: str
    execution_id: int
    inputs: Dict[str, List[Artifact]] = field(default_factory=dict)
    outputs: Dict[str, List[Artifact]] = field(default_factory=dict)

    def output(self, key: str) -> Artifact:
        """The single artifact under an output key."""
        return self.outputs[key][0]


@dataclass
class PipelineRun:
    run_id: str
    nodes: Dict[str, NodeRun]

    def states(self) -> Dict[str, str]:
        return {node_id: n.state for node_id, n in self.nodes.items()}

    def producer(self, output_key: str) -> Optional[NodeRun]:
        """The node that produced an output key (e.g. "examples": whichever ExampleGen ran)."""
        return next((n for n in self.nodes.values() if output_key in n.outputs), None)


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def pipeline_runs(metadata_path: str, pipeline_name: str) -> List[PipelineRun]:
    """Every run of the pipeline, oldest first."""
    store = open_store(metadata_path)
    pipeline_context = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_context is None:
        return []
    pipeline_execution_ids = {e.id for e in store.get_executions_by_context(pipeline_context.id)}
    runs = []
    for context in sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: (c.create_time_since_epoch, c.id)):
        executions = [e for e in store.get_executions_by_context(context.id) if e.id in pipeline_execution_ids]
        if executions:
            runs.append(PipelineRun(context.name, _node_runs(store, executions, pipeline_name)))
    return runs


def latest_run(metadata_path: str, pipeline_name: str) -> Optional[PipelineRun]:
    runs = pipeline_runs(metadata_path, pipeline_name)
    return runs[-1] if runs else None


def _node_runs(store, executions, pipeline_name) -> Dict[str, NodeRun]:
    events = store.get_events_by_execution_ids([e.id for e in executions])
    artifacts = {a.id: a for a in store.get_artifacts_by_id(list({ev.artifact_id for ev in events}))}
    nodes = {}
    for execution in sorted(executions, key=lambda e: e.id):
        node_contexts = [c for c in store.get_contexts_by_execution(execution.id)
                         if c.name.startswith(pipeline_name + ".")]
        node_id = node_contexts[0].name[len(pipeline_name) + 1:] if node_contexts else str(execution.id)
        nodes[node_id] = NodeRun(node_id, _STATE.Name(execution.last_known_state), execution.id)
    by_execution = {n.execution_id: n for n in nodes.values()}
    for ev in events:
        node = by_execution.get(ev.execution_id)
        if node is None or ev.artifact_id not in artifacts:
            continue
        key = ev.path.steps[0].key if ev.path.steps else ""
        if ev.type == metadata_store_pb2.Event.OUTPUT:
            node.outputs.setdefault(key, []).append(artifacts[ev.artifact_id])
        elif ev.type == metadata_store_pb2.Event.INPUT:
            node.inputs.setdefault(key, []).append(artifacts[ev.artifact_id])
    return nodes


def custom_property(artifact: Artifact, name: str):
    """A custom property's value (int, string, double or struct) or None."""
    if name not in artifact.custom_properties:
        return None
    value = artifact.custom_properties[name]
    kind = value.WhichOneof("value")
    if kind == "struct_value":
        from google.protobuf import json_format
        return json_format.MessageToDict(value.struct_value)
    return getattr(value, kind) if kind else None
