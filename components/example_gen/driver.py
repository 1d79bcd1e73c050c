"""The ExampleGen's driver: which span folders this run ingests and a fingerprint of every file in
them, resolved before TFX's cache lookup so that the cache follows the data (spans.py).

TFX's FileBasedDriver resolves one span per run from the split patterns and fingerprints only what
they glob, one level deep, with mtimes in whole seconds: an image replaced inside CK+48/anger/ left
the fingerprint, hence the cache key, unchanged. This driver keeps TFX's contract (exec properties
`span`, `version`, `input_fingerprint`, the same properties on the Examples artifact), reads the
range to ingest from TFX's `range_config` (rolling_range(num_spans=K) for the last K spans), and adds
`span_folders`, the folders the executor reads.

Only local orchestrators run drivers. On Kubeflow the SpanResolver task resolves the spans and hands
them to ExampleGen as parameters (pipeline/kubeflow.py); a driver that finds `span_folders` already
set leaves the resolution as it is.
"""
from typing import Any, Dict

from absl import logging
from tfx.components.example_gen import driver
from tfx.components.example_gen import utils as example_gen_utils
from tfx.proto import range_config_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components.example_gen import spans

SPAN_PATTERN_KEY = "span_pattern"
SPAN_FOLDERS_KEY = "span_folders"
READY_MARKER_KEY = "span_ready_marker"


def range_config_of(exec_properties: Dict[str, Any]):
    """The RangeConfig exec property (a JSON string, as TFX passes protos), or None."""
    text = exec_properties.get(standard_component_specs.RANGE_CONFIG_KEY)
    return proto_utils.json_to_proto(text, range_config_pb2.RangeConfig()) if text else None


class DataRootDriver(driver.FileBasedDriver):
    """FileBasedDriver whose span resolution and fingerprint are spans.py's (see the module docstring)."""

    def resolve_exec_properties(self, exec_properties: Dict[str, Any], pipeline_info, component_info) -> Dict[str, Any]:
        del pipeline_info, component_info
        if exec_properties.get(SPAN_FOLDERS_KEY) is None:
            data_root = exec_properties[standard_component_specs.INPUT_BASE_KEY]
            marker = exec_properties.get(READY_MARKER_KEY) or ""
            resolution = spans.resolve(data_root, exec_properties.get(SPAN_PATTERN_KEY) or "",
                                       range_config_of(exec_properties), marker)
            logging.info("DeepEmotionExampleGen ingests %s of %s", resolution.describe(), data_root)
            if resolution.waiting:
                logging.warning("Span folders %s", spans.describe_waiting(resolution.waiting, marker))
            elif marker and not resolution.spans:
                logging.warning("The span ready marker %s is set, but %s has no span folders: it is read whole",
                                marker, data_root)
            if resolution.outside:
                logging.warning("In no span, not read: %s", ", ".join(resolution.outside))
            exec_properties[SPAN_FOLDERS_KEY] = spans.to_json(resolution.spans)
            exec_properties[example_gen_utils.SPAN_PROPERTY_NAME] = resolution.span
            exec_properties[example_gen_utils.FINGERPRINT_PROPERTY_NAME] = resolution.input_fingerprint
        else:  # resolved upstream; a parameter typed STRING on Kubeflow
            exec_properties[example_gen_utils.SPAN_PROPERTY_NAME] = spans.span_number(
                exec_properties.get(example_gen_utils.SPAN_PROPERTY_NAME))
        exec_properties[example_gen_utils.VERSION_PROPERTY_NAME] = None
        return exec_properties
