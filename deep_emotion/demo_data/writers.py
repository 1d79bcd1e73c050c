"""Write synthetic faces in the real datasets' own file formats (docs/design.md, "Datasets users have").

Ingestion then reads the demo data exactly as it reads a user's FER2013 CSV or CK+/JAFFE/FERG
folders, so the demo exercises the real code paths. Each dataset is written under a hidden
temporary name and renamed into place when complete (contract.publish): a crash leaves the previous
dataset (or nothing), never half a dataset.

Every writer returns a summary of what it wrote: counts per class in the dataset's own label
names (CK+ "contempt" included), per split where the format has splits.
"""
from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PIL import Image

from contract import publish
from contract.data import (CKPLUS_CODES, CKPLUS_FOLDERS, EMOTIONS, FERG_EXPRESSIONS, FERPLUS_TO_EMOTION, FERPLUS_VOTES,
                           JAFFE_CODES, SYNTHETIC_MARKER)
from deep_emotion.demo_data.faces import CONTEMPT, render_faces

# progress(dataset, done, total): called as a long write advances.
Progress = Optional[Callable[[str, int, int], None]]

# Random streams, one per dataset, so that adding a dataset never changes another's bytes.
_STREAMS = {"fer2013": 1, "ferplus": 2, "ckplus": 3, "jaffe": 4, "ferg": 5, "ckplus-original": 6}
# Subject ids for render_faces: disjoint ranges so no two datasets share a synthetic person.
_SUBJECT_BASE = {"ckplus": 1_000, "jaffe": 2_000, "ferg": 3_000}
_LAB_NUISANCE = 0.35    # CK+ and JAFFE: posed, frontal, even light
_RENDER_NUISANCE = 0.2  # FERG: rendered cartoons, centred
_BLOCK = 2_000          # faces rendered (and reported) at a time

# ---------------------------------------------------------------------------------------------
# FER2013 and its relatives: one set of rows, several file layouts.

FER2013_FILE = "fer2013.csv"
ICML_FILE = "icml_face_data.csv"
KAGGLE_TRAIN_FILE, KAGGLE_TEST_FILE = "train.csv", "test.csv"
FERPLUS_FILE = "fer2013new.csv"
FER2013_IMAGES_DIR = "fer2013-images"  # Kaggle's image download (msambare/fer2013) unpacked
FER2013_IMAGES_JPEG_QUALITY = 95
FER2013_VARIANTS = ("fer2013", "icml", "kaggle", "ferplus", "fer2013-images")

FER2013_USAGES = ("Training", "PublicTest", "PrivateTest")
FER2013_USAGE_ROWS = (28_709, 3_589, 3_589)  # the real file's 35,887 rows
# The real Training split's class counts (EMOTIONS order); every split keeps these proportions.
FER2013_TRAINING_COUNTS = (3_995, 436, 4_097, 7_215, 4_830, 3_171, 4_965)

FERPLUS_COLUMNS = FERPLUS_VOTES
_FERPLUS_COLUMN_OF = {emotion: column for column, emotion in FERPLUS_TO_EMOTION.items()}
FERPLUS_VOTERS = 10
FERPLUS_UNKNOWN_SHARE, FERPLUS_NOT_FACE_SHARE = 0.02, 0.01


def fer2013_plan(n: int, seed) -> tuple:
    """(labels, usages) of an n-row FER2013-style file: Usage blocks in the real order and
    proportions (80/10/10), FER2013's class imbalance in every block, shuffled within a block."""
    if n < len(FER2013_USAGES):
        raise ValueError(f"a FER2013-style file needs at least {len(FER2013_USAGES)} rows, got {n}")
    split_rows = _apportion(n, FER2013_USAGE_ROWS)
    rng = np.random.default_rng([*_seed_words(seed), _STREAMS["fer2013"], 0])
    labels, usages = [], []
    for usage, rows in zip(FER2013_USAGES, split_rows):
        block = np.repeat(np.arange(len(EMOTIONS)), _apportion(rows, FER2013_TRAINING_COUNTS))
        labels.append(rng.permutation(block))
        usages += [usage] * rows
    return np.concatenate(labels), usages


