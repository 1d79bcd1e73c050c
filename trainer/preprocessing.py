"""Transform's preprocessing_fn: canonical pixels -> the model's normalised 48x48x1 image.

Normalisation is a global z-score whose mean and standard deviation TFT computes over the training
split (tft analyzers) rather than a fixed /255: the sources differ in exposure (lab photographs,
web crops, rendered cartoons), centring at the data's own mean keeps Adam's early steps at
lr 0.005 well scaled, and the statistics are baked into the transform graph, so serving applies
exactly what training saw. A retrain on new data re-derives them; the values are recorded in the
transform graph artifact for inspection.

The mean and variance are accumulated in float64 and rounded to float32 once (`z_score`), so they
are the same bits however Beam batches and orders the rows: in float32 (tft.scale_to_z_score's
default) their last bits followed the runner's merge order, and two runs of one pipeline on the same
data trained from slightly different inputs and ended up to a point of accuracy apart.
"""
import tensorflow as tf
import tensorflow_transform as tft

from contract import data as dc

IMAGE_KEY = "image"  # the model's single input


def label_shares(label: tf.Tensor, shares) -> tf.Tensor:
    """float32 [B, 7]: the example's label distribution where it has one (FER+ votes, a sparse
    list: the feature is optional), the one-hot of its label elsewhere."""
    one_hot = tf.one_hot(label, dc.NUM_CLASSES)
    if shares is None:
        return one_hot
    dense = tf.sparse.to_dense(tf.sparse.reset_shape(shares, tf.stack([tf.shape(label, tf.int64)[0],
                                                                         dc.NUM_CLASSES])))
    return tf.where(tf.reduce_sum(dense, axis=1, keepdims=True) > 0, dense, one_hot)


def z_score(image: tf.Tensor) -> tf.Tensor:
    """(image - mean) / std over every pixel of the analysed split, as tft.scale_to_z_score computes it
    (float32; centred only when the std is 0), with the statistics from float64 analyzers: integers
    0-255 sum without rounding there, so only the last float64 bits can follow the merge order, and
    those vanish in the rounding to float32. The graph that is served stays float32 (TFLite too)."""
    wide = tf.cast(image, tf.float64)
    mean = tf.cast(tft.mean(wide, output_dtype=tf.float64), tf.float32)
    std = tf.cast(tf.sqrt(tft.var(wide, output_dtype=tf.float64)), tf.float32)
    centred = image - mean
    return tf.where(tf.not_equal(std, 0.0), centred / tf.where(tf.not_equal(std, 0.0), std, 1.0), centred)


def preprocessing_fn(inputs):
    """pixels int64 [B, 2304] -> image float32 [B, 48, 48, 1] (z-scored); emotion passes through as
    [B]; emotion_shares float32 [B, 7] (label_shares)."""
    pixels = tf.cast(inputs[dc.PIXELS], tf.float32)
    image = tf.reshape(pixels, [-1, dc.IMAGE_SIZE, dc.IMAGE_SIZE, 1])
    label = tf.reshape(inputs[dc.LABEL], [-1])  # [B, 1] -> [B]
    return {
        IMAGE_KEY: z_score(image),
        dc.LABEL: label,
        dc.LABEL_SHARES: label_shares(label, inputs.get(dc.LABEL_SHARES)),
    }
