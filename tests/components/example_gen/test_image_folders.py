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


def test_a_chunk_decoded_by_several_threads_comes_out_in_order_with_its_bad_image_named(data_root):
    """DecodeImage decodes a chunk's images side by side; what it yields must not depend on that:
    the same examples in the task's order as one thread gives, each bad file rejected by name."""
    import apache_beam as beam  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from components.example_gen.image_folders import DecodeImage, ImageTask, group_image_tasks

    tasks = []
    for i in range(23):
        name = f"CK+48/happy/S{i:03d}_001_00000001.png"
        if i == 9:
            data_root.write(name, b"not a picture\n")
        else:
            data_root.image(name)
        tasks.append(ImageTask(f"{data_root.path}/{name}", name, "ckplus", 3, f"S{i:03d}", "train"))
    [chunk] = group_image_tasks(tasks, chunk=64)

    def run(threads):
        decoder = DecodeImage(25_000_000, 2 ** 20, threads=threads)
        try:
            outputs = list(decoder.process(chunk))
        finally:
            decoder.teardown()
        examples = [tf.train.Example.FromString(o[1]) for o in outputs if not isinstance(o, beam.pvalue.TaggedOutput)]
        rejected = [o.value for o in outputs if isinstance(o, beam.pvalue.TaggedOutput) and o.tag == "rejected"]
        return examples, rejected

    one, one_rejected = run(1)
    several, several_rejected = run(4)
    ids = [e.features.feature["image_id"].bytes_list.value[0].decode() for e in several]
    assert ids == [t.name for i, t in enumerate(tasks) if i != 9]
    assert several == one
    assert [r.file for r in several_rejected] == [r.file for r in one_rejected] == [tasks[9].path]
    assert "not an image" in several_rejected[0].defect
    assert len(group_image_tasks(tasks, chunk=10)) == 3
