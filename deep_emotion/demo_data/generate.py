"""One call that writes a whole demo data root, sized from a single number.

`n` is the FER2013 row count (the real file has 35,887). The folder datasets follow it:
CK+48 keeps the real CK+48's share (327 sequences x 3 frames per 35,887 FER2013 rows, at least
14 sequences so every class appears), JAFFE is always its real 213 images, and FERG gets
n / 500 images per character and expression (2 to 40: a few hundred per character at most,
against the real set's ~9,000, which would only slow the demo down).
"""
from __future__ import annotations

from pathlib import Path

from deep_emotion.demo_data import writers

FORMATS = ("fer2013", "icml", "kaggle", "ferplus", "fer2013-images", "ckplus", "ckplus-original", "jaffe", "ferg")
DEFAULT_FORMATS = ("fer2013", "ckplus", "ckplus-original", "jaffe", "ferg")
REAL_FER2013_ROWS = 35_887
REAL_CKPLUS_SEQUENCES = 327
MIN_CKPLUS_SEQUENCES = 14
FERG_PER_CLASS_RANGE = (2, 40)


def dataset_sizes(n: int) -> dict:
    """What each dataset gets for n FER2013 rows (see the module docstring)."""
    return {
        "fer2013_rows": n,
        "ckplus_sequences": max(MIN_CKPLUS_SEQUENCES, round(REAL_CKPLUS_SEQUENCES * n / REAL_FER2013_ROWS)),
        "jaffe_images": sum(writers.JAFFE_IMAGES.values()),
        "ferg_per_class": min(FERG_PER_CLASS_RANGE[1], max(FERG_PER_CLASS_RANGE[0], round(n / 500))),
    }


def generate(out_dir, n: int = 3_000, seed: int = 0, formats=DEFAULT_FORMATS,
             progress: writers.Progress = None) -> dict:
    """Write the requested formats under out_dir; returns {"out_dir", "n", "seed", "datasets":
    {format: summary}} with each dataset's path, image count and counts per class (and per
    Usage for the FER2013 family). The same arguments always write byte-identical files.

    Layout: fer2013.csv, icml_face_data.csv, train.csv + test.csv (kaggle), fer2013new.csv
    (ferplus), fer2013-images/ (train/ and test/ of class folders), CK+48/, CK+/ (cohn-kanade-images/ + Emotion/), jaffe/, FERG_DB_256/ — the names the
    real downloads use.
    """
    formats = tuple(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
    if n < 10:
        raise ValueError(f"n (FER2013 rows) must be at least 10 so every Usage split has rows, got {n}")
    out_dir = Path(out_dir)
    sizes = dataset_sizes(n)
    datasets = {}
    fer_variants = [f for f in formats if f in writers.FER2013_VARIANTS]
    if fer_variants:
        fer = writers.write_fer2013(out_dir, n, seed, fer_variants, progress)
        shared = {k: v for k, v in fer.items() if k not in ("files", "ferplus_majority")}
        for variant in fer_variants:  # one set of rows, several file layouts
            files = fer["files"][variant]
            datasets[variant] = {"path": files[0] if len(files) == 1 else str(out_dir),
                                 "files": files, **shared}
        if "ferplus" in datasets:
            datasets["ferplus"]["majority_vote"] = fer["ferplus_majority"]
    if "ckplus" in formats:
        datasets["ckplus"] = writers.write_ckplus(out_dir, sizes["ckplus_sequences"], seed, progress)
    if "ckplus-original" in formats:
        datasets["ckplus-original"] = writers.write_ckplus_original(out_dir, sizes["ckplus_sequences"], seed, progress)
    if "jaffe" in formats:
        datasets["jaffe"] = writers.write_jaffe(out_dir, seed, progress)
    if "ferg" in formats:
        datasets["ferg"] = writers.write_ferg(out_dir, sizes["ferg_per_class"], seed, progress)
    writers.write_synthetic_marker(out_dir, n, seed, formats)
    return {"out_dir": str(out_dir), "n": n, "seed": seed, "datasets": datasets}
