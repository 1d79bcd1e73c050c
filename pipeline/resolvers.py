"""The local orchestrators' Resolver strategies: which earlier model is the Evaluator's baseline and
which one the Trainer warm-starts from. (Open-source Kubeflow Pipelines runs no Resolver: there the
SpanResolver task picks served versions by the same rules, components/span_resolver.)

Both rules keep a rerun over unchanged data a rerun of nothing. TFX's LatestBlessedModelStrategy
hands the Evaluator, on the first rerun after a push, the model just pushed: the very candidate the
cached Trainer returns. The Evaluator's inputs then differ from the run before, so it evaluates the
model against itself and the Pusher runs again for nothing.
"""
from typing import Dict, List, Optional

from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.dsl.components.common import resolver

CANDIDATE, MODEL, MODEL_BLESSING, EXAMPLES = "candidate", "model", "model_blessing", "examples"
_CURRENT_MODEL_ID, _BLESSED = "current_model_id", "blessed"  # what the Evaluator writes on its blessing


def _blessed_models_newest_first(input_dict: Dict[str, List[types.Artifact]]):
    blessings = {b.get_int_custom_property(_CURRENT_MODEL_ID): b for b in input_dict.get(MODEL_BLESSING, [])
                 if b.get_int_custom_property(_BLESSED) == 1}
    for model in sorted(input_dict.get(MODEL, []), key=lambda a: a.id, reverse=True):
        if model.id in blessings:
            yield model, blessings[model.id]


class LatestBlessedOtherModelStrategy(resolver.ResolverStrategy):
    """The latest blessed model that is not the candidate: a model is never its own baseline.

        Resolver(strategy_class=LatestBlessedOtherModelStrategy, candidate=trainer.outputs["model"],
                 model=Channel(type=Model), model_blessing=Channel(type=ModelBlessing))
    """

    def resolve_artifacts(self, store, input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        candidates = list(input_dict.get(CANDIDATE, []))
        excluded = {a.id for a in candidates}
        for model, blessing in _blessed_models_newest_first(input_dict):
            if model.id not in excluded:
                return {CANDIDATE: candidates, MODEL: [model], MODEL_BLESSING: [blessing]}
        return {CANDIDATE: candidates, MODEL: [], MODEL_BLESSING: []}


def training_fingerprints(store, model_id: int, depth: int = 4) -> List[str]:
    """The input fingerprints of the Examples a model was trained from, found through lineage
    (Model <- Trainer <- transformed examples <- Transform <- Examples)."""
    found, frontier = [], [model_id]
    for _ in range(depth):
        producers = {e.execution_id for e in store.get_events_by_artifact_ids(frontier)
                     if e.type == metadata_store_pb2.Event.OUTPUT}
        inputs = [e.artifact_id for e in store.get_events_by_execution_ids(list(producers))
                  if e.type == metadata_store_pb2.Event.INPUT and e.path.steps and e.path.steps[0].key == EXAMPLES]
        if not inputs:
            break
        for artifact in store.get_artifacts_by_id(inputs):
            if example_gen_utils.FINGERPRINT_PROPERTY_NAME in artifact.custom_properties:
                found.append(artifact.custom_properties[example_gen_utils.FINGERPRINT_PROPERTY_NAME].string_value)
        if found:
            return found
        frontier = inputs
    return found


class LatestBlessedModelOfOtherDataStrategy(resolver.ResolverStrategy):
    """The latest blessed model trained on other data than this run's examples: what the Trainer
    warm-starts from. Never a model of these very examples, or each rerun would train on from the
    last one and nothing would stay cached.

        Resolver(strategy_class=LatestBlessedModelOfOtherDataStrategy, examples=example_gen.outputs["examples"],
                 model=Channel(type=Model), model_blessing=Channel(type=ModelBlessing))
    """

    def resolve_artifacts(self, store, input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        examples = list(input_dict.get(EXAMPLES, []))
        current = {e.get_string_custom_property(example_gen_utils.FINGERPRINT_PROPERTY_NAME) for e in examples}
        for model, blessing in _blessed_models_newest_first(input_dict):
            if not set(training_fingerprints(store, model.id)) & current:
                return {EXAMPLES: examples, MODEL: [model], MODEL_BLESSING: [blessing]}
        return {EXAMPLES: examples, MODEL: [], MODEL_BLESSING: []}
