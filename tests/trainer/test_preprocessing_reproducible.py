"""Transform's normalisation is the same, bit for bit, however Beam batches and orders the rows.

The z-score's mean and variance are merged from per-batch partial results in whatever order the
runner delivers them; accumulated in float32 their last bits depended on it, so two runs of one
pipeline on the same data trained from slightly different inputs and ended a point of accuracy
apart (make demo: 0.9657 or 0.9525 test accuracy).
"""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from contract import data as dc
from trainer.preprocessing import IMAGE_KEY, preprocessing_fn

ROWS = 600
FEATURE_SPEC = {dc.PIXELS: tf.io.FixedLenFeature([dc.IMAGE_SIZE * dc.IMAGE_SIZE], tf.int64),
                dc.LABEL: tf.io.FixedLenFeature([1], tf.int64)}


def _transform_of(rows, batch_size, temp_dir):
    """The transform graph analysed over rows (in their order, desired_batch_size rows a batch),
    applied to a fixed probe of every pixel level."""
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(FEATURE_SPEC))
    with tft_beam.Context(temp_dir=str(temp_dir), desired_batch_size=batch_size, force_tf_compat_v1=False):
        transform_fn = (rows, metadata) | tft_beam.AnalyzeDataset(preprocessing_fn)
        transform_fn | tft_beam.WriteTransformFn(str(temp_dir / "out"))
    layer = tft.TFTransformOutput(str(temp_dir / "out")).transform_features_layer()
    probe = np.resize(np.arange(256, dtype=np.int64), dc.IMAGE_SIZE * dc.IMAGE_SIZE)
    return layer({dc.PIXELS: tf.constant(probe[None], tf.int64), dc.LABEL: tf.constant([[0]], tf.int64)})[IMAGE_KEY].numpy()


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(7)
    # Faces of different exposure: means from dark to bright, so partial means differ widely.
    levels = [np.clip(rng.normal(rng.uniform(40, 210), 50, dc.IMAGE_SIZE * dc.IMAGE_SIZE), 0, 255) for _ in range(ROWS)]
    return [{dc.PIXELS: level.astype(np.int64), dc.LABEL: np.array([i % dc.NUM_CLASSES])} for i, level in enumerate(levels)]


def test_the_normalisation_does_not_depend_on_row_order_or_batching(rows, tmp_path):
    first = _transform_of(rows, 7, tmp_path / "a")
    second = _transform_of(rows[::-1], 64, tmp_path / "b")
    third = _transform_of(rows[1::2] + rows[::2], 1, tmp_path / "c")
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, third)


def test_the_normalisation_is_the_z_score_of_the_training_pixels_to_the_last_bit(rows, tmp_path):
    pixels = np.concatenate([r[dc.PIXELS] for r in rows]).astype(np.float64)
    probe = np.resize(np.arange(256, dtype=np.float64), dc.IMAGE_SIZE * dc.IMAGE_SIZE)
    mean, std = np.float32(pixels.mean()), np.float32(pixels.std())  # float64 statistics, rounded once
    expected = (probe.astype(np.float32) - mean) / std  # then float32, as served
    result = _transform_of(rows, 16, tmp_path)
    assert result.shape == (1, dc.IMAGE_SIZE, dc.IMAGE_SIZE, 1) and result.dtype == np.float32
    np.testing.assert_array_equal(result.ravel(), expected)
