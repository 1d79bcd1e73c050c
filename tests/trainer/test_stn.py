"""The spatial transformer's grid and sampler: exact identity, PyTorch's convention, gradients."""
import math

import numpy as np
import pytest
import tensorflow as tf

from trainer.stn import (SpatialTransformer, affine_grid, bilinear_sample, identity_theta,
                         spatial_transform)

RNG = np.random.default_rng(0)


def reference_warp(image, theta, output_size):
    """PyTorch's affine_grid + grid_sample (align_corners=False, zero padding) in float64 NumPy."""
    batch, height, width, _ = image.shape
    out_h, out_w = output_size
    grid_x, grid_y = np.meshgrid((2 * np.arange(out_w) + 1) / out_w - 1, (2 * np.arange(out_h) + 1) / out_h - 1)
    out = np.zeros((batch, out_h, out_w, image.shape[3]))
    for b, t in enumerate(np.asarray(theta, np.float64).reshape(-1, 2, 3)):
        px = ((t[0, 0] * grid_x + t[0, 1] * grid_y + t[0, 2] + 1) * width - 1) / 2
        py = ((t[1, 0] * grid_x + t[1, 1] * grid_y + t[1, 2] + 1) * height - 1) / 2
        for xi in (np.floor(px), np.floor(px) + 1):
            for yi in (np.floor(py), np.floor(py) + 1):
                weight = (1 - np.abs(px - xi)) * (1 - np.abs(py - yi))
                inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
                taps = image[b, np.clip(yi, 0, height - 1).astype(int), np.clip(xi, 0, width - 1).astype(int)]
                out[b] += np.where(inside, weight, 0.0)[..., None] * taps
    return out


def run(mode, image, theta, output_size=None):
    fn = lambda i, t: spatial_transform(i, t, output_size)  # noqa: E731
    if mode == "tf.function":
        fn = tf.function(fn)
    elif mode == "xla":
        fn = tf.function(fn, jit_compile=True)
    return fn(tf.constant(image), tf.constant(theta)).numpy()


@pytest.mark.parametrize("mode", ["eager", "tf.function", "xla"])
@pytest.mark.parametrize("shape", [(1, 48, 48, 1), (5, 9, 9, 10), (3, 30, 40, 2), (0, 48, 48, 1)])
@pytest.mark.parametrize("theta_shape", [(6,), (2, 3)])
def test_identity_theta_returns_the_input_exactly(mode, shape, theta_shape):
    image = RNG.normal(size=shape).astype(np.float32)
    theta = identity_theta(shape[0]).numpy().reshape((shape[0],) + theta_shape)
    np.testing.assert_array_equal(run(mode, image, theta), image)


@pytest.mark.parametrize("mode", ["eager", "xla"])
def test_flips_and_quarter_turn_move_pixels_exactly(mode):
    image = RNG.normal(size=(2, 48, 48, 3)).astype(np.float32)
    mirror = np.tile([[-1.0, 0, 0, 0, 1, 0]], (2, 1)).astype(np.float32)
    upside_down = np.tile([[1.0, 0, 0, 0, -1, 0]], (2, 1)).astype(np.float32)
    quarter_turn = np.tile([[0.0, -1, 0, 1, 0, 0]], (2, 1)).astype(np.float32)  # 90 degrees
    np.testing.assert_array_equal(run(mode, image, mirror), image[:, :, ::-1])
    np.testing.assert_array_equal(run(mode, image, upside_down), image[:, ::-1])
    # Samples x_s = -y_t, y_s = x_t: the picture turns counter-clockwise on screen (np.rot90).
    np.testing.assert_array_equal(run(mode, image, quarter_turn), np.rot90(image, k=1, axes=(1, 2)))


def test_a_translation_moves_a_dot_where_the_convention_says():
    image = np.zeros((1, 48, 48, 1), np.float32)
    image[0, 20, 30] = 1.0  # row 20, column 30
    # c = 2k/W samples k pixels to the right, so the content moves k pixels left; f likewise up.
    theta = np.array([[1.0, 0, 2 * 5 / 48, 0, 1, 2 * -4 / 48]], np.float32)
    out = run("eager", image, theta)[0, ..., 0]
    assert np.unravel_index(out.argmax(), out.shape) == (24, 25)
    assert out[24, 25] == pytest.approx(1.0, abs=1e-5) and out.sum() == pytest.approx(1.0, abs=1e-5)


def test_pixels_shifted_in_from_outside_are_zero():
    image = RNG.normal(size=(1, 48, 48, 1)).astype(np.float32) + 10.0
    out = run("eager", image, np.array([[1.0, 0, 2 * 3 / 48, 0, 1, 0]], np.float32))
    np.testing.assert_allclose(out[:, :, :45], image[:, :, 3:], atol=1e-5)
    np.testing.assert_array_equal(out[:, :, 45:], 0.0)


@pytest.mark.parametrize("mode", ["eager", "xla"])
@pytest.mark.parametrize("image_shape,output_size", [((4, 48, 48, 1), None), ((4, 9, 9, 10), None),
                                                     ((4, 30, 40, 2), (20, 24))])
