"""Image decoding: what the model trains on is what the serving signature will see.

Compared with the exported model's own decode chain (trainer.export.decode_to_pixels, what
`serving_images` runs), not a copy of it.
"""
import re

import numpy as np
import pytest

from components.example_gen.image_folders import load_face


@pytest.mark.parametrize("mode,size", [("L", (256, 256)), ("RGB", (640, 490)), ("RGBA", (256, 256)),
                                       ("RGB", (37, 61))])
def test_decoding_matches_the_serving_signature_within_one_gray_level(data_root, mode, size):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from trainer.export import decode_to_pixels  # pylint: disable=import-outside-toplevel

    path = f"{data_root.path}/face.png"
    data_root.image("face.png", size=size, mode=mode)  # random pixels (alpha too): the hardest case to resample
    served = decode_to_pixels(tf.io.read_file(path)).numpy()
    ours = load_face(path, 25_000_000)
    assert ours.dtype == np.uint8 and ours.shape == served.shape == (48 * 48,)
    assert np.abs(ours.astype(np.int64) - served).max() <= 1


def test_48x48_grayscale_images_pass_through_unchanged(data_root):
    array = data_root.image("face.png")
    np.testing.assert_array_equal(load_face(f"{data_root.path}/face.png", 25_000_000), array.reshape(-1))


@pytest.mark.parametrize("error, expected", [
    (PermissionError(13, "Permission denied"), "cannot read the file: Permission denied"),
    (OSError("image file is truncated"), "corrupt image (OSError: image file is truncated)"),
])
def test_unreadable_and_corrupt_are_different_defects(data_root, monkeypatch, error, expected):
    from components.example_gen import files, image_folders  # pylint: disable=import-outside-toplevel

    data_root.image("face.png")

    def failing_open(path):
        raise error

    monkeypatch.setattr(files, "open_binary", failing_open)
    with pytest.raises(image_folders.ImageDefect, match=re.escape(expected)) as defect:
        load_face(f"{data_root.path}/face.png", 25_000_000)
    # Only a data defect may be quarantined; an unreadable file fails whatever the budget.
    assert isinstance(defect.value, image_folders.UnreadableFile) == isinstance(error, PermissionError)


def test_running_out_of_memory_is_not_taken_for_a_corrupt_image(data_root, monkeypatch):
    from components.example_gen import files  # pylint: disable=import-outside-toplevel

    data_root.image("face.png")

    def out_of_memory(path):
        raise MemoryError()

    monkeypatch.setattr(files, "open_binary", out_of_memory)
    with pytest.raises(MemoryError):
        load_face(f"{data_root.path}/face.png", 25_000_000)
