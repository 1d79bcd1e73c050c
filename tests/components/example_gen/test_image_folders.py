"""Image decoding: what the model trains on is what the serving signature will see."""
import numpy as np
import pytest

from components.example_gen.image_folders import load_face


@pytest.mark.parametrize("mode,size", [("L", (256, 256)), ("RGB", (640, 490)), ("RGBA", (256, 256))])
def test_decoding_matches_the_serving_signature_within_one_gray_level(data_root, mode, size):
    """Serving: tf.io.decode_image(channels=3) -> rgb_to_grayscale -> resize(bilinear, antialias)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    path = f"{data_root.path}/face.png"
    data_root.image("face.png", size=size, mode=mode)  # random pixels (alpha too): the hardest case to resample
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    served = tf.image.resize(tf.image.rgb_to_grayscale(tf.cast(image, tf.float32)), (48, 48),
                             method="bilinear", antialias=True).numpy().reshape(-1)
    ours = load_face(path, 25_000_000)
    assert ours.dtype == np.uint8 and ours.shape == (48 * 48,)
    assert np.abs(ours - served).max() <= 1.0


def test_48x48_grayscale_images_pass_through_unchanged(data_root):
    array = data_root.image("face.png")
    np.testing.assert_array_equal(load_face(f"{data_root.path}/face.png", 25_000_000), array.reshape(-1))
