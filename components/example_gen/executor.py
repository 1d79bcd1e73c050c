"""DeepEmotionExampleGen's executor: one Beam pass over a whole data root, or over the span folders
the driver (or Kubeflow's SpanResolver) resolved, -> train/eval/test.

Output (the examples artifact's URI):
    Split-{train,eval,test}/data_tfrecord-*.gz   gzipped TFRecords of canonical tf.Examples
                                                 (an empty split gets one empty file)
    ingest_summary.json                          counts per source, split and class; exclusions;
                                                 rejects; unrecognised entries; the spans (summary.py)
    quarantine.jsonl                             rejected records with their defects, only when a
                                                 bad-record budget let the run pass with some
Downstream components read only the Split-* folders. The artifact records the latest span (`span`),
the spans read (`span_folders`, JSON) and the input fingerprint, wherever they were resolved.

Bad records never stop the Beam pass; they are collected, so that a failing run names all of
them at once (the first 20 and the total) rather than the first, and the error is raised here in
plain Python, not wrapped by Beam. On failure every output is removed: nothing half-done.
"""
import collections
import gzip
import json
import dataclasses
import os
import pickle
import queue
import struct
import threading
from typing import Any, Dict, List

import apache_beam as beam
import google_crc32c
from absl import logging
from apache_beam.io import fileio
from apache_beam.options.value_provider import StaticValueProvider
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen import write_split
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.util import examples_utils
from tfx.dsl.io import fileio as tfx_fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs

from components.example_gen import spans as spans_lib
from components.example_gen import summary as summary_lib
from components.example_gen.data_root import Plan
from components.example_gen.driver import READY_MARKER_KEY, SPAN_FOLDERS_KEY, SPAN_PATTERN_KEY
from components.example_gen.fer2013_csv import CsvTask, ReadCsvFile
from components.example_gen.image_folders import DecodeImage, group_image_tasks
from components.example_gen.options import IngestOptions
from components.example_gen.records import IngestError, Reject
from contract.data import SPLITS

SUMMARY_FILE = "ingest_summary.json"
QUARANTINE_FILE = "quarantine.jsonl"
STAGING_DIR = ".staging"  # Beam's temporary files while writing; removed at the end
_FIRST_REJECTS = 20


def _sum_counters(counters) -> collections.Counter:
    total = collections.Counter()
    for counter in counters:
        total.update(counter)
    return total


class IngestedSplits(dict):
    """split name -> PCollection of serialized tf.Examples, as GenerateExamplesByBeam must return;
    plus what must not be dropped: the rejected records and the tally of everything counted."""

    def __init__(self, splits, rejected, tally, plan: Plan, spans=()):
        super().__init__(splits)
        self.rejected = rejected
        self.tally = tally
        self.plan = plan
        self.spans = spans


class ReadRecords(beam.DoFn):
    """Any task of a Plan (a CSV file, an image, or the images of one archive) -> (split,
    serialized tf.Example), with tagged 'rejected' Rejects and 'tally' Counters.

    One DoFn for both kinds so that every example leaves one fused stage: the DirectRunner
    materialises a Flatten of two stages' outputs, which held every example in memory.
    """

    def __init__(self, options: IngestOptions):
        super().__init__()
        self._csv = ReadCsvFile(options)
        self._images = DecodeImage(options.max_image_pixels, options.max_archive_member_bytes)

    def setup(self):
        self._images.setup()

    def teardown(self):
        self._images.teardown()

    def process(self, task):
        yield from (self._csv if isinstance(task, CsvTask) else self._images).process(task)


