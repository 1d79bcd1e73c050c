"""`deep-emotion ingest`: check or convert a data root without the pipeline.

Runs DeepEmotionExampleGen's executor alone (components/example_gen/standalone.py). The output is
built beside --out and renamed into place only when the run succeeds (contract.publish): a failed
or interrupted run leaves the previous --out as it was.
"""
import logging
import os

import click

from components.example_gen.options import IngestOptions
from contract.data import EMOTIONS, SPLITS

_DEFAULTS = IngestOptions()


@click.command("ingest")
@click.option("--data-root", required=True, type=click.Path(exists=True, file_okay=False),
              help="Folder holding any of fer2013.csv, icml_face_data.csv, train.csv/test.csv, fer2013new.csv, "
                   "FER2013's image download (train/ + test/ of class folders), CK+48/, CK+ (cohn-kanade-images/ + "
                   "Emotion/), JAFFE, FERG-DB, as folders at any depth or as "
                   ".zip/.tar/.tar.gz/.tgz archives.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder: Split-train|eval|test/*.gz, ingest_summary.json, quarantine.jsonl.")
@click.option("--bad-record-budget", type=click.IntRange(min=0), default=_DEFAULTS.bad_record_budget, show_default=True,
              help="Quarantine up to N bad records instead of failing (0: any bad record fails the run).")
@click.option("--use-ferplus-labels", is_flag=True, default=_DEFAULTS.use_ferplus_labels,
              help="Relabel FER2013 rows by the FER+ majority vote.")
@click.option("--contempt-as", type=click.Choice(EMOTIONS), default=_DEFAULTS.contempt_as,
              help="Map CK+/FER+ contempt onto this class instead of excluding it.")
@click.option("--split-fractions", default=",".join(map(str, _DEFAULTS.split_fractions)), show_default=True,
              help="train,eval,test shares for CK+, JAFFE, FERG (by subject) and Kaggle train.csv.")
@click.option("--split-seed", type=int, default=_DEFAULTS.split_seed, show_default=True)
@click.option("--span-pattern", default="span-{SPAN}", show_default=True, envvar="DEEP_EMOTION_SPAN_PATTERN",
              help="Span folders under the data root (TFX's {SPAN} or {YYYY}-{MM}-{DD}); a root without them is "
                   "read whole, '' never looks for spans. Default: the pipeline's DEEP_EMOTION_SPAN_PATTERN when "
                   "set, so that this shows what a run would read.")
@click.option("--num-spans", type=click.IntRange(min=1), default=1, show_default=True, envvar="DEEP_EMOTION_NUM_SPANS",
              help="How many of the latest spans to read, as the pipeline's rolling window does (default: "
                   "DEEP_EMOTION_NUM_SPANS when set).")
@click.option("--span-ready-marker", default="", envvar="DEEP_EMOTION_SPAN_READY_MARKER",
              help="Read only span folders holding this file (e.g. _SUCCESS, written last by the job that "
                   "delivers a span), as the pipeline does (default: DEEP_EMOTION_SPAN_READY_MARKER when set).")
@click.option("--face-crop", default=",".join(_DEFAULTS.face_crop), show_default=True,
              help="Image layouts whose images go through the face stage: ckplus-original, jaffe, ferg "
                   "(comma-separated; '' for none).")
@click.option("--ckplus-peak-frames", type=click.IntRange(min=1), default=_DEFAULTS.ckplus_peak_frames,
              show_default=True, help="Original CK+: the last frames of each labelled sequence that are ingested.")
@click.option("--ckplus-first-frame-neutral", is_flag=True, default=_DEFAULTS.ckplus_first_frame_neutral,
              help="Original CK+: also ingest each labelled sequence's first frame, as neutral.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--beam-arg", "beam_args", multiple=True,
              help="Extra Beam pipeline argument, repeatable (e.g. --beam-arg=--direct_num_workers=2).")
def command(data_root, out, bad_record_budget, use_ferplus_labels, contempt_as, split_fractions, split_seed,
            span_pattern, num_spans, span_ready_marker, face_crop, ckplus_peak_frames, ckplus_first_frame_neutral,
            overwrite, beam_args):
    """Convert a data root to canonical TFRecords (train/eval/test) and print what went where."""
    logging.getLogger("apache_beam.io.tfrecordio").setLevel(logging.ERROR)  # "python-snappy not found": harmless
    # pylint: disable=import-outside-toplevel
    from components.example_gen import summary as summary_lib
    from components.example_gen.records import IngestError
    from components.example_gen.spans import SpanPatternError
    from components.example_gen.standalone import run_executor
    from contract import publish

    try:
        options = IngestOptions.from_dict(dict(
            use_ferplus_labels=use_ferplus_labels, contempt_as=contempt_as, bad_record_budget=bad_record_budget,
            split_seed=split_seed, split_fractions=[float(x) for x in split_fractions.split(",")],
            face_crop=face_crop, ckplus_peak_frames=ckplus_peak_frames,
            ckplus_first_frame_neutral=ckplus_first_frame_neutral))
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    out = os.path.abspath(out)
    if os.path.exists(out) and os.listdir(out) and not overwrite:
        raise click.ClickException(f"{out} exists and is not empty; pass --overwrite to replace it")
    try:
        with publish.staged(out) as staging:
            os.makedirs(staging)
            summary = run_executor(os.path.abspath(data_root), str(staging), options, beam_args,
                                   span_pattern=span_pattern, num_spans=num_spans,
                                   span_ready_marker=span_ready_marker)
    except (IngestError, SpanPatternError) as error:
        raise click.ClickException(str(error)) from error

    click.echo(summary_lib.format_table(summary))
    click.echo("")
    for split in SPLITS:
        click.echo(f"{split:5}  {summary['examples']['by_split'][split]:>7} examples -> "
                   f"{os.path.join(out, summary['splits'][split])}/")
    click.echo(f"summary            -> {os.path.join(out, 'ingest_summary.json')}")
    if summary["rejected"]["quarantine"]:
        click.echo(f"quarantine ({summary['rejected']['count']:>3}) -> "
                   f"{os.path.join(out, summary['rejected']['quarantine'])}")
