"""One pass over ExampleGen's TFRecords: class counts per split and source, pixel-intensity
histograms, and a few sample faces per class (what TFDV's per-feature statistics cannot show)."""
import glob
import os
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np
import pandas as pd

from contract import data as dc


@dataclass
class Face:
    pixels: np.ndarray   # uint8 [48, 48]
    emotion: int
    source: str
    image_id: str


@dataclass
class ExamplesOverview:
    counts: pd.DataFrame                    # index (split, source), columns EMOTIONS + "total"
    pixel_histograms: Dict[str, np.ndarray]  # "split:<s>" / "source:<s>" -> 256 counts of intensity 0..255
    samples: Dict[int, List[Face]] = field(default_factory=dict)  # emotion id -> faces (train split)


def split_files(examples_uri: str, split: str) -> List[str]:
    files = sorted(glob.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    if not files:
        raise FileNotFoundError(f"{examples_uri}: no records for split '{split}' (Split-{split}/ is missing or empty)")
    return files


def read_faces(examples_uri: str, split: str,
               batch_size: int = 512) -> Iterator[Tuple[List[bytes], Dict[str, np.ndarray]]]:
    """(serialized examples, parsed features) batches of one split; pixels as uint8 [B, 48, 48]."""
    import tensorflow as tf

    spec = {dc.PIXELS: tf.io.FixedLenFeature([dc.NUM_PIXELS], tf.int64),
            dc.LABEL: tf.io.FixedLenFeature([], tf.int64),
            dc.SOURCE: tf.io.FixedLenFeature([], tf.string),
            dc.IMAGE_ID: tf.io.FixedLenFeature([], tf.string, default_value="")}
    dataset = tf.data.TFRecordDataset(split_files(examples_uri, split), compression_type="GZIP").batch(batch_size)
    for serialized in dataset:
        parsed = tf.io.parse_example(serialized, spec)
        yield list(serialized.numpy()), {
            dc.PIXELS: parsed[dc.PIXELS].numpy().astype(np.uint8).reshape(-1, dc.IMAGE_SIZE, dc.IMAGE_SIZE),
            dc.LABEL: parsed[dc.LABEL].numpy(),
            dc.SOURCE: parsed[dc.SOURCE].numpy().astype(str),
            dc.IMAGE_ID: parsed[dc.IMAGE_ID].numpy().astype(str),
        }


def face_cropped(examples_uri: str, split: str = "train", per_source: int = 3) -> List[Tuple[Face, List[float]]]:
    """A few examples per source that went through the face stage, with their face boxes."""
    import tensorflow as tf

    spec = {dc.PIXELS: tf.io.FixedLenFeature([dc.NUM_PIXELS], tf.int64), dc.LABEL: tf.io.FixedLenFeature([], tf.int64),
            dc.SOURCE: tf.io.FixedLenFeature([], tf.string), dc.IMAGE_ID: tf.io.FixedLenFeature([], tf.string),
            dc.FACE_BOX: tf.io.VarLenFeature(tf.float32)}
    chosen: Dict[str, list] = {}
    for serialized in tf.data.TFRecordDataset(split_files(examples_uri, split), compression_type="GZIP").batch(512):
        parsed = tf.io.parse_example(serialized, spec)
        boxes = tf.sparse.to_dense(parsed[dc.FACE_BOX]).numpy()
        for i in range(len(boxes)):
            if boxes.shape[1] < 4 or not boxes[i].any():
                continue
            source = parsed[dc.SOURCE][i].numpy().decode()
            kept = chosen.setdefault(source, [])
            if len(kept) < per_source:
                kept.append((Face(parsed[dc.PIXELS][i].numpy().astype(np.uint8).reshape(dc.IMAGE_SIZE, dc.IMAGE_SIZE),
                                  int(parsed[dc.LABEL][i]), source, parsed[dc.IMAGE_ID][i].numpy().decode()),
                             [float(v) for v in boxes[i][:4]]))
    return [item for source in sorted(chosen, key=_source_order) for item in chosen[source]]


def overview(examples_uri: str, splits: Sequence[str] = dc.SPLITS, samples_per_class: int = 8) -> ExamplesOverview:
    """Counts every example; samples come from the train split, taken in turn from each source."""
    splits = [s for s in splits if os.path.isdir(os.path.join(examples_uri, f"Split-{s}"))]
    rows = []
    histograms: Dict[str, np.ndarray] = {}
    candidates: Dict[Tuple[int, str], List[Face]] = {}
    for split in splits:
        counts: Dict[Tuple[str, int], int] = {}
        for _, batch in read_faces(examples_uri, split):
            for source, emotion in zip(batch[dc.SOURCE], batch[dc.LABEL]):
                counts[source, int(emotion)] = counts.get((source, int(emotion)), 0) + 1
            for source in np.unique(batch[dc.SOURCE]):
                per_source = np.bincount(batch[dc.PIXELS][batch[dc.SOURCE] == source].ravel(), minlength=256)
                histograms[f"source:{source}"] = histograms.get(f"source:{source}", 0) + per_source
            histograms[f"split:{split}"] = histograms.get(f"split:{split}", 0) + np.bincount(
                batch[dc.PIXELS].ravel(), minlength=256)
            if split == "train":
                for i, (emotion, source) in enumerate(zip(batch[dc.LABEL], batch[dc.SOURCE])):
                    kept = candidates.setdefault((int(emotion), source), [])
                    if len(kept) < samples_per_class:
                        kept.append(Face(batch[dc.PIXELS][i], int(emotion), source, batch[dc.IMAGE_ID][i]))
        for source in sorted({s for s, _ in counts}, key=_source_order):
            rows.append({"split": split, "source": source,
                         **{name: counts.get((source, e), 0) for e, name in enumerate(dc.EMOTIONS)}})
    table = pd.DataFrame(rows, columns=["split", "source", *dc.EMOTIONS]).set_index(["split", "source"])
    table["total"] = table.sum(axis=1)
    return ExamplesOverview(table, histograms, _round_robin(candidates, samples_per_class))


def _source_order(source: str):
    return (dc.SOURCES.index(source) if source in dc.SOURCES else len(dc.SOURCES), source)


def _round_robin(candidates: Dict[Tuple[int, str], List[Face]], k: int) -> Dict[int, List[Face]]:
    """Up to k faces per class, alternating between the sources that have the class."""
    samples = {}
    for emotion in range(dc.NUM_CLASSES):
        pools = [candidates[e, s] for e, s in sorted(candidates, key=lambda es: _source_order(es[1])) if e == emotion]
        picked = []
        for i in range(k):
            picked += [pool[i] for pool in pools if i < len(pool)]
        samples[emotion] = picked[:k]
    return samples


def totals_by_split(counts: pd.DataFrame) -> pd.DataFrame:
    """Classes per split, all sources together."""
    return counts.groupby(level="split", sort=False).sum()