class ReadDataRoot(beam.PTransform):
    """Reads every task of a Plan once, files and images in parallel, into train/eval/test."""

    def __init__(self, plan: Plan, options: IngestOptions, spans=()):
        super().__init__()
        self._plan = plan
        self._options = options
        self._spans = tuple(spans)

    def expand(self, pipeline):
        plan = self._plan
        # Beam pickles a Create's values with dill, in Python: 1.3 s for FER2013's 35,887 image tasks, and
        # twice. The standard library's C pickler takes 0.04 s, so the tasks travel as its bytes.
        tasks = [pickle.dumps(task, pickle.HIGHEST_PROTOCOL)
                 for task in plan.csv_tasks + group_image_tasks(plan.image_tasks)]
        records = (pipeline | "Tasks" >> beam.Create(tasks) | "Unpickle" >> beam.Map(pickle.loads)
                   | "ReadRecords" >> beam.ParDo(ReadRecords(self._options)).with_outputs(
                       "rejected", "tally", main="examples"))
        listed = collections.Counter({("excluded",) + key: n for key, n in plan.excluded.items()})
        listed.update(("rejected", r.source) for r in plan.rejects)
        tally = ((records.tally, pipeline | "ListingTally" >> beam.Create([listed]))
                 | "AllTallies" >> beam.Flatten()
                 | "Tally" >> beam.CombineGlobally(_sum_counters))
        rejected = ((records.rejected, pipeline | "ListingRejects" >> beam.Create(plan.rejects))
                    | "AllRejects" >> beam.Flatten())
        by_split = records.examples | "SplitData" >> beam.Partition(
            lambda record, _: SPLITS.index(record[0]), len(SPLITS))
        splits = {split: by_split[i] | f"Examples[{split}]" >> beam.Values() for i, split in enumerate(SPLITS)}
        return IngestedSplits(splits, rejected, tally, plan, self._spans)