def write_fer2013(out_dir, n: int, seed, variants=("fer2013",), progress: Progress = None) -> dict:
    """Write n FER2013 rows as the requested variants (FER2013_VARIANTS); all show the same faces.
    The summary's "files" maps each variant to the files written for it.

    fer2013: fer2013.csv, `emotion,pixels,Usage`. icml: icml_face_data.csv, `emotion, Usage,
    pixels` (the headers' leading spaces are the real file's). kaggle: the competition bundle's
    train.csv (`emotion,pixels`, Training rows) and test.csv (`pixels`, the other rows), pixels
    in quotes as there. ferplus: fer2013new.csv, FER+ votes for the same rows in the same order.
    fer2013-images: Kaggle's image download, fer2013-images/train/<class>/Training_<row>.jpg and
    test/<class>/PublicTest_<row>.jpg, PrivateTest_<row>.jpg (48x48 gray JPEGs; Kaggle numbers its
    files otherwise, the row number here lets tests match them to the CSV).
    """
    unknown = set(variants) - set(FER2013_VARIANTS)
    if unknown:
        raise ValueError(f"unknown FER2013 variant(s) {sorted(unknown)}; known: {FER2013_VARIANTS}")
    out_dir = Path(out_dir)
    labels, usages = fer2013_plan(n, seed)
    votes = _ferplus_votes(labels, seed) if "ferplus" in variants else None
    names = {"fer2013": [FER2013_FILE], "icml": [ICML_FILE],
             "kaggle": [KAGGLE_TRAIN_FILE, KAGGLE_TEST_FILE], "ferplus": [FERPLUS_FILE],
             "fer2013-images": [FER2013_IMAGES_DIR]}
    files = [name for variant in variants for name in names[variant]]
    with contextlib.ExitStack() as stack:
        tmp = {name: stack.enter_context(publish.staged(out_dir / name)) for name in files}
        images = tmp.pop(FER2013_IMAGES_DIR, None)
        out = {name: stack.enter_context(open(path, "w", encoding="ascii", newline=""))
               for name, path in tmp.items()}
        headers = {FER2013_FILE: "emotion,pixels,Usage", ICML_FILE: "emotion, Usage, pixels",
                   KAGGLE_TRAIN_FILE: "emotion,pixels", KAGGLE_TEST_FILE: "pixels",
                   FERPLUS_FILE: "Usage,Image name," + ",".join(FERPLUS_COLUMNS)}
        for name, f in out.items():
            f.write(headers[name] + "\n")
        for start in range(0, n, _BLOCK):
            faces = render_faces(labels[start:start + _BLOCK],
                                 seed=[*_seed_words(seed), _STREAMS["fer2013"], 1, start])
            for row, face in enumerate(faces, start):
                label, usage, pixels = labels[row], usages[row], _pixels_text(face)
                if FER2013_FILE in out:
                    out[FER2013_FILE].write(f"{label},{pixels},{usage}\n")
                if ICML_FILE in out:
                    out[ICML_FILE].write(f"{label},{usage},{pixels}\n")
                if KAGGLE_TRAIN_FILE in out:
                    if usage == "Training":
                        out[KAGGLE_TRAIN_FILE].write(f'{label},"{pixels}"\n')
                    else:
                        out[KAGGLE_TEST_FILE].write(f'"{pixels}"\n')
                if FERPLUS_FILE in out:
                    not_face = votes[row, -1] > FERPLUS_VOTERS // 2
                    image_name = "" if not_face else f"fer{row:07d}.png"  # FER+ drops non-faces
                    counts = ",".join(str(v) for v in votes[row])
                    out[FERPLUS_FILE].write(f"{usage},{image_name},{counts}\n")
                if images is not None:
                    folder = images / ("train" if usage == "Training" else "test") / EMOTIONS[label]
                    folder.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(face, mode="L").save(folder / f"{usage}_{row}.jpg",
                                                         quality=FER2013_IMAGES_JPEG_QUALITY)
            if progress:
                progress("fer2013", min(n, start + _BLOCK), n)

    by_split = {usage: _count([EMOTIONS[label] for label, u in zip(labels, usages) if u == usage],
                              EMOTIONS) for usage in FER2013_USAGES}
    summary = {"files": {variant: [str(out_dir / name) for name in names[variant]]
                         for variant in variants},
               "images": n, "by_class": _count([EMOTIONS[label] for label in labels], EMOTIONS),
               "by_split": by_split}
    if votes is not None:
        majority = np.argmax(votes, axis=1)
        summary["ferplus_majority"] = _count([FERPLUS_COLUMNS[m] for m in majority], FERPLUS_COLUMNS)
    return summary


