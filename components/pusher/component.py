"""Pusher for TF Serving directories: TFX's Pusher spec and outputs, plus an optional model card and
the statistics of the training data, which ship inside each pushed version (atomic, de-duplicated:
executor.py, serving_dir.py)."""
from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter

from components.model_card.component import ModelCard
from components.pusher import executor

MODEL_CARD_KEY = executor.MODEL_CARD_KEY
STATISTICS_KEY = executor.STATISTICS_KEY


class PusherSpec(standard_component_specs.PusherSpec):
    INPUTS = {**standard_component_specs.PusherSpec.INPUTS,
              MODEL_CARD_KEY: ChannelParameter(type=ModelCard, optional=True),
              STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics, optional=True)}


class Pusher(base_component.BaseComponent):
    """TFX's Pusher (same spec, same PushedModel output) whose filesystem pushes appear whole,
    never repeat the served model, and carry the model card and the training data's statistics
    (training_data/, serving_dir.py) when they are given."""

    SPEC_CLASS = PusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: types.BaseChannel, model_blessing: types.BaseChannel,
                 push_destination: pusher_pb2.PushDestination, model_card: Optional[types.BaseChannel] = None,
                 statistics: Optional[types.BaseChannel] = None):
        super().__init__(spec=PusherSpec(
            model=model, model_blessing=model_blessing, push_destination=push_destination, model_card=model_card,
            statistics=statistics, pushed_model=types.Channel(type=standard_artifacts.PushedModel)))
