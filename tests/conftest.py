"""Shared fixtures: hand-made data roots, and the ExampleGen executor run on DirectRunner."""
import dataclasses
import glob
import json
import os
from typing import Any, Dict, List

import numpy as np
import pytest

from contract.data import IMAGE_ID, LABEL, LABEL_SHARES, NUM_PIXELS, PIXELS, SOURCE, SPLITS, SUBJECT


class DataRoot:
    """A data root under tmp_path, with writers for exact bytes, CSV rows and images."""

    def __init__(self, path: str, seed: int = 0):
        self.path = path
        self.rng = np.random.default_rng(seed)

    def pixels(self) -> np.ndarray:
        return self.rng.integers(0, 256, NUM_PIXELS)

    @staticmethod
    def text(pixels) -> str:
        return " ".join(str(int(v)) for v in pixels)

    def write(self, relative: str, data) -> str:
        path = os.path.join(self.path, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        return path

    def image(self, relative: str, size=(48, 48), mode="L", format=None) -> np.ndarray:
        """Saves a random image; returns its pixels."""
        from PIL import Image  # pylint: disable=import-outside-toplevel
        channels = {"L": (), "RGB": (3,), "RGBA": (4,)}[mode]
        array = self.rng.integers(0, 256, (size[1], size[0]) + channels, dtype=np.uint8)
        path = os.path.join(self.path, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(array, mode).save(path, format=format)
        return array


@dataclasses.dataclass
class Ingested:
    out: str
    summary: Dict[str, Any]
    examples: Dict[str, List[Dict[str, Any]]]   # split -> parsed canonical examples

    def counts(self, source=None, image_id_prefix="") -> Dict[str, Dict[int, int]]:
        """split -> emotion id -> number of examples (of one source / one file)."""
        counts = {split: {} for split in SPLITS}
        for split, examples in self.examples.items():
            for e in examples:
                if (source is None or e[SOURCE] == source) and e[IMAGE_ID].startswith(image_id_prefix):
                    counts[split][e[LABEL]] = counts[split].get(e[LABEL], 0) + 1
        return counts

    def quarantine(self) -> List[Dict[str, Any]]:
        with open(os.path.join(self.out, "quarantine.jsonl")) as f:
            return [json.loads(line) for line in f]


def read_examples(out: str) -> Dict[str, List[Dict[str, Any]]]:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    examples = {}
    for split in SPLITS:
        paths = sorted(glob.glob(os.path.join(out, f"Split-{split}", "*.gz")))
        examples[split] = []
        for record in tf.data.TFRecordDataset(paths, compression_type="GZIP"):
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            examples[split].append({
                PIXELS: np.array(feature[PIXELS].int64_list.value, dtype=np.int64),
                LABEL: feature[LABEL].int64_list.value[0],
                SOURCE: feature[SOURCE].bytes_list.value[0].decode(),
                IMAGE_ID: feature[IMAGE_ID].bytes_list.value[0].decode(),
                SUBJECT: feature[SUBJECT].bytes_list.value[0].decode(),
                LABEL_SHARES: np.array(feature[LABEL_SHARES].float_list.value) if LABEL_SHARES in feature else None,
                "features": sorted(feature.keys()),
            })
    return examples


@pytest.fixture(scope="session")
def new_data_root():
    """new_data_root(path) -> DataRoot, for fixtures wider than one test."""
    return DataRoot


@pytest.fixture
def data_root(tmp_path) -> DataRoot:
    return DataRoot(str(tmp_path / "data"))


@pytest.fixture(scope="session")
def ingest_into():
    """ingest_into(root, out, num_spans=1, **options) -> Ingested: runs the executor (DirectRunner) into
    out, over the latest num_spans span folders of root (the whole root when it has none)."""
    from components.example_gen.standalone import run_executor  # pylint: disable=import-outside-toplevel
    from components.example_gen.options import IngestOptions  # pylint: disable=import-outside-toplevel

    def run(root: str, out: str, num_spans: int = 1, **options) -> Ingested:
        os.makedirs(out, exist_ok=True)
        summary = run_executor(root, out, IngestOptions(**options), num_spans=num_spans)
        return Ingested(out, summary, read_examples(out))

    return run


@pytest.fixture
def ingest(tmp_path, ingest_into):
    """ingest(root, num_spans=1, **options) -> Ingested, each run into a fresh folder under tmp_path."""
    runs = []

    def run(root: str, num_spans: int = 1, **options) -> Ingested:
        runs.append(root)
        return ingest_into(root, str(tmp_path / f"out{len(runs)}"), num_spans=num_spans, **options)

    return run
