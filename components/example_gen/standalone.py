"""DeepEmotionExampleGen's executor run on its own (no pipeline, no ML Metadata), on Beam's DirectRunner.

For `deep-emotion ingest`, the benchmarks and the tests: the output is laid out exactly like the
pipeline's examples artifact (Split-*/, ingest_summary.json, quarantine.jsonl).
"""
import json
import os
from typing import Any, Dict, Optional, Sequence

from components.example_gen import spans
from components.example_gen.options import IngestOptions


def run_executor(data_root: str, output_dir: str, options: Optional[IngestOptions] = None,
                 beam_pipeline_args: Sequence[str] = (), executor_class=None,
                 span_pattern: str = spans.DEFAULT_PATTERN, num_spans: int = 1,
                 span_ready_marker: str = "") -> Dict[str, Any]:
    """Runs the TFX executor (or a subclass) with an examples artifact at output_dir; returns the summary.
    The spans are resolved as the pipeline's driver resolves them: the latest num_spans span folders,
    or the whole root when none matches span_pattern (among those holding span_ready_marker, when set)."""
    # pylint: disable=import-outside-toplevel  # TFX and Beam load in seconds: not for `--help`
    import apache_beam as beam
    from tfx.proto import example_gen_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    from components.example_gen.component import INPUT_CONFIG
    from components.example_gen.executor import SUMMARY_FILE, Executor

    resolution = spans.resolve(data_root, span_pattern, spans.rolling_range(num_spans), span_ready_marker)
    examples = standard_artifacts.Examples()
    examples.uri = output_dir
    exec_properties = {
        "input_base": data_root,
        "span_pattern": span_pattern,
        "span_ready_marker": span_ready_marker,
        "span_folders": spans.to_json(resolution.spans),
        "span": resolution.span,
        "input_fingerprint": resolution.input_fingerprint,
        "input_config": proto_utils.proto_to_json(INPUT_CONFIG),
        "output_config": proto_utils.proto_to_json(example_gen_pb2.Output()),
        "custom_config": proto_utils.proto_to_json((options or IngestOptions()).to_custom_config()),
    }
    # Building the pipeline ourselves keeps TFX from packaging itself for remote workers when args are given.
    context = Executor.Context(beam_pipeline_args=list(beam_pipeline_args),
                               make_beam_pipeline_fn=lambda: beam.Pipeline(argv=list(beam_pipeline_args)))
    (executor_class or Executor)(context).Do({}, {"examples": [examples]}, exec_properties)
    with open(os.path.join(output_dir, SUMMARY_FILE)) as f:
        return json.load(f)