def _ferplus_votes(labels: np.ndarray, seed) -> np.ndarray:
    """[n, 10] FER+ vote counts (FERPLUS_COLUMNS order), 10 voters a row. Most rows' majority is
    the FER2013 label; a few are mostly 'unknown' or 'NF' (not a face), as in the real file."""
    rng = np.random.default_rng([*_seed_words(seed), _STREAMS["ferplus"]])
    n = labels.size
    votes = np.zeros((n, len(FERPLUS_COLUMNS)), dtype=np.int64)
    kind = rng.random(n)
    majority_column = np.array([FERPLUS_COLUMNS.index(_FERPLUS_COLUMN_OF[EMOTIONS[label]])
                                for label in labels], dtype=np.int64)
    majority_column[kind < FERPLUS_UNKNOWN_SHARE + FERPLUS_NOT_FACE_SHARE] = FERPLUS_COLUMNS.index("unknown")
    majority_column[kind < FERPLUS_NOT_FACE_SHARE] = FERPLUS_COLUMNS.index("NF")
    majority_votes = rng.integers(6, FERPLUS_VOTERS + 1, size=n)
    votes[np.arange(n), majority_column] = majority_votes
    for row in range(n):  # the rest of the voters pick other expressions (or contempt/unknown)
        others = [c for c in range(len(FERPLUS_COLUMNS) - 1) if c != majority_column[row]]
        for _ in range(FERPLUS_VOTERS - majority_votes[row]):
            votes[row, others[rng.integers(len(others))]] += 1
    return votes


# Lookup of "<value> " as bytes padded with zeros, for building pixel strings without Python loops.
_PIXEL_BYTES = np.zeros((256, 4), dtype=np.uint8)
for _value in range(256):
    _text = f"{_value} ".encode("ascii")
    _PIXEL_BYTES[_value, :len(_text)] = np.frombuffer(_text, dtype=np.uint8)


def _pixels_text(face: np.ndarray) -> str:
    """The FER2013 pixels field: space-separated values, row-major."""
    raw = _PIXEL_BYTES[face.reshape(-1)].reshape(-1)
    return raw[raw != 0].tobytes()[:-1].decode("ascii")


# ---------------------------------------------------------------------------------------------
# CK+48: CK+48/<emotion>/S005_001_00000011.png, the last frames of each posed sequence, 48x48.

CKPLUS_DIR = "CK+48"
# Sequences per folder in the real CK+48 (981 images = 327 sequences x 3 frames).
CKPLUS_SEQUENCES = {"anger": 45, "contempt": 18, "disgust": 59, "fear": 25, "happy": 69,
                    "sadness": 28, "surprise": 83}
CKPLUS_FRAMES = 3
CKPLUS_SEQUENCES_PER_SUBJECT = 2.66  # 327 labelled sequences from 123 subjects


def write_ckplus(out_dir, sequences: int, seed, progress: Progress = None) -> dict:
    """Write `sequences` posed sequences (CKPLUS_FRAMES frames each) in CK+48's layout, classes in
    the real proportions. Contempt, which has no FER2013 class, is drawn too (a one-sided smirk),
    for ingestion to exclude and report."""
    rng = np.random.default_rng([*_seed_words(seed), _STREAMS["ckplus"]])
    folders = list(CKPLUS_FOLDERS)
    per_folder = _apportion(sequences, [CKPLUS_SEQUENCES[f] for f in folders])
    n_subjects = max(max(per_folder), int(np.ceil(sequences / CKPLUS_SEQUENCES_PER_SUBJECT)))
    subjects = np.sort(rng.choice(np.arange(5, 1000), size=n_subjects, replace=False))
    next_sequence = Counter()
    frames = []  # (folder, subject, file name)
    for folder, count in zip(folders, per_folder):
        # A subject poses each expression at most once, so pick distinct subjects per folder.
        for subject in np.sort(rng.choice(subjects, size=count, replace=False)):
            next_sequence[subject] += 1
            last = int(rng.integers(10, 40))
            for frame in range(last - CKPLUS_FRAMES + 1, last + 1):
                frames.append((folder, int(subject),
                               f"S{subject:03d}_{next_sequence[subject]:03d}_{frame:08d}.png"))
    labels = np.array([CONTEMPT if f == "contempt" else EMOTIONS.index(CKPLUS_FOLDERS[f])
                       for f, _, _ in frames], dtype=np.int64)
    faces = render_faces(labels, seed=[*_seed_words(seed), _STREAMS["ckplus"], 1],
                         subject_ids=np.array([_SUBJECT_BASE["ckplus"] + s for _, s, _ in frames]),
                         nuisance=_LAB_NUISANCE)
    root = Path(out_dir) / CKPLUS_DIR
    with publish.staged(root) as tmp:
        for folder in folders:
            (tmp / folder).mkdir(parents=True)
        for i, (face, (folder, _, name)) in enumerate(zip(faces, frames)):
            Image.fromarray(face, mode="L").save(tmp / folder / name, format="PNG")
            if progress and (i + 1) % 500 == 0:
                progress("ckplus", i + 1, len(frames))
    if progress:
        progress("ckplus", len(frames), len(frames))
    return {"path": str(root), "images": len(frames), "sequences": sequences,
            "subjects": len({s for _, s, _ in frames}),
            "by_class": _count([f for f, _, _ in frames], folders)}


