"""Spatial transformer: affine grid and bilinear sampler (Jaderberg et al. 2015), NHWC, in TensorFlow.

Why our own: the public `stn` package (2018) is up to a pixel off at theta = identity, and
TensorFlow has no affine_grid/grid_sample pair. This one returns its input *exactly* at the
identity, works eagerly, in tf.function, under XLA and on GPU, for any batch size, and is
differentiable with respect to both the image and theta.

Convention (PyTorch's `affine_grid`/`grid_sample` with align_corners=False, zero padding):
- theta is (B, 6) or (B, 2, 3), row-major [[a, b, c], [d, e, f]], and maps each *output*
  position (x_t, y_t) to the *input* position it samples: x_s = a x_t + b y_t + c,
  y_s = d x_t + e y_t + f.
- Positions are normalised: x = -1 is the left edge of the leftmost pixel and x = +1 the right
  edge of the rightmost one (not their centres); likewise y, top to bottom. So c = 2k / width
  samples k pixels to the right: the content moves k pixels *left*.
- Samples outside the input read zeros.

Exactness: theta is turned into pixel units once per image (`pixel_affine`), so the identity,
flips and quarter turns land exactly on pixel centres, with interpolation weights of exactly 1
and 0 instead of 0.99999994 and 6e-8.
"""
import tensorflow as tf
import tf_keras


def pixel_affine(theta, output_size, input_size=None):
    """theta in pixel units: [B, 2, 3] mapping an output pixel (column, row, 1) to the input
    pixel coordinates (x, y) it samples; pixel centres at integers (0 .. size-1).

    From x_s = (a * 2u/Wo + b * 2v/Ho + c) * Wi/2 + (Wi - 1)/2 with u = column - (Wo - 1)/2,
    v = row - (Ho - 1)/2, and likewise for y. For the identity (and flips, quarter turns) every
    term is exact in float32.
    """
    out_h, out_w = output_size
    in_h, in_w = input_size or output_size
    theta = tf.reshape(tf.cast(theta, tf.float32), [-1, 2, 3])
    scale = tf.constant([[in_w / out_w, in_w / out_h, in_w / 2], [in_h / out_w, in_h / out_h, in_h / 2]])
    linear = theta * scale
    centre_out = tf.constant([(out_w - 1) / 2, (out_h - 1) / 2, -1.0])
    # Constant column: c * Wi/2 + (Wi - 1)/2 - a' (Wo - 1)/2 - b' (Ho - 1)/2.
    offset = tf.constant([[(in_w - 1) / 2], [(in_h - 1) / 2]]) - tf.reduce_sum(linear * centre_out, -1, keepdims=True)
    return tf.concat([linear[:, :, :2], offset], axis=2)


def _source_coordinates(theta, output_size, input_size):
    """Input pixel coordinates x, y, each [B, Ho, Wo], that the output pixels sample.

    Element-wise (no matmul, which GPUs may run in TF32; no reduction over a tiny axis, which
    is slow on CPU).
    """
    out_h, out_w = output_size
    a, b, c, d, e, f = tf.unstack(tf.reshape(pixel_affine(theta, output_size, input_size), [-1, 6, 1, 1]), axis=1)
    column = tf.range(out_w, dtype=tf.float32)[None, None, :]
    row = tf.range(out_h, dtype=tf.float32)[None, :, None]
    return a * column + b * row + c, d * column + e * row + f


def _sample(image, x, y):
    """Bilinear sample of image [B, H, W, C] at pixel coordinates x, y [B, Ho, Wo]; zeros outside.

    Gathers the four neighbours from a flat copy of the batch with a zero border (1 pixel
    top/left, 2 bottom/right). Coordinates are first clipped to [-1, size]: beyond that the
    bilinear value is 0 anyway, and every neighbour then lands inside the bordered copy.
    Interpolating as a + w (b - a) keeps a weight of exactly 0 from touching the value.
    """
    height, width, channels = image.shape[1:]
    if None in (height, width, channels):
        raise ValueError(f"spatial transformer: the image needs a static H, W, C, got {image.shape}")
    row_length = width + 3
    flat = tf.reshape(tf.pad(image, [[0, 0], [1, 2], [1, 2], [0, 0]]), [-1, channels])

    def corner_and_fraction(coordinate, size):
        # A non-finite coordinate (diverged theta) would become a wild index: send it outside.
        coordinate = tf.clip_by_value(tf.where(tf.math.is_finite(coordinate), coordinate, -1.0), -1.0, size)
        corner = tf.floor(coordinate)
        # The gradient with respect to theta flows through the fraction.
        return tf.cast(corner, tf.int32) + 1, tf.cast(coordinate - corner, image.dtype)[..., None]

    column, wx = corner_and_fraction(x, width)
    row, wy = corner_and_fraction(y, height)
    top_left = row * row_length + column + tf.range(tf.shape(image)[0])[:, None, None] * ((height + 3) * row_length)
    a, b = tf.gather(flat, top_left), tf.gather(flat, top_left + 1)
    c, d = tf.gather(flat, top_left + row_length), tf.gather(flat, top_left + (row_length + 1))
    top = a + wx * (b - a)
    bottom = c + wx * (d - c)
    return top + wy * (bottom - top)


def affine_grid(theta, output_size, input_size=None):
    """Where each output pixel samples the input: [B, Ho, Wo, 2] as (x, y) in *input pixel* units.

    theta is in normalised coordinates (module docstring); the grid is returned in pixels
    (centres at integers) because that is what `bilinear_sample` needs and it keeps the identity
    exact. For PyTorch's normalised grid: (grid + 0.5) / (size / 2) - 1.
    """
    return tf.stack(_source_coordinates(theta, output_size, input_size or output_size), axis=-1)


def bilinear_sample(image, grid):
    """Sample image [B, H, W, C] at grid [B, Ho, Wo, 2] (x, y pixel coordinates); zeros outside."""
    return _sample(image, grid[..., 0], grid[..., 1])


def spatial_transform(image, theta, output_size=None):
    """Warp image [B, H, W, C] by the affine theta ((B, 6) or (B, 2, 3), normalised coordinates)."""
    input_size = tuple(image.shape[1:3])
    return _sample(image, *_source_coordinates(theta, output_size or input_size, input_size))


def identity_theta(batch_size=1):
    """The identity transform as (batch_size, 6) float32."""
    return tf.tile(tf.constant([[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]]), [batch_size, 1])


@tf_keras.utils.register_keras_serializable(package="deep_emotion")
class SpatialTransformer(tf_keras.layers.Layer):
    """Keras layer: `SpatialTransformer()([image, theta])` -> image warped by theta.

    Runs in float32 whatever the model's policy (coordinates need the precision; the maps are
    small), so under mixed precision its inputs are cast up and its output is float32.
    """

    def __init__(self, output_size=None, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.output_size = tuple(output_size) if output_size else None

    def call(self, inputs):
        image, theta = inputs
        return spatial_transform(image, theta, self.output_size)

    def compute_output_shape(self, input_shape):
        image_shape = tf.TensorShape(input_shape[0])
        height, width = self.output_size or image_shape[1:3]
        return tf.TensorShape([image_shape[0], height, width, image_shape[3]])

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)
        config["output_size"] = list(self.output_size) if self.output_size else None
        return config