def _masked_crc32c(data: bytes) -> int:
    """TFRecord's checksum: CRC-32C, rotated and offset ("masked") as tf.data expects."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class GzipTFRecordSink(fileio.FileSink):
    """TFRecords (length, masked CRC-32C of the length, data, masked CRC-32C of the data: the
    layout tf.data and TFX read) in a gzip stream at compression level 1, compressed on a thread of
    its own.

    Beam's own TFRecord sink compresses at zlib's default level 6 and offers no level; its framing
    helper is private. This uses the gzip module and google-crc32c (C, in TFX's dependency set).
    Compressing is ~2 s of CPU for FER2013's 140 MB of records here; zlib releases the GIL, so a
    writer thread compresses while the reading that feeds it goes on. Records reach it in chunks of
    CHUNK_BYTES, at most MAX_WAITING chunks queued (memory stays bounded), in order. An error there
    (a full disk) is raised, as it was raised, by the next write or by flush.
    """

    CHUNK_BYTES = 1 << 20
    MAX_WAITING = 4

    def open(self, fh):
        self._out = gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=1, mtime=0)
        self._pending, self._pending_bytes, self._error = [], 0, None
        self._chunks = queue.Queue(maxsize=self.MAX_WAITING)
        self._writer = threading.Thread(target=self._compress_chunks, name="gzip-tfrecord-writer", daemon=True)
        self._writer.start()

    def _compress_chunks(self) -> None:
        while True:
            chunk = self._chunks.get()
            if chunk is None:
                return
            if self._error is None:  # after an error, only drain: a blocked put() must return
                try:
                    self._out.write(chunk)
                except BaseException as error:  # pylint: disable=broad-except  # re-raised by write/flush
                    self._error = error

    def write(self, record: bytes) -> None:
        length = struct.pack("<Q", len(record))
        self._pending.append(b"".join((length, struct.pack("<I", _masked_crc32c(length)),
                                       record, struct.pack("<I", _masked_crc32c(record)))))
        self._pending_bytes += len(record) + 16
        if self._pending_bytes >= self.CHUNK_BYTES:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._error is None and self._pending:
            self._chunks.put(b"".join(self._pending))
            self._pending, self._pending_bytes = [], 0
        if self._error is not None:
            self._stop_writer()
            raise self._error

    def _stop_writer(self) -> None:
        if self._writer.is_alive():
            self._chunks.put(None)
            self._writer.join()

    def flush(self) -> None:
        try:
            self._hand_over()
        finally:
            self._stop_writer()
        if self._error is not None:
            raise self._error
        self._out.close()  # writes the gzip trailer; the file handle itself stays open for Beam to close


def _is_fatal(reject: Reject) -> bool:
    return reject.fatal


def _write_summary(tally, path, plan, options, spans, rejected_count, fatal_count, first_rejects, first_fatal):
    """Fatal defects are listed first: they are what must be fixed whatever the budget."""
    first = first_fatal + [r for r in first_rejects if not r.fatal]
    summary = summary_lib.build(plan, options, tally, rejected_count, fatal_count,
                                [r.describe() for r in first[:_FIRST_REJECTS]],
                                quarantine=QUARANTINE_FILE if rejected_count else None, spans=spans)
    with tfx_fileio.open(path, "w") as f:
        json.dump(summary, f, indent=2)


class Executor(BaseExampleGenExecutor):
    """Ingests every recognised dataset under input_base (see the module docstring)."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        raise NotImplementedError("DeepEmotionExampleGen reads the whole data root in GenerateExamplesByBeam")

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline, exec_properties: Dict[str, Any]) -> IngestedSplits:
        """One pass over the data root or its resolved span folders (not one per input split),
        partitioned into train/eval/test."""
        options = IngestOptions.from_custom_config_json(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY))
        data_root = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        spans = spans_lib.from_json(exec_properties.get(SPAN_FOLDERS_KEY))
        pattern = exec_properties.get(SPAN_PATTERN_KEY)
        unmatched = spans_lib.span_like_folders(data_root) if pattern and not spans else ()
        hint = (f"{', '.join(unmatched)} look like span folders but do not match the span pattern {pattern!r}, so "
                "the root is read whole, as one span, with no drift check between them; to read them as spans set "
                "the pattern (DEEP_EMOTION_SPAN_PATTERN, e.g. {YYYY}-{MM}-{DD} or span_{SPAN})") if unmatched else ""
        try:
            plan = spans_lib.plan_spans(data_root, spans, options)
        except IngestError as error:
            if not hint:
                raise
            raise IngestError(f"{error}\nNote: {hint}") from error
        if hint:
            plan.notes.append(hint)
        marker = exec_properties.get(READY_MARKER_KEY)
        if marker and not spans:
            plan.notes.append(f"the span ready marker {marker} is set, but no folder of the data root matches the "
                              f"span pattern {pattern!r}: it is read whole, with no marker to wait for")
            plan.unrecognised[:] = [entry for entry in plan.unrecognised if not entry.startswith(f"{marker} (")]
        if spans and pattern:
            found = spans_lib.list_spans(data_root, pattern)
            outside = spans_lib.outside(data_root, found)
            if outside:
                plan.notes.append(f"in no span folder ({pattern}), not read: {', '.join(outside)}")
            if marker:  # each read span's "complete" flag is not data, and not worth a line
                flags = tuple(f"{span.folder}/{marker} (" for span in spans)  # "span-2/_SUCCESS (why)"
                plan.unrecognised[:] = [entry for entry in plan.unrecognised if not entry.startswith(flags)]
                waiting = spans_lib.split_ready(data_root, found, marker)[1]
                if waiting:
                    plan.notes.append(f"span folders {spans_lib.describe_waiting(waiting, marker)}")
        return pipeline | "ReadDataRoot" >> ReadDataRoot(plan, options, spans)

    def write_split(self, examples: beam.PCollection, split_uri: str):
        """Writes gzipped TFRecords, named as TFX's WriteSplit names them, but

        - without WriteSplit's Reshuffle: on the DirectRunner that GroupByKey holds every serialized
          example in memory, so peak RSS grows with the row count (bench/ingest.py measures it);
          the Trainer shuffles its input anyway;
        - at gzip level 1, not Beam's fixed default (6): about 5x less CPU for files 1-2% larger
          here; compression was the largest cost per FER2013 row.
        """
        return examples | fileio.WriteToFiles(
            path=split_uri, sink=GzipTFRecordSink, temp_directory=StaticValueProvider(str, os.path.join(
                os.path.dirname(split_uri), STAGING_DIR, os.path.basename(split_uri))),
            file_naming=fileio.default_file_naming(write_split.DEFAULT_TF_RECORD_FILE_NAME, ".gz"))

    def Do(self, input_dict: Dict[str, List], output_dict: Dict[str, List], exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        options = IngestOptions.from_custom_config_json(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY))
        examples_artifacts = output_dict[standard_component_specs.EXAMPLES_KEY]
        examples = artifact_utils.get_single_instance(examples_artifacts)
        examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
        try:
            with self._make_beam_pipeline() as pipeline:
                ingested = self.GenerateExamplesByBeam(pipeline, exec_properties)
                for split, records in ingested.items():
                    _ = records | f"WriteSplit[{split}]" >> _WriteWith(
                        self.write_split, artifact_utils.get_split_uri(examples_artifacts, split))
                _write_reports(ingested, examples.uri, options)
            if tfx_fileio.exists(os.path.join(examples.uri, STAGING_DIR)):  # absent when nothing was written
                tfx_fileio.rmtree(os.path.join(examples.uri, STAGING_DIR))
            with tfx_fileio.open(os.path.join(examples.uri, SUMMARY_FILE)) as f:
                summary = json.load(f)
            failure = summary_lib.failure_message(summary, options)
            if failure:
                raise IngestError(failure)
        except BaseException:
            _remove_outputs(examples.uri)
            raise
        quarantine_path = os.path.join(examples.uri, QUARANTINE_FILE)
        if not summary["rejected"]["count"] and tfx_fileio.exists(quarantine_path):
            tfx_fileio.remove(quarantine_path)
        for split in SPLITS:
            _ensure_split_file(artifact_utils.get_split_uri(examples_artifacts, split))
        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(examples, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))
        for name, value in summary_lib.artifact_properties(summary).items():
            examples.set_int_custom_property(name, value)
        # What TFX's driver records locally; on Kubeflow no driver runs, so here, wherever resolved.
        examples.span = spans_lib.span_number(exec_properties.get(example_gen_utils.SPAN_PROPERTY_NAME))
        examples.set_string_custom_property(SPAN_FOLDERS_KEY, exec_properties.get(SPAN_FOLDERS_KEY) or "[]")
        if exec_properties.get(example_gen_utils.FINGERPRINT_PROPERTY_NAME):
            examples.set_string_custom_property(example_gen_utils.FINGERPRINT_PROPERTY_NAME,
                                                exec_properties[example_gen_utils.FINGERPRINT_PROPERTY_NAME])
        logging.info("Ingested %s:\n%s", summary["data_root"], summary_lib.format_table(summary))


