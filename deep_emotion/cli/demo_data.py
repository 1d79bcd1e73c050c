"""`deep-emotion demo-data`: write a synthetic data root in the real datasets' formats (deep_emotion/demo_data)."""
from __future__ import annotations

import click

from deep_emotion.demo_data.generate import DEFAULT_FORMATS, FORMATS, dataset_sizes, generate


class _ProgressBars:
    """One click progress bar per dataset, opened on its first report, closed on its last."""

    def __init__(self):
        self.bars, self.done = {}, {}

    def __call__(self, dataset, done, total):
        if dataset not in self.bars:
            bar = click.progressbar(length=total, label=f"{dataset:<8}",
                                    file=click.get_text_stream("stderr"))
            self.bars[dataset], self.done[dataset] = bar.__enter__(), 0
        self.bars[dataset].update(done - self.done[dataset])
        self.done[dataset] = done
        if done >= total:
            self.bars.pop(dataset).__exit__(None, None, None)

    def close(self):
        for bar in self.bars.values():
            bar.__exit__(None, None, None)


@click.command("demo-data")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Data root to write (created if missing; datasets in it are replaced).")
@click.option("--n", "n", default=3_000, show_default=True, type=click.IntRange(min=10),
              help="FER2013 rows (the real file has 35,887). CK+48 scales with it (327 sequences "
                   "x 3 frames at 35,887, at least 14 sequences), JAFFE is always 213 images, "
                   "FERG gets n/500 images per character and expression (2..40).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Same seed, same bytes.")
@click.option("--formats", default=",".join(DEFAULT_FORMATS), show_default=True,
              help=f"Comma-separated, from: {', '.join(FORMATS)} (icml = icml_face_data.csv, "
                   "kaggle = train.csv + test.csv, ferplus = fer2013new.csv, fer2013-images = Kaggle's image "
                   "download of the same rows: use it instead of fer2013, not beside it).")
def command(out_dir, n, seed, formats):
    """Write synthetic faces in the FER2013, CK+, JAFFE and FERG formats."""
    chosen = tuple(f.strip() for f in formats.split(",") if f.strip())
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise click.BadParameter(f"{', '.join(unknown) or 'nothing chosen'}; choose from "
                                 f"{', '.join(FORMATS)}", param_hint="--formats")
    sizes = dataset_sizes(n)
    click.echo(f"Writing synthetic demo data to {out_dir} (seed {seed}): {n} FER2013 rows, "
               f"{sizes['ckplus_sequences']} CK+ sequences, {sizes['jaffe_images']} JAFFE images, "
               f"{sizes['ferg_per_class']} FERG images per character and expression.")
    progress = _ProgressBars()
    try:
        summary = generate(out_dir, n=n, seed=seed, formats=chosen, progress=progress)
    finally:
        progress.close()
    for name, dataset in summary["datasets"].items():
        where = ", ".join(dataset["files"]) if "files" in dataset else dataset["path"]
        click.echo(f"\n{name}: {dataset['images']} images -> {where}")
        if "subjects" in dataset:
            click.echo(f"  subjects: {dataset['subjects']}")
        for split, counts in dataset.get("by_split", {"all": dataset["by_class"]}).items():
            click.echo(f"  {split:<12} " + "  ".join(f"{k} {v}" for k, v in counts.items()))
        if "majority_vote" in dataset:
            votes = dataset["majority_vote"]
            click.echo("  FER+ majority " + "  ".join(f"{k} {v}" for k, v in votes.items()))
