"""A Pusher executor for TF Serving model directories: each push appears whole or not at all, and
re-blessing the model already in service does not add a duplicate version.

TFX's own filesystem Pusher copies file by file into `<base>/<unix seconds>/` (saved_model.pb last);
TF Serving polls that directory and may see a half-copied version. Here the version is published
as a whole (serving_dir.push). A pipeline rerun re-executes Evaluator and Pusher against the new
baseline and would push an identical model again; when the blessed model's content equals the
served version's, that version is reported as the push instead.

Each new version also gets training_data/ (serving_dir.py): the statistics of the data the model was
trained on and a record of its spans and fingerprints, taken from the model card's lineage.
"""
import os
from typing import Any, Dict, List, Optional

from absl import logging
from tfx import types
from tfx.components.pusher import executor as tfx_pusher
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from components.model_card import card as card_lib
from components.model_card.component import read_card
from components.pusher import serving_dir

MODEL_CARD_KEY = "model_card"  # components.pusher.component.PusherSpec
STATISTICS_KEY = "statistics"


class Executor(tfx_pusher.Executor):
    """TFX Pusher executor with atomic, de-duplicated filesystem pushes."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            logging.warning("Model NOT pushed: the Evaluator did not bless it; the served model is unchanged.")
            self._MarkNotPushed(model_push)
            return
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError(f"Only filesystem push destinations are supported, got {destination}")
        base_dir = destination.filesystem.base_directory
        model_dir = self.GetModelPath(input_dict)
        cards = input_dict.get(MODEL_CARD_KEY) or []
        card = read_card(artifact_utils.get_single_uri(cards)) if cards else None
        statistics = input_dict.get(STATISTICS_KEY) or []
        training_data = serving_dir.training_data_files(
            training_data_record(card, statistics[0] if statistics else None),
            statistics[0].uri if statistics else None) if card or statistics else {}

        def extra_files(version: str) -> Dict[str, bytes]:
            return {**(card_lib.for_version(card, version, base_dir) if card else {}), **training_data}

        version, pushed_new = serving_dir.push(model_dir, base_dir, extra_files=extra_files)
        serving_path = os.path.join(base_dir, version)
        if pushed_new:
            logging.info("Model pushed to %s", serving_path)
        else:
            logging.info("Blessed model is identical to the served version %s: no new version.", version)
        io_utils.copy_dir(os.path.join(base_dir, version), model_push.uri)  # what is served, card included
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
        model_push.set_int_custom_property("new_version", int(pushed_new))


def training_data_record(card: Optional[Dict[str, Any]], statistics: Optional[types.Artifact]) -> Dict[str, Any]:
    """What the pushed model was trained on: spans and fingerprints from the card's lineage (which
    reads them off the Examples), the statistics' URI and span."""
    lineage = (card or {}).get("reproduce", {}).get("lineage", {})
    record = {key: lineage.get(key) for key in ("span", "spans", "input_fingerprint", "training_fingerprint",
                                                "examples")}
    if statistics is not None:
        record.update(statistics_uri=statistics.uri, statistics_span=statistics.span)
        if record["span"] is None:
            record["span"] = statistics.span
    return record