# ---------------------------------------------------------------------------------------------
# The original CK+ distribution: cohn-kanade-images/S005/001/S005_001_00000001.png ... (640x490
# frames of one posed sequence, neutral to peak) and the peak frame's label in
# Emotion/S005/001/S005_001_00000011_emotion.txt (one float: a CK+ code).

CKPLUS_ORIGINAL_DIR = "CK+"
CKPLUS_FRAME_SIZE = (640, 490)  # width, height
CKPLUS_FACE_SIDE = (280, 340)   # the face tile's side in a frame, pixels (CK+'s faces fill about half the height)
CKPLUS_UNLABELLED_SHARE = 0.45  # CK+ labels 327 of its 593 sequences
CKPLUS_SEQUENCE_FRAMES = (8, 16)
_CKPLUS_CODE_OF = {name: code for code, name in CKPLUS_CODES.items()}


def write_ckplus_original(out_dir, sequences: int, seed, progress: Progress = None) -> dict:
    """Write `sequences` labelled posed sequences (plus unlabelled ones, as CK+ has) in the original
    CK+ layout. Each sequence is one synthetic person in one pose, the expression growing from
    neutral (frame 1) to its peak (the last, labelled frame), in a 640x490 frame: the face stage has
    to find the face. Classes in CK+48's proportions; contempt is drawn too, for ingestion to
    exclude."""
    from deep_emotion.demo_data import scenes  # pylint: disable=import-outside-toplevel

    rng = np.random.default_rng([*_seed_words(seed), _STREAMS["ckplus-original"]])
    folders = list(CKPLUS_FOLDERS)
    per_folder = _apportion(sequences, [CKPLUS_SEQUENCES[f] for f in folders])
    unlabelled = int(round(sequences * CKPLUS_UNLABELLED_SHARE / (1 - CKPLUS_UNLABELLED_SHARE)))
    n_subjects = max(max(per_folder), int(np.ceil((sequences + unlabelled) / CKPLUS_SEQUENCES_PER_SUBJECT)))
    subjects = np.sort(rng.choice(np.arange(5, 1000), size=n_subjects, replace=False))
    plan = []  # (subject, sequence number, folder name or None for unlabelled)
    next_sequence = Counter()
    for folder, count in zip(folders, per_folder):
        for subject in np.sort(rng.choice(subjects, size=count, replace=False)):
            next_sequence[subject] += 1
            plan.append((int(subject), next_sequence[subject], folder))
    for subject in rng.choice(subjects, size=unlabelled):
        next_sequence[subject] += 1
        plan.append((int(subject), next_sequence[subject], str(rng.choice(folders))))
    width, height = CKPLUS_FRAME_SIZE
    root = Path(out_dir) / CKPLUS_ORIGINAL_DIR
    labelled = set(range(sequences))
    by_class, frames_written = Counter(), 0
    with publish.staged(root) as tmp:
        for index, (subject, number, folder) in enumerate(plan):
            label = CONTEMPT if folder == "contempt" else EMOTIONS.index(CKPLUS_FOLDERS[folder])
            count = int(rng.integers(*CKPLUS_SEQUENCE_FRAMES))
            side = int(rng.integers(*CKPLUS_FACE_SIDE))
            faces = np.concatenate([render_faces(  # one person, one pose: only the expression moves
                [label], seed=[*_seed_words(seed), _STREAMS["ckplus-original"], index], size=side,
                subject_ids=[_SUBJECT_BASE["ckplus"] + subject], nuisance=_LAB_NUISANCE * 0.5,
                expression_scale=[k / (count - 1)]) for k in range(count)])
            frame_rng = np.random.default_rng([*_seed_words(seed), _STREAMS["ckplus-original"], index, 1])
            base = scenes.background(height, width, float(np.median(faces[0][0])), frame_rng)
            x = int(round(width / 2 - side / 2 + frame_rng.uniform(-40, 40)))
            y = int(round(height / 2 - side / 2 + frame_rng.uniform(-30, 20)))
            folder_path = tmp / "cohn-kanade-images" / f"S{subject:03d}" / f"{number:03d}"
            folder_path.mkdir(parents=True)
            for k, face in enumerate(faces, 1):
                frame = base.copy()
                scenes.place(frame, face.astype(np.float32), x, y)
                Image.fromarray(np.clip(np.round(frame), 0, 255).astype(np.uint8), mode="L").save(
                    folder_path / f"S{subject:03d}_{number:03d}_{k:08d}.png", format="PNG")
            frames_written += count
            if index in labelled:
                label_path = tmp / "Emotion" / f"S{subject:03d}" / f"{number:03d}"
                label_path.mkdir(parents=True, exist_ok=True)
                (label_path / f"S{subject:03d}_{number:03d}_{count:08d}_emotion.txt").write_text(
                    f"   {float(_CKPLUS_CODE_OF[CKPLUS_FOLDERS[folder]]):.7e}\n", encoding="ascii")
                by_class[folder] += 1
            if progress:
                progress("ckplus-original", index + 1, len(plan))
    return {"path": str(root), "images": frames_written, "sequences": len(plan), "labelled_sequences": sequences,
            "subjects": len({s for s, _, _ in plan}), "by_class": {f: by_class.get(f, 0) for f in folders}}


