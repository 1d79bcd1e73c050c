"""`deep-emotion ingest`: run DeepEmotionExampleGen's executor alone, on Beam's DirectRunner.

To check or convert a data root without the whole pipeline. The output is laid out exactly like
the pipeline's examples artifact (Split-*/, ingest_summary.json, quarantine.jsonl). It is built
in a folder beside --out and renamed into place only when the run succeeds.
"""
import json
import logging
import os
import shutil
import tempfile
from typing import Any, Dict, Sequence

import click

from deep_emotion.data_contract import EMOTIONS, SPLITS
from deep_emotion.runtime import quiet_tensorflow


def run_executor(data_root: str, output_dir: str, options, beam_pipeline_args: Sequence[str] = (),
                 executor_class=None) -> Dict[str, Any]:
    """Runs the TFX executor (or a subclass) with an examples artifact at output_dir; returns the summary."""
    # pylint: disable=import-outside-toplevel  # TFX and Beam load in seconds: not for `--help`
    import apache_beam as beam
    from tfx.proto import example_gen_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    from components.example_gen.component import INPUT_CONFIG
    from components.example_gen.executor import SUMMARY_FILE, Executor

    examples = standard_artifacts.Examples()
    examples.uri = output_dir
    exec_properties = {
        "input_base": data_root,
        "input_config": proto_utils.proto_to_json(INPUT_CONFIG),
        "output_config": proto_utils.proto_to_json(example_gen_pb2.Output()),
        "custom_config": proto_utils.proto_to_json(options.to_custom_config()),
    }
    # Building the pipeline ourselves keeps TFX from packaging itself for remote workers when args are given.
    context = Executor.Context(beam_pipeline_args=list(beam_pipeline_args),
                               make_beam_pipeline_fn=lambda: beam.Pipeline(argv=list(beam_pipeline_args)))
    (executor_class or Executor)(context).Do({}, {"examples": [examples]}, exec_properties)
    with open(os.path.join(output_dir, SUMMARY_FILE)) as f:
        return json.load(f)


@click.command()
@click.option("--data-root", required=True, type=click.Path(exists=True, file_okay=False),
              help="Folder holding any of fer2013.csv, icml_face_data.csv, train.csv/test.csv, fer2013new.csv, "
                   "CK+48/, jaffe/, FERG_DB_256/.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder: Split-train|eval|test/*.gz, ingest_summary.json, quarantine.jsonl.")
@click.option("--bad-record-budget", type=click.IntRange(min=0), default=0, show_default=True,
              help="Quarantine up to N bad records instead of failing (0: any bad record fails the run).")
@click.option("--use-ferplus-labels", is_flag=True, help="Relabel FER2013 rows by the FER+ majority vote.")
@click.option("--contempt-as", type=click.Choice(EMOTIONS), default=None,
              help="Map CK+/FER+ contempt onto this class instead of excluding it.")
@click.option("--split-fractions", default="0.8,0.1,0.1", show_default=True,
              help="train,eval,test shares for CK+, JAFFE, FERG (by subject) and Kaggle train.csv.")
@click.option("--split-seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--beam-arg", "beam_args", multiple=True,
              help="Extra Beam pipeline argument, repeatable (e.g. --beam-arg=--direct_num_workers=2).")
def ingest(data_root, out, bad_record_budget, use_ferplus_labels, contempt_as, split_fractions, split_seed,
           overwrite, beam_args):
    """Convert a data root to canonical TFRecords (train/eval/test) and print what went where."""
    quiet_tensorflow()
    logging.getLogger("apache_beam.io.tfrecordio").setLevel(logging.ERROR)  # "python-snappy not found": harmless
    # pylint: disable=import-outside-toplevel
    from components.example_gen import summary as summary_lib
    from components.example_gen.options import IngestOptions
    from components.example_gen.records import IngestError

    try:
        options = IngestOptions(use_ferplus_labels=use_ferplus_labels, contempt_as=contempt_as,
                                bad_record_budget=bad_record_budget, split_seed=split_seed,
                                split_fractions=tuple(float(x) for x in split_fractions.split(",")))
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    out = os.path.abspath(out)
    if os.path.exists(out) and os.listdir(out) and not overwrite:
        raise click.ClickException(f"{out} exists and is not empty; pass --overwrite to replace it")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.partial-", dir=os.path.dirname(out))
    try:
        summary = run_executor(os.path.abspath(data_root), staging, options, beam_args)
    except IngestError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise click.ClickException(str(error)) from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp made it private
    if os.path.exists(out):
        shutil.rmtree(out)
    os.replace(staging, out)

    click.echo(summary_lib.format_table(summary))
    click.echo("")
    for split in SPLITS:
        click.echo(f"{split:5}  {summary['examples']['by_split'][split]:>7} examples -> "
                   f"{os.path.join(out, summary['splits'][split])}/")
    click.echo(f"summary            -> {os.path.join(out, 'ingest_summary.json')}")
    if summary["rejected"]["quarantine"]:
        click.echo(f"quarantine ({summary['rejected']['count']:>3}) -> "
                   f"{os.path.join(out, summary['rejected']['quarantine'])}")