def test_matches_pytorch_affine_grid_and_grid_sample(mode, image_shape, output_size):
    image = RNG.normal(size=image_shape).astype(np.float32)
    angle = RNG.uniform(-0.6, 0.6, size=4)
    scale = RNG.uniform(0.7, 1.3, size=(4, 1))
    theta = np.stack([np.cos(angle), -np.sin(angle), RNG.uniform(-0.3, 0.3, 4),
                      np.sin(angle), np.cos(angle), RNG.uniform(-0.3, 0.3, 4)], axis=1)
    theta[:, [0, 1, 3, 4]] *= scale
    theta = theta.astype(np.float32)
    expected = reference_warp(image, theta, output_size or image_shape[1:3])
    np.testing.assert_allclose(run(mode, image, theta, output_size), expected, atol=2e-5)


def test_grid_and_sampler_compose_to_the_transform():
    image = RNG.normal(size=(2, 12, 16, 3)).astype(np.float32)
    theta = np.array([[0.9, 0.1, 0.05, -0.1, 1.1, -0.2]] * 2, np.float32)
    grid = affine_grid(theta, (12, 16))
    assert grid.shape == (2, 12, 16, 2)
    np.testing.assert_array_equal(bilinear_sample(image, grid), spatial_transform(image, theta))
    np.testing.assert_array_equal(affine_grid(identity_theta(1), (2, 3))[0, ..., 0], [[0, 1, 2], [0, 1, 2]])


def test_gradient_with_respect_to_theta_matches_finite_differences():
    yy, xx = np.mgrid[0:48, 0:48]
    blob = np.exp(-((xx - 26.0) ** 2 + (yy - 21.0) ** 2) / 60.0).astype(np.float32)[None, :, :, None]
    weights = tf.constant(RNG.normal(size=(1, 48, 48, 1)).astype(np.float32))
    theta0 = np.array([[0.95, 0.08, 0.04, -0.06, 1.03, -0.02]], np.float64)

    def loss(theta):
        return tf.reduce_sum(spatial_transform(blob, tf.cast(theta, tf.float32)) * weights)

    theta = tf.Variable(theta0.astype(np.float32))
    with tf.GradientTape() as tape:
        value = loss(theta)
    analytic = tape.gradient(value, theta).numpy()[0]
    eps = 1e-3
    numeric = [(loss(theta0 + eps * np.eye(6)[i]) - loss(theta0 - eps * np.eye(6)[i])).numpy() / (2 * eps)
               for i in range(6)]
    assert np.all(np.abs(analytic) > 1e-3)
    np.testing.assert_allclose(analytic, numeric, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("mode", ["eager", "xla"])
def test_gradient_with_respect_to_the_image_is_the_sampling_transposed(mode):
    image = tf.constant(RNG.normal(size=(2, 9, 9, 10)).astype(np.float32))
    weights = tf.constant(RNG.normal(size=(2, 9, 9, 10)).astype(np.float32))
    mirror = tf.constant([[-1.0, 0, 0, 0, 1, 0]] * 2)

    def gradient(image):
        with tf.GradientTape() as tape:
            tape.watch(image)
            value = tf.reduce_sum(spatial_transform(image, mirror) * weights)
        return tape.gradient(value, image)

    fn = tf.function(gradient, jit_compile=True) if mode == "xla" else gradient
    np.testing.assert_array_equal(fn(image).numpy(), weights.numpy()[:, :, ::-1])


def test_a_non_finite_theta_samples_zeros_instead_of_failing():
    image = RNG.normal(size=(2, 48, 48, 1)).astype(np.float32)
    theta = np.array([[np.nan, 0, 0, 0, 1, 0], [1, 0, np.inf, 0, 1, 0]], np.float32)
    np.testing.assert_array_equal(run("eager", image, theta), 0.0)


def test_layer_config_round_trips_and_layer_resizes():
    layer = SpatialTransformer(output_size=(24, 24), name="st")
    clone = SpatialTransformer.from_config(layer.get_config())
    assert clone.output_size == (24, 24) and clone.name == "st"
    out = clone([tf.zeros([3, 48, 48, 2]), identity_theta(3)])
    assert out.shape == (3, 24, 24, 2) and out.dtype == tf.float32
    assert clone.compute_output_shape([(None, 48, 48, 2), (None, 6)]).as_list() == [None, 24, 24, 2]


def test_half_pixel_shift_averages_neighbours():
    """Coordinates are continuous: sampling half-way between two columns averages them."""
    image = np.tile(np.arange(48, dtype=np.float32), (1, 48, 1))[..., None]
    out = run("eager", image, np.array([[1.0, 0, 1 / 48, 0, 1, 0]], np.float32))
    np.testing.assert_allclose(out[0, :, :47, 0], image[0, :, :47, 0] + 0.5, atol=1e-5)
    assert math.isclose(out[0, 0, 47, 0], 47 * 0.5, abs_tol=1e-5)  # half of it reads the zero border