# ---------------------------------------------------------------------------------------------
# JAFFE: jaffe/KA.AN1.39.tiff (poser.expression+index.serial), 213 grayscale 256x256 TIFFs.

JAFFE_DIR = "jaffe"
JAFFE_POSERS = ("KA", "KL", "KM", "KR", "MK", "NA", "NM", "TM", "UY", "YM")
JAFFE_IMAGES = {"AN": 30, "DI": 29, "FE": 32, "HA": 31, "NE": 30, "SA": 31, "SU": 30}  # 213
JAFFE_SIZE = 256


def write_jaffe(out_dir, seed, progress: Progress = None) -> dict:
    """Write the 213 JAFFE images: 10 posers, each expression 2-4 times per poser, with the real
    per-expression counts; serial numbers run through the set in posing order."""
    rng = np.random.default_rng([*_seed_words(seed), _STREAMS["jaffe"]])
    per_poser = {code: np.full(len(JAFFE_POSERS), total // len(JAFFE_POSERS)) for code, total
                 in JAFFE_IMAGES.items()}
    for code, total in JAFFE_IMAGES.items():  # spread the remainder (+ or -) over random posers
        extra = total - per_poser[code].sum()
        chosen = rng.choice(len(JAFFE_POSERS), size=abs(extra), replace=False)
        per_poser[code][chosen] += np.sign(extra)
    images, serial = [], 0  # (poser index, code, file name)
    for p, poser in enumerate(JAFFE_POSERS):
        for code in rng.permutation(list(JAFFE_CODES)):
            for index in range(1, per_poser[code][p] + 1):
                serial += 1
                images.append((p, code, f"{poser}.{code}{index}.{serial}.tiff"))
    faces = render_faces(np.array([EMOTIONS.index(JAFFE_CODES[c]) for _, c, _ in images]),
                         seed=[*_seed_words(seed), _STREAMS["jaffe"], 1], size=JAFFE_SIZE,
                         subject_ids=np.array([_SUBJECT_BASE["jaffe"] + p for p, _, _ in images]),
                         nuisance=_LAB_NUISANCE)
    root = Path(out_dir) / JAFFE_DIR
    with publish.staged(root) as tmp:
        tmp.mkdir(parents=True)
        for face, (_, _, name) in zip(faces, images):
            Image.fromarray(face, mode="L").save(tmp / name, format="TIFF")
    if progress:
        progress("jaffe", len(images), len(images))
    return {"path": str(root), "images": len(images), "subjects": len(JAFFE_POSERS),
            "by_class": _count([c for _, c, _ in images], JAFFE_CODES)}


# ---------------------------------------------------------------------------------------------
# FERG-DB: FERG_DB_256/<character>/<character>_<emotion>/<character>_<emotion>_<n>.png, RGBA.

FERG_DIR = "FERG_DB_256"
FERG_CHARACTERS = ("aia", "bonnie", "jules", "malcolm", "mery", "ray")
FERG_SIZE = 256
# Each character's colouring (RGB, scaled by the face's brightness): the files are colour
# cartoons, so ingestion's conversion to grayscale is exercised.
_FERG_TINTS = {"aia": (1.0, 0.85, 0.75), "bonnie": (0.95, 0.8, 0.85), "jules": (0.85, 0.9, 1.0),
               "malcolm": (0.9, 1.0, 0.85), "mery": (1.0, 0.95, 0.7), "ray": (0.8, 0.85, 0.95)}


def write_ferg(out_dir, per_class: int, seed, progress: Progress = None) -> dict:
    """Write `per_class` images for each character and expression as 256x256 RGBA PNGs (opaque).
    File numbers are increasing but not contiguous, as in the real set."""
    rng = np.random.default_rng([*_seed_words(seed), _STREAMS["ferg"]])
    images = []  # (character index, emotion, relative path)
    for c, character in enumerate(FERG_CHARACTERS):
        for emotion in FERG_EXPRESSIONS:
            numbers = np.sort(rng.choice(np.arange(1, 10 * per_class + 1), per_class, replace=False))
            folder = f"{character}/{character}_{emotion}"
            images += [(c, emotion, f"{folder}/{character}_{emotion}_{k}.png") for k in numbers]
    labels = np.array([EMOTIONS.index(FERG_EXPRESSIONS[e]) for _, e, _ in images])
    subject_ids = np.array([_SUBJECT_BASE["ferg"] + c for c, _, _ in images])
    root = Path(out_dir) / FERG_DIR
    with publish.staged(root) as tmp:
        for start in range(0, len(images), _BLOCK // 4):
            block = slice(start, start + _BLOCK // 4)
            faces = render_faces(labels[block], seed=[*_seed_words(seed), _STREAMS["ferg"], 1, start],
                                 size=FERG_SIZE, subject_ids=subject_ids[block],
                                 nuisance=_RENDER_NUISANCE)
            for face, (c, _, relative) in zip(faces, images[block]):
                path = tmp / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(_tint(face, _FERG_TINTS[FERG_CHARACTERS[c]]), mode="RGBA").save(
                    path, format="PNG", compress_level=1)  # 4x faster than the default 6
            if progress:
                progress("ferg", min(len(images), start + _BLOCK // 4), len(images))
    return {"path": str(root), "images": len(images), "subjects": len(FERG_CHARACTERS),
            "by_class": _count([e for _, e, _ in images], FERG_EXPRESSIONS)}


def _tint(face: np.ndarray, rgb) -> np.ndarray:
    """Colour a grayscale face so that its ITU-R 601 luma stays (about) the grayscale value."""
    rgb = np.asarray(rgb, dtype=np.float32)
    rgb = rgb / (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])
    colour = np.clip(face[..., None].astype(np.float32) * rgb + 0.5, 0, 255).astype(np.uint8)
    return np.concatenate([colour, np.full(face.shape + (1,), 255, np.uint8)], axis=-1)


# ---------------------------------------------------------------------------------------------
# Shared helpers.

def _seed_words(seed) -> list:
    """The seed as a list of non-negative ints (SeedSequence entropy), for deriving streams."""
    words = [seed] if np.isscalar(seed) else list(seed)
    if any(int(w) < 0 for w in words):
        raise ValueError(f"seed must be non-negative, got {seed}")
    return [int(w) for w in words]


def _apportion(total: int, weights) -> np.ndarray:
    """Split `total` into integer parts proportional to `weights` (largest remainder)."""
    weights = np.asarray(weights, dtype=np.float64)
    exact = total * weights / weights.sum()
    parts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - parts), kind="stable")
    parts[order[:total - parts.sum()]] += 1
    return parts


def _count(names, vocabulary) -> dict:
    """Counts of names in vocabulary order, zero counts included."""
    counts = Counter(names)
    return {name: counts.get(name, 0) for name in vocabulary}


def write_synthetic_marker(out_dir, n: int, seed: int, formats) -> str:
    """The file that tells ingestion (and so every model card) that these faces are synthetic."""
    path = Path(out_dir) / SYNTHETIC_MARKER
    with publish.staged(path) as tmp:
        tmp.write_text(f"Synthetic faces written by `deep-emotion demo-data --n {n} --seed {seed} --formats "
                       f"{','.join(formats)}`: drawn, not photographed; no real person is in this data root.\n",
                       encoding="ascii")
    return str(path)
