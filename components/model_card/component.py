"""ModelCardGenerator: the card of the Trainer's model, from its run's artifacts (card.py).

    model_card = ModelCardGenerator(evaluation=evaluator.outputs["evaluation"],
                                    blessing=evaluator.outputs["blessing"],
                                    model_run=trainer.outputs["model_run"],
                                    examples=example_gen.outputs["examples"],
                                    pipeline_name=..., code_fingerprint=...)
    Pusher(..., model_card=model_card.outputs["model_card"])   # shipped inside each pushed version

Runs whether or not the model is blessed: a rejected candidate is documented too, and its card
says why it was not pushed.
"""
import json
import os

from tfx import v1 as tfx
from tfx.types import artifact, artifact_utils

from components.example_gen.executor import SUMMARY_FILE
from components.model_card import card as card_lib
from contract import training_record


class ModelCard(artifact.Artifact):
    """A model card: model_card.json and model_card.md.

    TYPE_NAME is also its import path (`components.ModelCard`, see components/__init__.py): TFX's
    Kubeflow V2 container finds a custom artifact class by the schema title, which must have this form.
    """
    TYPE_NAME = "components.ModelCard"


def read_card(model_card_uri: str) -> dict:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    with tf.io.gfile.GFile(os.path.join(model_card_uri, card_lib.CARD_JSON)) as f:
        return json.load(f)


@tfx.dsl.components.component
def ModelCardGenerator(
    evaluation: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
    blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    model_run: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelRun],
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    model_card: tfx.dsl.components.OutputArtifact[ModelCard],
    pipeline_name: tfx.dsl.components.Parameter[str],
    code_fingerprint: tfx.dsl.components.Parameter[str],
    training_fingerprint: tfx.dsl.components.Parameter[str] = "",
) -> None:
    """Writes model_card.json and model_card.md into the model_card artifact. training_fingerprint:
    of everything but the data that decides the model (pipeline.create_pipeline)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    with tf.io.gfile.GFile(os.path.join(examples.uri, SUMMARY_FILE)) as f:
        ingest_summary = json.load(f)
    lineage = {"pipeline_name": pipeline_name, "trainer_code_fingerprint": code_fingerprint,
               "training_fingerprint": training_fingerprint or None,
               "examples": examples.uri, "span": examples.span,
               "spans": json.loads(examples.get_string_custom_property("span_folders") or "[]"),
               "input_fingerprint": examples.get_string_custom_property("input_fingerprint") or None,
               "splits": artifact_utils.decode_split_names(examples.split_names),
               "model_run": model_run.uri, "evaluation": evaluation.uri}
    blessed = bool(blessing.get_int_custom_property("blessed")) if blessing.has_custom_property("blessed") else None
    card = card_lib.build(evaluation.uri, blessed, training_record.read(model_run.uri), ingest_summary, lineage)
    tf.io.gfile.makedirs(model_card.uri)
    for name, content in card_lib.files(card).items():  # an artifact is published only when this succeeds
        with tf.io.gfile.GFile(os.path.join(model_card.uri, name), "wb") as f:
            f.write(content)
    model_card.set_int_custom_property("blessed", int(bool(blessed)))