def _write_reports(ingested: IngestedSplits, uri: str, options: IngestOptions) -> None:
    """Adds to the pipeline: the quarantine file (JSON lines) and the summary with its counts."""
    rejected = ingested.rejected
    _ = (rejected | "QuarantineJson" >> beam.Map(Reject.to_json)
         | "WriteQuarantine" >> beam.io.WriteToText(os.path.join(uri, QUARANTINE_FILE), shard_name_template="",
                                                     num_shards=1))
    fatal = rejected | "Fatal" >> beam.Filter(_is_fatal)
    listing = dataclasses.replace(ingested.plan, csv_tasks=[], image_tasks=[], rejects=[])  # what the summary reads
    _ = ingested.tally | "WriteSummary" >> beam.Map(
        _write_summary, os.path.join(uri, SUMMARY_FILE), listing, options, ingested.spans,
        rejected_count=beam.pvalue.AsSingleton(rejected | "CountRejects" >> beam.combiners.Count.Globally()),
        fatal_count=beam.pvalue.AsSingleton(fatal | "CountFatal" >> beam.combiners.Count.Globally()),
        first_rejects=beam.pvalue.AsSingleton(
            rejected | "FirstRejects" >> beam.combiners.Top.Smallest(_FIRST_REJECTS, key=Reject.sort_key)),
        first_fatal=beam.pvalue.AsSingleton(
            fatal | "FirstFatal" >> beam.combiners.Top.Smallest(_FIRST_REJECTS, key=Reject.sort_key)))


def _ensure_split_file(split_uri: str) -> None:
    """An empty split still gets a valid (empty) gzipped TFRecord file, for readers that glob it."""
    if tfx_fileio.exists(split_uri) and tfx_fileio.listdir(split_uri):
        return
    tfx_fileio.makedirs(split_uri)
    with tfx_fileio.open(os.path.join(split_uri, f"{write_split.DEFAULT_TF_RECORD_FILE_NAME}-00000-of-00001.gz"),
                         "wb") as f:
        f.write(gzip.compress(b""))


@beam.ptransform_fn
def _WriteWith(pcoll, write_fn, split_uri):  # pylint: disable=invalid-name
    """Gives each split's writer its own label scope."""
    return write_fn(pcoll, split_uri)


def _remove_outputs(uri: str) -> None:
    """Removes what this executor writes under uri (TFX's launcher removes the URI too, other callers may not)."""
    for folder in [f"Split-{split}" for split in SPLITS] + [STAGING_DIR]:
        path = os.path.join(uri, folder)
        if tfx_fileio.exists(path):
            tfx_fileio.rmtree(path)
    for name in (SUMMARY_FILE, QUARANTINE_FILE):
        if tfx_fileio.exists(os.path.join(uri, name)):
            tfx_fileio.remove(os.path.join(uri, name))
