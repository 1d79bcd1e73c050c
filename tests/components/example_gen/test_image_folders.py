"""Image decoding: what the model trains on is what the serving signature will see.

Compared with the exported model's own decode chain (trainer.export.decode_to_pixels, what
`serving_images` runs), not a copy of it.
"""
import os
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


def test_a_chunk_of_sources_and_face_crops_is_encoded_in_runs_in_its_order(data_root, tmp_path):
    """Decoded images are encoded to tf.Examples in batches (ENCODE_BATCH), a run of one source and
    one kind (with or without a face box) at a time: across batch and run edges, every image comes
    out once, in the task's order, with a face box exactly where the face stage found one, and the
    tallies add up to what was written."""
    import collections  # pylint: disable=import-outside-toplevel
    import glob  # pylint: disable=import-outside-toplevel

    import apache_beam as beam  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from components.example_gen.image_folders import ENCODE_BATCH, DecodeImage, ImageFilesTask, ImageTask
    from deep_emotion.demo_data.generate import generate

    generate(str(tmp_path / "ck"), n=60, seed=0, formats=("ckplus-original",))
    frames = sorted(glob.glob(str(tmp_path / "ck" / "**" / "S*_*.png"), recursive=True))[:6]
    tasks = []
    for i in range(ENCODE_BATCH + 9):
        if i % 25 == 7:  # a face to find, in a whole frame
            path = frames[i // 25]
            tasks.append(ImageTask(path, f"frame{i}.png", "ckplus", 3, "S001", "test", face_crop=True))
            continue
        name, source = f"faces/{i}.png", ("jaffe", "ferg")[i // 40]
        if i == 30:
            data_root.write(name, b"not a picture\n")
        else:
            data_root.image(name)
        tasks.append(ImageTask(f"{data_root.path}/{name}", name, source, i % 7, "x", ("train", "eval")[i % 2]))
    decoder = DecodeImage(25_000_000, 2 ** 20, threads=2)
    try:
        outputs = list(decoder.process(ImageFilesTask(tuple(tasks))))
    finally:
        decoder.teardown()
    examples = [(o[0], tf.train.Example.FromString(o[1])) for o in outputs
                if not isinstance(o, beam.pvalue.TaggedOutput)]
    tallies = sum((o.value for o in outputs if isinstance(o, beam.pvalue.TaggedOutput) and o.tag == "tally"),
                  collections.Counter())
    kept = [t for i, t in enumerate(tasks) if i != 30]
    assert [e.features.feature["image_id"].bytes_list.value[0].decode() for _, e in examples] == [t.name for t in kept]
    assert [split for split, _ in examples] == [t.split for t in kept]
    assert [e.features.feature["source"].bytes_list.value[0].decode() for _, e in examples] == [t.source for t in kept]
    assert [("face_box" in e.features.feature) for _, e in examples] == [t.face_crop for t in kept]
    assert sum(1 for t in kept if t.face_crop) == 3
    assert tallies == collections.Counter([("example", t.source, t.split, t.emotion) for t in kept]
                                          + [("rejected", "jaffe")])


def _high_depth_copy(path, eight_bit, kind):
    """Saves the 8-bit gray image again as `kind`: its levels at 16 bits (v * 257, 255 -> 65535) or
    as floats in [0, 1]."""
    from PIL import Image  # pylint: disable=import-outside-toplevel

    wide = eight_bit.astype(np.uint16) * 257
    if kind == "16-bit PNG":
        Image.fromarray(wide).save(path, format="PNG")                        # opens as I;16
    elif kind == "16-bit big-endian TIFF":
        Image.fromarray(wide.astype(">u2")).save(path, format="TIFF")         # opens as I;16B
    elif kind == "16-bit PGM":
        Image.fromarray(wide).save(path, format="PPM")                        # opens as I
    elif kind == "8-bit levels in a 32-bit TIFF":
        Image.fromarray(eight_bit.astype(np.int32)).save(path, format="TIFF")  # opens as I, values <= 255
    elif kind == "float TIFF in [0, 1]":
        Image.fromarray(eight_bit.astype(np.float32) / 255).save(path, format="TIFF")  # opens as F
    expected = {"16-bit PNG": "I;16", "16-bit big-endian TIFF": "I;16B", "16-bit PGM": "I",
                "8-bit levels in a 32-bit TIFF": "I", "float TIFF in [0, 1]": "F"}[kind]
    with Image.open(path) as image:
        assert image.mode == expected
    return path


@pytest.mark.parametrize("kind", ["16-bit PNG", "16-bit big-endian TIFF", "16-bit PGM", "8-bit levels in a 32-bit TIFF",
                                  "float TIFF in [0, 1]"])
@pytest.mark.parametrize("size", [(48, 48), (256, 200)])
def test_a_high_bit_depth_image_is_scaled_to_the_levels_of_its_8_bit_original_not_clipped(data_root, kind, size):
    """Pillow's convert("L") clips 16-bit levels: a 16-bit face came out solid white, and was ingested."""
    original = data_root.image("face.png", size=size)
    wide = _high_depth_copy(f"{data_root.path}/wide", original, kind)
    ours, theirs = load_face(wide, 25_000_000), load_face(f"{data_root.path}/face.png", 25_000_000)
    assert ours.dtype == np.uint8 and ours.shape == (48 * 48,)
    assert np.abs(ours.astype(np.int64) - theirs).max() <= 1


def test_a_16_bit_png_decodes_as_the_serving_signature_decodes_it(data_root):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from PIL import Image  # pylint: disable=import-outside-toplevel

    from trainer.export import decode_to_pixels  # pylint: disable=import-outside-toplevel

    path = f"{data_root.path}/face.png"
    os.makedirs(data_root.path)
    levels = data_root.rng.integers(0, 65536, (200, 256), dtype=np.uint16)  # all 16 bits, not only v * 257
    Image.fromarray(levels).save(path)
    served = decode_to_pixels(tf.io.read_file(path)).numpy()
    ours = load_face(path, 25_000_000)
    assert np.abs(ours.astype(np.int64) - served).max() <= 1
    assert 100 < ours.mean() < 155  # not clipped to white


def test_a_16_bit_frame_gives_the_face_crop_of_its_8_bit_original(data_root):
    """The face stage (CK+'s original frames) finds the same face in a 16-bit copy of a frame."""
    from PIL import Image  # pylint: disable=import-outside-toplevel
    from skimage import data  # pylint: disable=import-outside-toplevel

    gray = np.asarray(Image.fromarray(data.astronaut()).convert("L"))
    os.makedirs(data_root.path)
    Image.fromarray(gray).save(f"{data_root.path}/frame.png")
    wide = _high_depth_copy(f"{data_root.path}/frame16.png", gray, "16-bit PNG")
    (ours, our_box), (theirs, their_box) = (load_face(p, 25_000_000, face_crop=True)
                                            for p in (wide, f"{data_root.path}/frame.png"))
    assert ours.shape == (48 * 48,) and ours.std() > 10
    assert np.abs(ours.astype(np.int64) - theirs).max() <= 1
    np.testing.assert_allclose(our_box, their_box, atol=1)


@pytest.mark.parametrize("values, expected", [
    (np.linspace(0, 255, 48 * 48, dtype=np.float32), "a mode F (32-bit float) image with values from 0 to 255: only "
                                                     "floats in [0, 1] have an agreed gray scale"),
    (np.linspace(-1, 1, 48 * 48, dtype=np.float32), "a mode F (32-bit float) image with values from -1 to 1"),
    (np.full(48 * 48, np.nan, np.float32), "a mode F (32-bit float) image with NaN or infinite values"),
    (np.linspace(0, 2 ** 20, 48 * 48).astype(np.int32), "a mode I (32-bit integer) image with values from 0 to "
                                                        "1048576: only 8- or 16-bit levels"),
    (np.linspace(-300, 300, 48 * 48).astype(np.int32), "a mode I (32-bit integer) image with values from -300 to 300"),
], ids=["F 0..255", "F -1..1", "F NaN", "I over 16 bits", "I negative"])
def test_wide_images_without_an_agreed_gray_scale_are_refused_naming_their_mode_and_range(data_root, values,
                                                                                          expected):
    from PIL import Image  # pylint: disable=import-outside-toplevel

    from components.example_gen.image_folders import ImageDefect  # pylint: disable=import-outside-toplevel

    os.makedirs(data_root.path)
    Image.fromarray(values.reshape(48, 48)).save(f"{data_root.path}/face.tiff")
    with pytest.raises(ImageDefect, match=re.escape(expected)):
        load_face(f"{data_root.path}/face.tiff", 25_000_000)
